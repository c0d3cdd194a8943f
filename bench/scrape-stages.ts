/**
 * Where a scrape's time goes: the stages of `renderMetrics` (src/telemetry/exporters.ts) rebuilt from the
 * same parts and timed one by one on the same data — SDK collect (our batch callback included), the stale
 * filter, the OTel Prometheus serializer, the DCGM text — plus the stale-series keys and filter as they were
 * before the scrape-cost optimisation (bench/stale-baseline.ts), measured in the same run on the same
 * collections. No HTTP here (benchmark 2 measures the whole request).
 */
import type { Attributes } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { OwnershipSource } from '../src/model/types.js';
import { HealthTracker } from '../src/gpu/health.js';
import { createMockBackend, type MachineSpec } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { silentLogger } from '../src/log.js';
import { deviceIdentities } from '../src/telemetry/attributes.js';
import { renderDcgm } from '../src/telemetry/dcgm.js';
import { CARDINALITY_LIMIT } from '../src/telemetry/exporters.js';
import { INSTRUMENTS } from '../src/telemetry/instruments.js';
import { observeInstrument, type ObservationContext } from '../src/telemetry/observe.js';
import { registerInstruments } from '../src/telemetry/register.js';
import { attributeKey, dropUnobserved } from '../src/telemetry/stale.js';
import { attributeKeyBefore, dropUnobservedBefore } from './stale-baseline.js';
import { summarize } from './stats.js';

/** p50 per stage, ms. */
export interface StageCosts {
  readonly collect: number;
  readonly keysNow: number;
  readonly keysBefore: number;
  readonly filterNow: number;
  readonly filterBefore: number;
  readonly serialize: number;
  readonly dcgm: number;
  /** Data points the callback observes per collection. */
  readonly points: number;
}

function timeIt(out: number[], fn: () => unknown): void {
  const t0 = performance.now();
  fn();
  out.push(performance.now() - t0);
}

/**
 * Time each stage `rounds` times (after 10 warm-up rounds) on `machine` with `ownership` (none when absent).
 * @throws whatever the mock or the SDK throws (a bug: the inputs are fixed)
 */
export async function measureScrapeStages(
  machine: string | MachineSpec,
  ownership: ((inventory: Inventory) => OwnershipSource) | undefined,
  rounds: number,
): Promise<StageCosts> {
  const backend = createMockBackend({ machine, nodeName: 'bench-node' });
  await backend.init();
  const inventory = backend.inventory();
  const owners = ownership?.(inventory) ?? { owners: () => new Map() };
  const health = new HealthTracker(inventory);
  const sample = await backend.sample();
  const identities = deviceIdentities(inventory);
  const context = (): ObservationContext => ({ sample, identities, owners: owners.owners(), health });
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [prometheus], views: [{ instrumentName: '*', aggregationCardinalityLimit: CARDINALITY_LIMIT }] });
  const registration = registerInstruments(provider.getMeter('gpulet'), INSTRUMENTS, context, silentLogger());
  const serializer = new PrometheusSerializer();
  const t = { collect: [] as number[], keysNow: [] as number[], keysBefore: [] as number[], filterNow: [] as number[], filterBefore: [] as number[], serialize: [] as number[], dcgm: [] as number[] };
  let points = 0;
  try {
    for (let r = 0; r < rounds + 10; r++) {
      const c = { collect: [] as number[], keysNow: [] as number[], keysBefore: [] as number[], filterNow: [] as number[], filterBefore: [] as number[], serialize: [] as number[], dcgm: [] as number[] };
      const t0 = performance.now();
      const { resourceMetrics } = await prometheus.collect();
      c.collect.push(performance.now() - t0);
      const observed = registration.observed();
      // The callback's own keying, alone: the points of one more observation, keyed now and as before.
      const attrs: Attributes[] = INSTRUMENTS.flatMap((spec) => observeInstrument(spec, context()).map((p) => p.attributes));
      points = attrs.length;
      timeIt(c.keysNow, () => attrs.map(attributeKey));
      timeIt(c.keysBefore, () => attrs.map(attributeKeyBefore));
      let filtered: ResourceMetrics = resourceMetrics;
      timeIt(c.filterBefore, () => dropUnobservedBefore(resourceMetrics, observed));
      timeIt(c.filterNow, () => (filtered = dropUnobserved(resourceMetrics, observed)));
      timeIt(c.serialize, () => serializer.serialize(filtered));
      const ctx = context();
      timeIt(c.dcgm, () => renderDcgm({ ...ctx, lastXid: (u) => health.lastXid(u), hostname: 'bench-node', driverName: 'gpu.gpulet.dev', poolName: 'bench-node' }));
      if (r >= 10) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k].push(...c[k]);
    }
  } finally {
    registration.unregister();
    await provider.shutdown();
    await backend.shutdown();
  }
  const p50 = (xs: number[]): number => summarize(xs).p50;
  return {
    collect: p50(t.collect),
    keysNow: p50(t.keysNow),
    keysBefore: p50(t.keysBefore),
    filterNow: p50(t.filterNow),
    filterBefore: p50(t.filterBefore),
    serialize: p50(t.serialize),
    dcgm: p50(t.dcgm),
    points,
  };
}
