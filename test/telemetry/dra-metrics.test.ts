/**
 * DRA operation metrics end to end in one process: the real kubelet plugin on a unix socket (a gRPC client
 * generated from the upstream-checked proto plays the kubelet) reports each call to the real telemetry pipeline
 * (`startTelemetry`: its MeterProvider, `/metrics` over HTTP, OTLP gRPC to a real receiver), as src/main.ts wires
 * them. What is checked: success, error and in-flight counting while a prepare is held open, per-claim errors by
 * reason, the prepared-claims gauges; the exposition parsed by a strict parser of the text format, with NVIDIA's
 * bucket bounds (test/reference/metrics.md) among the histogram's; the OTel names, kinds and units over OTLP,
 * decoded by the OpenTelemetry project's own protobuf code; and the plugin's hooks on their own: v1beta1 calls
 * are reported as v1 calls are, and an observer that throws changes no answer and is logged.
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryPreparer } from '../../dev/kubelet/fake-preparer.js';
import { dialUnix, unaryCall } from '../../dev/kubelet/grpc-client.js';
import { loadKubeletServices, type WireClaim, type WirePrepareResponse, type WireUnprepareResponse } from '../../src/dra/kubelet/grpc-protos.js';
import { MAX_CLAIMS_PER_REQUEST } from '../../src/dra/kubelet/grpc-dra-mapping.js';
import { startKubeletPlugin, type KubeletPlugin } from '../../src/dra/kubelet/plugin.js';
import { HealthTracker } from '../../src/gpu/health.js';
import { silentLogger } from '../../src/log.js';
import type { ClaimPreparer, ClaimRef, PrepareResult, UnprepareResult } from '../../src/model/types.js';
import { DRA_DURATION_BUCKETS, type PreparedClaimsSource } from '../../src/telemetry/dra-metrics.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { driverName, poolName } from '../helpers/names.js';
import { attrs, pointValue, startOtlpReceiver, type OtlpMetric, type OtlpReceiver, type OtlpRequest } from '../helpers/otlp-receiver.js';
import { parsePrometheusText, type PromParse, type PromSample } from '../helpers/promtext.js';
import { FakeBackend, FakeOwnership, GPU0, MIG_A, MIG_B } from '../helpers/telemetry.js';
import { recordingLogger } from '../helpers/log.js';
import { reference } from '../helpers/reference.js';
import { deferred, type Deferred } from '../helpers/wait.js';

const services = loadKubeletServices();
const DRIVER = 'gpu.gpulet.dev';
const uid = (i: number): string => `0b6f2c1e-5d1a-4c39-9a57-${i.toString(16).padStart(12, '0')}`;
const claim = (i: number): WireClaim => ({ namespace: 'ml', name: `c-${i}`, uid: uid(i) });

/** A preparer whose prepare calls wait for `gate` once `hold` is set, and tell `entered` that they did. */
class HeldPreparer implements ClaimPreparer {
  readonly inner = new InMemoryPreparer({ errorFor: (c) => (c.name.startsWith('bad-') ? `claim ${c.namespace}/${c.name}: not allocated` : undefined) });
  hold: { entered: Deferred<void>; gate: Deferred<void> } | undefined;
  async prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>> {
    const h = this.hold;
    if (h !== undefined) {
      h.entered.resolve();
      await h.gate.promise;
    }
    return this.inner.prepare(claims);
  }
  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>> {
    return this.inner.unprepare(claims);
  }
}

let dir: string;
let receiver: OtlpReceiver;
let telemetry: Telemetry;
let plugin: KubeletPlugin;
let conn: grpc.Client;
const preparer = new HeldPreparer();
/** What the claim state would report as prepared: the InMemoryPreparer's prepared claims. */
const prepared: PreparedClaimsSource = {
  prepared: () => [...preparer.inner.prepared.keys()].map((u) => ({ devices: devicesOf.get(u) ?? [] })),
};
/** Device UUIDs per prepared claim UID (the fake preparer does not know UUIDs). */
const devicesOf = new Map<string, { uuid: string }[]>();

const client = {
  prepare: (claims: WireClaim[]): Promise<WirePrepareResponse> => unaryCall(conn, services.dra.v1.NodePrepareResources, { claims }, 45_000),
  unprepare: (claims: WireClaim[]): Promise<WireUnprepareResponse> => unaryCall(conn, services.dra.v1.NodeUnprepareResources, { claims }, 45_000),
};

async function scrape(): Promise<PromParse> {
  const res = await fetch(`${telemetry.url}/metrics`);
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

/** The value of the one sample named `name` whose labels include `labels` (undefined when none; throws on several). */
function value(p: PromParse, name: string, labels: Record<string, string>): number | undefined {
  const found = p.samples.filter((s: PromSample) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** A row of the table of NVIDIA's DRA metrics in test/reference/metrics.md: its label names and its values cell. */
function nvidiaRow(metric: string): { labels: string[]; values: string } {
  const line = readFileSync(reference('metrics.md'), 'utf8').split('\n').find((l) => l.startsWith(`| \`${metric}\``));
  if (line === undefined) throw new Error(`test/reference/metrics.md has no row for ${metric}`);
  const cells = line.split('|').slice(1, -1).map((c) => c.trim());
  return { labels: [...(cells[2] ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!), values: cells[3] ?? '' };
}

const PREP = { driver: DRIVER, operation: 'NodePrepareResources' };
const UNPREP = { driver: DRIVER, operation: 'NodeUnprepareResources' };

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-dra-metrics-'));
  receiver = await startOtlpReceiver();
  telemetry = await startTelemetry({
    backend: new FakeBackend(), ownership: new FakeOwnership(), prepared, health: new HealthTracker(new FakeBackend().inventory()),
    nodeName: 'node-a', serviceVersion: '9.9.9', sampleIntervalMs: 60_000, metricsHost: '127.0.0.1', metricsPort: 0,
    otlp: { endpoint: receiver.endpoint, intervalMs: 1_000, timeoutMs: 1_000 }, scrapeCacheMs: 0, dcgmCompat: false,
    driverName: driverName(DRIVER), poolName: poolName('node-a'), logger: silentLogger(),
  });
  plugin = await startKubeletPlugin({
    driverName: driverName(DRIVER), registryDir: path.join(dir, 'plugins_registry'), pluginsDir: path.join(dir, 'plugins'),
    preparer, observer: telemetry.dra, logger: silentLogger(),
  });
});

afterAll(async () => {
  await plugin?.stop();
  await telemetry?.shutdown();
  await receiver?.close();
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  conn = dialUnix(plugin.draSocket);
});
afterEach(() => conn.close());

describe('DRA operation metrics on /metrics', () => {
  // The tests of this block run in order and each checks the increments of its own calls.
  it('starts with every request and in-flight series at 0, and the prepared gauges at 0', async () => {
    const p = await scrape();
    // NVIDIA's label names (test/reference/metrics.md) are on the series of the same name.
    for (const [ours, theirs] of [['gpulet_dra_requests_total', 'nvidia_dra_requests_total'], ['gpulet_dra_requests_inflight', 'nvidia_dra_requests_inflight']] as const) {
      const sample = p.samples.find((x) => x.name === ours)!;
      for (const label of nvidiaRow(theirs).labels) expect(Object.keys(sample.labels), `${ours} ${label}`).toContain(label);
    }
    for (const op of [PREP, UNPREP]) {
      expect(value(p, 'gpulet_dra_requests_total', { ...op, result: 'success' })).toBe(0);
      expect(value(p, 'gpulet_dra_requests_total', { ...op, result: 'error' })).toBe(0);
      expect(value(p, 'gpulet_dra_requests_inflight', op)).toBe(0);
    }
    expect(p.types.get('gpulet_dra_requests_total')).toBe('counter');
    expect(p.types.get('gpulet_dra_requests_inflight')).toBe('gauge');
    expect(value(p, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(0);
    expect(value(p, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'gpu' })).toBe(0);
    expect(value(p, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'mig' })).toBe(0);
  });

  it('counts a prepare in flight while it is held, then one success with its duration observed', async () => {
    const hold = { entered: deferred(), gate: deferred() };
    preparer.hold = hold;
    devicesOf.set(uid(1), [{ uuid: GPU0 }]);
    devicesOf.set(uid(2), [{ uuid: MIG_A }, { uuid: MIG_B }]);
    const answer = client.prepare([claim(1), claim(2)]);
    await hold.entered.promise;
    const during = await scrape();
    expect(value(during, 'gpulet_dra_requests_inflight', PREP)).toBe(1);
    expect(value(during, 'gpulet_dra_requests_inflight', UNPREP)).toBe(0);
    expect(value(during, 'gpulet_dra_requests_total', { ...PREP, result: 'success' })).toBe(0);
    expect(value(during, 'gpulet_dra_request_duration_seconds_count', { ...PREP, result: 'success' })).toBeUndefined();

    preparer.hold = undefined;
    hold.gate.resolve();
    const res = await answer;
    expect(Object.values(res.claims).map((c) => c.error)).toEqual(['', '']);
    const after = await scrape();
    expect(value(after, 'gpulet_dra_requests_inflight', PREP)).toBe(0);
    expect(value(after, 'gpulet_dra_requests_total', { ...PREP, result: 'success' })).toBe(1);
    expect(value(after, 'gpulet_dra_requests_total', { ...PREP, result: 'error' })).toBe(0);
    expect(value(after, 'gpulet_dra_request_duration_seconds_count', { ...PREP, result: 'success' })).toBe(1);
    expect(value(after, 'gpulet_dra_request_duration_seconds_sum', { ...PREP, result: 'success' })).toBeGreaterThan(0);
    // Two claims prepared: a GPU and two MIG devices (kinds from the inventory).
    expect(value(after, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(2);
    expect(value(after, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'gpu' })).toBe(1);
    expect(value(after, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'mig' })).toBe(2);
  });

  it('counts a call with a failed claim as an error, and each failed claim by reason', async () => {
    const res = await client.prepare([claim(3), { namespace: 'ml', name: 'bad-4', uid: uid(4) }, { namespace: 'ml', name: 'Not_A_Name', uid: uid(5) }]);
    expect(res.claims[uid(3)]?.error).toBe('');
    expect(res.claims[uid(4)]?.error).toContain('not allocated');
    expect(res.claims[uid(5)]?.error).toContain('field "name"');
    const p = await scrape();
    expect(value(p, 'gpulet_dra_requests_total', { ...PREP, result: 'error' })).toBe(1);
    expect(value(p, 'gpulet_dra_requests_total', { ...PREP, result: 'success' })).toBe(1);
    expect(value(p, 'gpulet_dra_request_duration_seconds_count', { ...PREP, result: 'error' })).toBe(1);
    expect(value(p, 'gpulet_dra_claim_errors_total', { ...PREP, error_type: 'prepare_devices' })).toBe(1);
    expect(value(p, 'gpulet_dra_claim_errors_total', { ...PREP, error_type: 'invalid_claim' })).toBe(1);
    expect(p.types.get('gpulet_dra_claim_errors_total')).toBe('counter');
  });

  it('counts a refused request (too many claims) as an error with no claim error, and a rejected batch per claim', async () => {
    const tooMany = Array.from({ length: MAX_CLAIMS_PER_REQUEST + 1 }, (_, i) => claim(1000 + i));
    const err = await client.unprepare(tooMany).then(() => undefined, (e: unknown) => e as grpc.ServiceError);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    preparer.inner.rejectWith = new Error('disk on fire');
    try {
      await client.unprepare([claim(6), claim(7)]);
    } finally {
      preparer.inner.rejectWith = undefined;
    }
    const p = await scrape();
    expect(value(p, 'gpulet_dra_requests_total', { ...UNPREP, result: 'error' })).toBe(2);
    expect(value(p, 'gpulet_dra_requests_total', { ...UNPREP, result: 'success' })).toBe(0);
    expect(value(p, 'gpulet_dra_claim_errors_total', { ...UNPREP, error_type: 'batch_failed' })).toBe(2);
    expect(value(p, 'gpulet_dra_requests_inflight', UNPREP)).toBe(0);
  });

  it('unprepares the claims back to 0 prepared, one successful unprepare', async () => {
    await client.unprepare([claim(1), claim(2), claim(3)]);
    const p = await scrape();
    expect(value(p, 'gpulet_dra_requests_total', { ...UNPREP, result: 'success' })).toBe(1);
    expect(value(p, 'gpulet_dra_request_duration_seconds_count', { ...UNPREP, result: 'success' })).toBe(1);
    expect(value(p, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(0);
    expect(value(p, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'mig' })).toBe(0);
  });

  it('exposes the duration as a histogram whose buckets include every bound of NVIDIA\'s', async () => {
    const p = await scrape();
    expect(p.types.get('gpulet_dra_request_duration_seconds')).toBe('histogram');
    const buckets = p.samples.filter((s) => s.name === 'gpulet_dra_request_duration_seconds_bucket' && s.labels['operation'] === 'NodePrepareResources' && s.labels['result'] === 'success');
    const bounds = buckets.map((s) => s.labels['le']!);
    expect(bounds).toEqual([...DRA_DURATION_BUCKETS.map(String), '+Inf']);
    // NVIDIA's bounds, as test/reference/metrics.md lists them: each is a bound of ours.
    const nvidia = nvidiaRow('nvidia_dra_request_duration_seconds').values.split('`:')[1]!.split(',').map(Number);
    expect(nvidia).toHaveLength(9);
    for (const b of nvidia) expect(bounds.some((le) => Math.abs(Number(le) - b) < 1e-9), String(b)).toBe(true);
    // Cumulative counts, ending with the one observation.
    const counts = buckets.map((s) => s.value);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
    expect(counts.at(-1)).toBe(1);
    expect(p.help.get('gpulet_dra_request_duration_seconds')).toMatch(/Duration/);
  });
});

describe('DRA operation metrics over OTLP', () => {
  function metric(req: OtlpRequest, name: string): OtlpMetric | undefined {
    for (const rm of req.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === name) return m;
    return undefined;
  }

  it('exports the OTel names, kinds and units, with the calls counted above', async () => {
    // After the /metrics tests: 2 prepare calls and 3 unprepare calls have been answered.
    await telemetry.forceFlush();
    const req = await receiver.waitFor((r) => {
      const m = metric(r, 'gpulet.dra.requests');
      return m?.sum?.dataPoints.some((d) => attrs(d.attributes)['operation'] === 'NodeUnprepareResources' && attrs(d.attributes)['result'] === 'success' && pointValue(d) === 1) ?? false;
    }, 15_000);
    const requests = metric(req, 'gpulet.dra.requests')!;
    expect(requests.unit).toBe('{request}');
    expect(requests.sum?.isMonotonic).toBe(true);
    const point = (m: OtlpMetric, a: Record<string, string>) => m.sum!.dataPoints.find((d) => Object.entries(a).every(([k, v]) => attrs(d.attributes)[k] === v));
    expect(pointValue(point(requests, { ...PREP, result: 'success' })!)).toBe(1);
    expect(pointValue(point(requests, { ...PREP, result: 'error' })!)).toBe(1);

    const active = metric(req, 'gpulet.dra.active_requests')!;
    expect(active.unit).toBe('{request}');
    expect(active.sum?.isMonotonic).toBe(false);
    expect(pointValue(point(active, PREP)!)).toBe(0);

    const duration = metric(req, 'gpulet.dra.request.duration')!;
    expect(duration.unit).toBe('s');
    const h = duration.histogram!.dataPoints.find((d) => attrs(d.attributes)['operation'] === 'NodePrepareResources' && attrs(d.attributes)['result'] === 'success')!;
    expect(Number(h.count)).toBe(1);
    expect(h.explicitBounds).toEqual([...DRA_DURATION_BUCKETS]);

    const errors = metric(req, 'gpulet.dra.claim.errors')!;
    expect(errors.unit).toBe('{error}');
    expect(pointValue(point(errors, { ...UNPREP, 'error.type': 'batch_failed' })!)).toBe(2);

    expect(metric(req, 'gpulet.dra.prepared_claims')?.unit).toBe('{claim}');
    expect(metric(req, 'gpulet.dra.prepared_devices')?.unit).toBe('{device}');
    // The Prometheus-only names never reach OTLP.
    expect(metric(req, 'gpulet_dra_request_duration_seconds')).toBeUndefined();
    expect(metric(req, 'gpulet_dra_requests_inflight')).toBeUndefined();
  });
});

describe('the call hooks of the kubelet plugin', () => {
  it('count v1beta1 calls too, and a throwing observer changes no answer and is logged', async () => {
    const rec = recordingLogger('warn');
    const seen: string[] = [];
    const own = await startKubeletPlugin({
      driverName: driverName(DRIVER), registryDir: path.join(dir, 'hooks', 'plugins_registry'), pluginsDir: path.join(dir, 'hooks', 'plugins'),
      preparer: new InMemoryPreparer(), logger: rec.logger,
      observer: {
        started: (op) => void seen.push(`started ${op}`),
        claimFailed: () => {
          throw new Error('observer broke');
        },
        finished: (op, seconds, ok) => {
          seen.push(`finished ${op} ${ok}`);
          expect(seconds).toBeGreaterThanOrEqual(0);
          throw new Error('observer broke');
        },
      },
    });
    const c = dialUnix(own.draSocket);
    try {
      const res = await unaryCall(c, services.dra.v1beta1.NodePrepareResources, { claims: [claim(1), { namespace: 'ml', name: 'Bad_Name', uid: uid(2) }] }, 45_000);
      expect(res.claims[uid(1)]?.error).toBe('');
      expect(res.claims[uid(2)]?.error).toContain('field "name"');
      const un = await unaryCall(c, services.dra.v1beta1.NodeUnprepareResources, { claims: [claim(1)] }, 45_000);
      expect(un.claims[uid(1)]?.error).toBe('');
      expect(seen).toEqual(['started NodePrepareResources', 'finished NodePrepareResources false', 'started NodeUnprepareResources', 'finished NodeUnprepareResources true']);
      // claimFailed once, finished twice: three logged hook failures.
      expect(rec.withMessage('DRA call observer failed')).toHaveLength(3);
    } finally {
      c.close();
      await own.stop();
    }
  });
});
