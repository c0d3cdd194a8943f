/**
 * Where a scrape's time goes: the stages of `renderMetrics` (src/telemetry/exporters.ts) rebuilt from the
 * same parts and timed one by one on the same data — observing the catalogue (observe.ts, via own-metrics.ts),
 * building the MetricData (metric-data.ts), writing the Prometheus text (prometheus-text.ts), the DCGM text —
 * plus, for comparison, what the same observations cost through the SDK's asynchronous instruments (a
 * MeterProvider collect, as gpulet collected them before metric-data.ts; without the stale-series filter that
 * path also needed) and the OTel `PrometheusSerializer` on the same metric data. No HTTP here (benchmark 2 measures the whole request).
 */
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { OwnershipSource } from '../src/model/types.js';
import { HealthTracker } from '../src/gpu/health.js';
import { createMockBackend, type MachineSpec } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { silentLogger } from '../src/log.js';
import { deviceIdentities } from '../src/telemetry/attributes.js';
import { renderDcgm } from '../src/telemetry/dcgm.js';
import { INSTRUMENTS } from '../src/telemetry/instruments.js';
import { MetricDataBuilder, type Observation } from '../src/telemetry/metric-data.js';
import type { ObservationContext } from '../src/telemetry/observe.js';
import { hrNow, observeOwn, withOwnMetrics } from '../src/telemetry/own-metrics.js';
import { renderOwnMetrics } from '../src/telemetry/prometheus-text.js';
import { summarize } from './stats.js';

/** p50 per stage, ms. */
export interface StageCosts {
  /** Observing every catalogue instrument (points and their attributes). */
  readonly observe: number;
  /** Building the MetricData from the observations (metric-data.ts). */
  readonly build: number;
  /** The same observations through SDK observable instruments and a collect (the path before metric-data.ts). */
  readonly sdkCollect: number;
  /** Writing the Prometheus text (prometheus-text.ts). */
  readonly serialize: number;
  /** The same text through the OTel `PrometheusSerializer` (the path before prometheus-text.ts). */
  readonly serializeSdk: number;
  readonly dcgm: number;
  /** Data points per collection. */
  readonly points: number;
}

/** A pull reader for the SDK comparison. */
class PullReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

function timeIt<T>(out: number[], fn: () => T): T {
  const t0 = performance.now();
  const result = fn();
  out.push(performance.now() - t0);
  return result;
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
  const logger = silentLogger();
  const builder = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, hrNow());
  const resource = resourceFromAttributes({ 'service.name': 'gpulet' });
  const scope = { name: 'gpulet', version: 'bench' };
  // The SDK comparison: the same observations through observable instruments.
  const reader = new PullReader();
  const provider = new MeterProvider({ readers: [reader], resource });
  const meter = provider.getMeter('gpulet', 'bench');
  let current: Observation[] = [];
  const observables = INSTRUMENTS.map((spec) => {
    const options = { unit: spec.unit, description: spec.description };
    return spec.kind === 'gauge' ? meter.createObservableGauge(spec.name, options)
      : spec.kind === 'counter' ? meter.createObservableCounter(spec.name, options)
      : meter.createObservableUpDownCounter(spec.name, options);
  });
  meter.addBatchObservableCallback((result) => {
    current.forEach((o, i) => {
      const observable = observables[i];
      if (observable !== undefined) for (const p of o.points) result.observe(observable, p.value, p.attributes);
    });
  }, observables);
  const serializer = new PrometheusSerializer();
  const t = { observe: [] as number[], build: [] as number[], sdkCollect: [] as number[], serialize: [] as number[], serializeSdk: [] as number[], dcgm: [] as number[] };
  let points = 0;
  try {
    for (let r = 0; r < rounds + 10; r++) {
      const c = { observe: [] as number[], build: [] as number[], sdkCollect: [] as number[], serialize: [] as number[], serializeSdk: [] as number[], dcgm: [] as number[] };
      const observations = timeIt(c.observe, () => observeOwn(INSTRUMENTS, context, () => [], logger));
      points = observations.reduce((n, o) => n + o.points.length, 0);
      const metrics = timeIt(c.build, () => builder.build(observations, hrNow()));
      current = observations;
      const t0 = performance.now();
      await reader.collect();
      c.sdkCollect.push(performance.now() - t0);
      const rm: ResourceMetrics = withOwnMetrics({ resource, scopeMetrics: [] }, scope, metrics);
      timeIt(c.serialize, () => renderOwnMetrics(metrics, scope));
      timeIt(c.serializeSdk, () => serializer.serialize(rm));
      const ctx = context();
      timeIt(c.dcgm, () => renderDcgm({ ...ctx, lastXid: (u) => health.lastXid(u), hostname: 'bench-node', driverName: 'gpu.gpulet.dev', poolName: 'bench-node' }));
      if (r >= 10) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k].push(...c[k]);
    }
  } finally {
    await provider.shutdown();
    await backend.shutdown();
  }
  const p50 = (xs: number[]): number => summarize(xs).p50;
  return { observe: p50(t.observe), build: p50(t.build), sdkCollect: p50(t.sdkCollect), serialize: p50(t.serialize), serializeSdk: p50(t.serializeSdk), dcgm: p50(t.dcgm), points };
}
