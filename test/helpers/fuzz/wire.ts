/**
 * A raw DRAPlugin client for the fuzz suites: requests are encoded here, byte by byte, from the proto
 * definition (kubernetes/kubelet pkg/apis/dra/v1 api.proto: `NodePrepareResourcesRequest { repeated Claim
 * claims = 1; }`, `Claim { string namespace = 1; string uid = 2; string name = 3; }`), so a test can send what
 * no well-behaved encoder would: invalid UTF-8, empty fields written explicitly, unknown fields, truncated
 * or random bytes. Responses are decoded with the project's proto definitions (src/dra/kubelet/grpc-protos.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { loadKubeletServices, type DraApiVersion, type WirePrepareResponse, type WireUnprepareResponse } from '../../../src/dra/kubelet/grpc-protos.js';

/** A long string kept compact until it is encoded (so a failing case prints as `{repeat, times}`). */
export interface Repeated {
  readonly repeat: string;
  readonly times: number;
}

/**
 * A claim field: a JS string (sent as UTF-8), raw bytes (sent verbatim, possibly invalid UTF-8), or a
 * repeated string.
 */
export type FieldValue = string | Uint8Array | Repeated;

/** One `Claim` message to encode. An absent field is not written (proto3 default). */
export interface RawClaim {
  readonly namespace?: FieldValue;
  readonly uid?: FieldValue;
  readonly name?: FieldValue;
  /** Extra bytes appended to the claim message (e.g. unknown fields). */
  readonly extra?: Uint8Array;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** Bytes of a field value as they go on the wire. */
export function fieldBytes(v: FieldValue): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v);
  return Buffer.from(v.repeat.repeat(v.times), 'utf8');
}

/** A length-delimited field (wire type 2). */
function lengthDelimited(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

/** Encode one `Claim`. */
export function encodeClaim(c: RawClaim): Buffer {
  const parts: Buffer[] = [];
  if (c.namespace !== undefined) parts.push(lengthDelimited(1, fieldBytes(c.namespace)));
  if (c.uid !== undefined) parts.push(lengthDelimited(2, fieldBytes(c.uid)));
  if (c.name !== undefined) parts.push(lengthDelimited(3, fieldBytes(c.name)));
  if (c.extra !== undefined) parts.push(Buffer.from(c.extra));
  return Buffer.concat(parts);
}

/** Encode `NodePrepareResourcesRequest` / `NodeUnprepareResourcesRequest` (same layout). */
export function encodeClaimsRequest(claims: readonly RawClaim[]): Buffer {
  return Buffer.concat(claims.map((c) => lengthDelimited(1, encodeClaim(c))));
}

/**
 * The string the server sees for a field: proto3 `string` decoded as UTF-8 with replacement of invalid
 * sequences (WHATWG decoder, what Node's `Buffer#utf8Slice` and so protobufjs's BufferReader do). An absent
 * field is "".
 */
export function decodedField(v: FieldValue | undefined): string {
  return v === undefined ? '' : fieldBytes(v).toString('utf8');
}

/** An unknown field (number 15, wire type 2) carrying `payload`: a proto3 parser must skip it. */
export function unknownField(payload: Uint8Array): Uint8Array {
  return lengthDelimited(15, Buffer.from(payload));
}

/** Result of a raw call: the decoded response, or the gRPC error. */
export type CallOutcome<T> = { readonly ok: true; readonly response: T } | { readonly ok: false; readonly error: grpc.ServiceError };

/** gRPC's default max message size (grpc-go and grpc-js): 4 MiB; the kubelet keeps the default. */
export const GRPC_DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;

/** Raw DRAPlugin client on a unix socket (default channel options, like the kubelet's). */
export class RawDraClient {
  private readonly client: grpc.Client;
  private readonly services = loadKubeletServices();

  /** @param endpoint absolute path of the plugin's DRA socket */
  constructor(endpoint: string) {
    this.client = new grpc.Client(`unix://${endpoint}`, grpc.credentials.createInsecure());
  }

  /** NodePrepareResources with a pre-encoded request. Never rejects: gRPC errors come back as `ok: false`. */
  prepare(version: DraApiVersion, request: Buffer, deadlineMs = 45_000): Promise<CallOutcome<WirePrepareResponse>> {
    const m = this.services.dra[version].NodePrepareResources;
    return this.call(m.path, m.responseDeserialize, request, deadlineMs);
  }

  /** NodeUnprepareResources with a pre-encoded request. Never rejects. */
  unprepare(version: DraApiVersion, request: Buffer, deadlineMs = 45_000): Promise<CallOutcome<WireUnprepareResponse>> {
    const m = this.services.dra[version].NodeUnprepareResources;
    return this.call(m.path, m.responseDeserialize, request, deadlineMs);
  }

  close(): void {
    this.client.close();
  }

  private call<T>(path: string, deserialize: (b: Buffer) => T, request: Buffer, deadlineMs: number): Promise<CallOutcome<T>> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        deserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, res) => {
          if (err) resolve({ ok: false, error: err });
          else if (res === undefined) resolve({ ok: false, error: Object.assign(new Error(`${path}: empty response`), { code: grpc.status.INTERNAL, details: 'empty', metadata: new grpc.Metadata() }) });
          else resolve({ ok: true, response: res });
        },
      );
    });
  }
}
