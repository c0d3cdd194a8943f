/**
 * A real OTLP/gRPC metrics receiver for tests: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
 * on 127.0.0.1:<free port>, decoding with @grpc/proto-loader. The @opentelemetry packages installed
 * (0.301) ship a hand-written protobuf *writer* and no request decoder, so the message definitions are
 * written out here — the subset of open-telemetry/opentelemetry-proto v1 (`collector/metrics/v1/
 * metrics_service.proto`, `metrics/v1/metrics.proto`, `resource/v1/resource.proto`, `common/v1/common.proto`)
 * that carries names, units, gauges, sums and attributes, with upstream's field numbers. Unknown fields
 * (histograms, exemplars, ...) are skipped by the decoder as protobuf requires.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const OTLP_METRICS_PROTO = `
syntax = "proto3";
package opentelemetry.proto.collector.metrics.v1;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    bytes bytes_value = 7;
  }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message NumberDataPoint {
  repeated KeyValue attributes = 7;
  fixed64 start_time_unix_nano = 2;
  fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; }
  uint32 flags = 8;
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Metric {
  string name = 1;
  string description = 2;
  string unit = 3;
  oneof data { Gauge gauge = 5; Sum sum = 7; }
}
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; string schema_url = 3; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; string schema_url = 3; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ExportMetricsPartialSuccess { int64 rejected_data_points = 1; string error_message = 2; }
message ExportMetricsServiceResponse { ExportMetricsPartialSuccess partial_success = 1; }
service MetricsService {
  rpc Export(ExportMetricsServiceRequest) returns (ExportMetricsServiceResponse) {}
}
`;

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
export interface OtlpMetric {
  name: string;
  unit: string;
  description: string;
  gauge?: { dataPoints: OtlpNumberDataPoint[] };
  sum?: { dataPoints: OtlpNumberDataPoint[]; isMonotonic: boolean; aggregationTemporality: number };
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

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-otlp-'));
  const protoPath = path.join(dir, 'metrics_service.proto');
  await writeFile(protoPath, OTLP_METRICS_PROTO);
  const def = protoLoader.loadSync(protoPath, { longs: String, enums: Number, defaults: true, arrays: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    opentelemetry: { proto: { collector: { metrics: { v1: { MetricsService: grpc.ServiceClientConstructor } } } } };
  };
  const service = pkg.opentelemetry.proto.collector.metrics.v1.MetricsService.service;
  const requests: OtlpRequest[] = [];
  const waiters: { pred: (r: OtlpRequest) => boolean; resolve: (r: OtlpRequest) => void }[] = [];
  const server = new grpc.Server();
  server.addService(service, {
    Export: (call: grpc.ServerUnaryCall<OtlpRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      requests.push(call.request);
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
      await rm(dir, { recursive: true, force: true });
    },
  };
}
