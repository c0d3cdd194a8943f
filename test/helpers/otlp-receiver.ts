/**
 * A real OTLP/gRPC metrics receiver for tests: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
 * on 127.0.0.1:<free port>. Requests are decoded with the protobuf code the OpenTelemetry JS project generated
 * from the official open-telemetry/opentelemetry-proto files (`build/src/generated/root.js` of
 * @opentelemetry/otlp-transformer 0.215, installed as the devDependency alias `otlp-transformer-protos`; the
 * 0.3xx releases the exporter uses dropped the generated decoder). So what we send is checked by an
 * independent decoder, not by our own transcription of the protos.
 */
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';

interface GeneratedMessage {
  decode(buf: Uint8Array): unknown;
  toObject(msg: unknown, options: Record<string, unknown>): unknown;
}
const require = createRequire(import.meta.url);
const generated = require('otlp-transformer-protos/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: GeneratedMessage } } } } };
};
const ExportRequest = generated.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;

/** Decode an `ExportMetricsServiceRequest` (camelCase fields, 64-bit ints as strings, defaults filled). */
export function decodeExportRequest(buf: Buffer): OtlpRequest {
  return ExportRequest.toObject(ExportRequest.decode(buf), { longs: String, enums: Number, defaults: true, arrays: true, oneofs: true }) as OtlpRequest;
}

export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
}
export interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
export interface OtlpNumberDataPoint {
  attributes: OtlpKeyValue[];
  asDouble?: number;
  asInt?: string;
}
/** A histogram point (`HistogramDataPoint`): 64-bit `count` and `bucketCounts` as strings. */
export interface OtlpHistogramDataPoint {
  attributes: OtlpKeyValue[];
  count: string;
  sum?: number;
  bucketCounts: string[];
  explicitBounds: number[];
}
export interface OtlpMetric {
  name: string;
  unit: string;
  description: string;
  gauge?: { dataPoints: OtlpNumberDataPoint[] };
  sum?: { dataPoints: OtlpNumberDataPoint[]; isMonotonic: boolean; aggregationTemporality: number };
  histogram?: { dataPoints: OtlpHistogramDataPoint[]; aggregationTemporality: number };
}
export interface OtlpRequest {
  resourceMetrics: { resource?: { attributes: OtlpKeyValue[] }; scopeMetrics: { scope?: { name: string }; metrics: OtlpMetric[] }[] }[];
}

/** Attributes as a plain record (string, int, double, bool values rendered as strings). */
export function attrs(kvs: readonly OtlpKeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of kvs) {
    const v = kv.value;
    out[kv.key] = v?.stringValue ?? v?.intValue ?? (v?.doubleValue !== undefined ? String(v.doubleValue) : v?.boolValue !== undefined ? String(v.boolValue) : '');
  }
  return out;
}

/** Value of a data point as a number. */
export function pointValue(p: OtlpNumberDataPoint): number {
  return p.asDouble ?? Number(p.asInt);
}

export interface OtlpReceiver {
  readonly endpoint: string;
  readonly requests: OtlpRequest[];
  /** Resolves with the first request satisfying `pred` (checks those already received). */
  waitFor(pred: (r: OtlpRequest) => boolean, timeoutMs: number): Promise<OtlpRequest>;
  close(): Promise<void>;
}

/** Options of {@link startOtlpReceiver}. */
export interface OtlpReceiverOptions {
  /** Asked for every request: an error to answer it with (the request is still recorded), or undefined to accept it. */
  readonly reject?: () => Partial<grpc.StatusObject> | undefined;
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const service: grpc.ServiceDefinition = {
    Export: {
      path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
      requestStream: false,
      responseStream: false,
      requestDeserialize: decodeExportRequest,
      requestSerialize: () => Buffer.alloc(0),
      // ExportMetricsServiceResponse{} (no partial_success) encodes to zero bytes.
      responseSerialize: () => Buffer.alloc(0),
      responseDeserialize: () => ({}),
    },
  };
  const requests: OtlpRequest[] = [];
  const waiters: { pred: (r: OtlpRequest) => boolean; resolve: (r: OtlpRequest) => void }[] = [];
  const server = new grpc.Server();
  server.addService(service, {
    Export: (call: grpc.ServerUnaryCall<OtlpRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      requests.push(call.request);
      const refusal = options.reject?.();
      if (refusal !== undefined) {
        cb(refusal, null);
        return;
      }
      for (const w of [...waiters]) {
        if (w.pred(call.request)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(call.request);
        }
      }
      cb(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    waitFor(pred, timeoutMs) {
      const found = requests.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching OTLP request within ${timeoutMs} ms (${requests.length} received)`)), timeoutMs);
        waiters.push({ pred, resolve: (r) => (clearTimeout(t), resolve(r)) });
      });
    },
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}
