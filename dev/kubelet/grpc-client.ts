/**
 * Typed gRPC client calls over unix sockets for the kubelet simulator, built from the same proto
 * definitions as the servers (src/dra/kubelet/grpc-protos.ts) so they are a real, independent grpc-js client.
 */
import * as grpc from '@grpc/grpc-js';

/** Open a client (channel) to a unix socket (absolute path). */
export function dialUnix(socketPath: string): grpc.Client {
  return new grpc.Client(`unix://${socketPath}`, grpc.credentials.createInsecure());
}

/**
 * Call a unary method with a deadline.
 * @param deadlineMs time budget in ms (the kubelet uses 1 s for GetInfo, 5 s for NotifyRegistrationStatus,
 *   45 s for Prepare/Unprepare)
 * @throws grpc.ServiceError (e.g. code 4 DEADLINE_EXCEEDED, 14 UNAVAILABLE, 12 UNIMPLEMENTED)
 */
export function unaryCall<Req, Res>(
  client: grpc.Client,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  deadlineMs: number,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, res) => {
        if (err) reject(err);
        else if (res === undefined) reject(new Error(`${method.path}: empty response`));
        else resolve(res);
      },
    );
  });
}

/** An open server-streaming call; `cancel()` ends it from the client side. */
export interface StreamHandle {
  cancel(): void;
}

/**
 * Open a server-streaming call (no deadline). Messages go to `onMessage`; `onEnd` gets the final status
 * (code 0 when the server ended the stream cleanly, 1 CANCELLED after `cancel()`).
 */
export function serverStream<Req, Res>(
  client: grpc.Client,
  method: grpc.MethodDefinition<Req, Res>,
  request: Req,
  onMessage: (msg: Res) => void,
  onEnd: (status: grpc.StatusObject) => void,
): StreamHandle {
  const call = client.makeServerStreamRequest(
    method.path,
    method.requestSerialize,
    method.responseDeserialize,
    request,
    new grpc.Metadata(),
    {},
  );
  call.on('data', onMessage);
  call.on('status', onEnd);
  // Errors are reported through 'status' too; a listener keeps them from being thrown.
  call.on('error', () => undefined);
  return { cancel: () => call.cancel() };
}
