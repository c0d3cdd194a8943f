/**
 * A minimal OTLP/gRPC metrics receiver for the benchmarks: `opentelemetry.proto.collector.metrics.v1.
 * MetricsService/Export` (opentelemetry-proto `collector/metrics/v1/metrics_service.proto`) on
 * 127.0.0.1:<free port>, answering an empty `ExportMetricsServiceResponse` (zero bytes on the wire). It does
 * not decode requests (the tests' receiver, test/helpers/otlp-receiver.ts, checks content);
 * it counts them and their bytes, and wakes waiters on each one. Run it in the bench process, so its CPU is
 * not the agent's.
 */
import * as grpc from '@grpc/grpc-js';

/** A running sink. */
export interface OtlpSink {
  /** `http://127.0.0.1:<port>` (plaintext), for `--otlp-endpoint` / `OtlpOptions.endpoint`. */
  readonly endpoint: string;
  /** Export requests received so far. */
  requests(): number;
  /** Request bytes received so far (protobuf, uncompressed). */
  bytes(): number;
  /** Size of the last request, bytes (0 before the first). */
  lastBytes(): number;
  /** Resolves at the next request. */
  next(): Promise<void>;
  /** Stop the server (pending calls are answered first). Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a sink on a free loopback port.
 * @throws Error when the port cannot be bound
 */
export async function startOtlpSink(): Promise<OtlpSink> {
  let count = 0;
  let total = 0;
  let last = 0;
  let waiters: (() => void)[] = [];
  const service: grpc.ServiceDefinition = {
    Export: {
      path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
      requestStream: false,
      responseStream: false,
      requestDeserialize: (buf: Buffer) => buf.length,
      requestSerialize: () => Buffer.alloc(0),
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: () => ({}),
    },
  };
  const server = new grpc.Server();
  server.addService(service, {
    Export: (call: grpc.ServerUnaryCall<number, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      count += 1;
      last = call.request;
      total += last;
      cb(null, {});
      const woken = waiters;
      waiters = [];
      for (const w of woken) w();
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests: () => count,
    bytes: () => total,
    lastBytes: () => last,
    next: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: () => {
      closed ??= new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      return closed;
    },
  };
}
