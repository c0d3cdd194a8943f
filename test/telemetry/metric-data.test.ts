/**
 * metric-data.ts against the real OTel SDK (sdk-metrics 3.x asynchronous instruments, collected by a pull
 * reader) and its real Prometheus serializer: for the same observations our MetricData has the SDK's shape
 * (descriptor, point type, monotonicity, temporality, values; the same Prometheus text), with cumulative and
 * delta temporality; and, unlike the SDK, a series that is no longer observed is neither reported nor kept.
 */
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, MeterProvider, MetricReader, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { attributeKey } from '../../src/telemetry/attribute-key.js';
import { MetricDataBuilder, type Observation, type OwnInstrument } from '../../src/telemetry/metric-data.js';
import { temporalityOf, withOwnMetrics } from '../../src/telemetry/own-metrics.js';

/** A pull reader with a chosen temporality, to collect what the real SDK produces. */
class TestReader extends MetricReader {
  constructor(temporality = AggregationTemporality.CUMULATIVE) {
    super({ aggregationTemporalitySelector: () => temporality });
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

const INSTRUMENTS: readonly OwnInstrument[] = [
  { name: 'hw.power', kind: 'gauge', unit: 'W', description: 'Instantaneous power' },
  { name: 'hw.gpu.memory.usage', kind: 'updowncounter', unit: 'By', description: 'Memory in use' },
  { name: 'hw.energy', kind: 'counter', unit: 'J', description: 'Energy consumed' },
];

type Values = Readonly<Record<string, readonly (readonly [Attributes, number])[]>>;

/** The same observations through the SDK's observable instruments: a function that sets what the next collection observes. */
function sdkPipeline(temporality: AggregationTemporality): { reader: TestReader; set: (v: Values) => void; provider: MeterProvider } {
  const reader = new TestReader(temporality);
  const provider = new MeterProvider({ readers: [reader], resource: resourceFromAttributes({ 'service.name': 't' }) });
  const meter = provider.getMeter('gpulet', '1.0.0');
  let current: Values = {};
  for (const spec of INSTRUMENTS) {
    const options = { unit: spec.unit, description: spec.description };
    const inst =
      spec.kind === 'gauge' ? meter.createObservableGauge(spec.name, options)
      : spec.kind === 'counter' ? meter.createObservableCounter(spec.name, options)
      : meter.createObservableUpDownCounter(spec.name, options);
    inst.addCallback((r) => {
      for (const [attributes, value] of current[spec.name] ?? []) r.observe(value, attributes);
    });
  }
  return { reader, provider, set: (v) => (current = v) };
}

const observations = (v: Values): Observation[] =>
  INSTRUMENTS.map((instrument) => ({ instrument, points: (v[instrument.name] ?? []).map(([attributes, value]) => ({ attributes, value })) }));

/** What a metric says, without times: for comparing ours with the SDK's. */
function essence(metrics: readonly MetricData[]): unknown[] {
  return metrics.map((m) => ({
    descriptor: { name: m.descriptor.name, unit: m.descriptor.unit, description: m.descriptor.description, valueType: m.descriptor.valueType },
    dataPointType: m.dataPointType,
    temporality: m.aggregationTemporality,
    monotonic: m.dataPointType === DataPointType.SUM ? m.isMonotonic : undefined,
    points: [...m.dataPoints].map((p) => [attributeKey(p.attributes), p.value]).sort(),
  }));
}

const pod = (name: string): Attributes => ({ 'hw.id': 'GPU-0', 'k8s.pod.name': name });
const t = (s: number): [number, number] => [s, 0];

describe('MetricDataBuilder', () => {
  it('builds what the SDK collects for the same observations, and the same Prometheus text', async () => {
    const sdk = sdkPipeline(AggregationTemporality.CUMULATIVE);
    const values: Values = {
      'hw.power': [[pod('a'), 300.5], [pod('b'), 120]],
      'hw.gpu.memory.usage': [[pod('a'), 2 ** 34]],
      'hw.energy': [[pod('a'), 1234.5], [pod('b'), 10]],
    };
    sdk.set(values);
    const { resourceMetrics } = await sdk.reader.collect();
    const theirs = resourceMetrics.scopeMetrics[0]!.metrics;
    const ours = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, t(1)).build(observations(values), t(2));
    expect(essence(ours)).toEqual(essence(theirs));
    const mine: ResourceMetrics = withOwnMetrics({ resource: resourceMetrics.resource, scopeMetrics: [] }, resourceMetrics.scopeMetrics[0]!.scope, ours);
    const serializer = new PrometheusSerializer();
    expect(serializer.serialize(mine)).toBe(serializer.serialize(resourceMetrics));
    await sdk.provider.shutdown();
  });

  it('forgets a series that is no longer observed, where the SDK reports and keeps it forever', async () => {
    const sdk = sdkPipeline(AggregationTemporality.CUMULATIVE);
    const builder = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, t(0));
    const pods = (names: string[]): Values => ({ 'hw.energy': names.map((n) => [pod(n), 1] as const) });
    const podsOf = (metrics: readonly MetricData[]) => metrics.flatMap((m) => m.dataPoints.map((p) => p.attributes['k8s.pod.name'])).sort();
    for (let i = 0; i < 50; i++) {
      sdk.set(pods([`p${i}`]));
      await sdk.reader.collect();
      builder.build(observations(pods([`p${i}`])), t(i + 1));
    }
    sdk.set(pods(['last']));
    const theirs = (await sdk.reader.collect()).resourceMetrics.scopeMetrics[0]!.metrics;
    const ours = builder.build(observations(pods(['last'])), t(100));
    expect(podsOf(theirs)).toHaveLength(51); // the SDK's behaviour, the reason for metric-data.ts
    expect(podsOf(ours)).toEqual(['last']);
    expect(builder.trackedSeries()).toBe(1);
    expect(builder.build(observations({}), t(101))).toEqual([]);
    expect(builder.trackedSeries()).toBe(0);
    await sdk.provider.shutdown();
  });

  it('keeps a cumulative series\' start time while it is observed, and starts a returning series anew', () => {
    const builder = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, t(10));
    const energy = (names: string[]) => observations({ 'hw.energy': names.map((n) => [pod(n), 5] as const) });
    const starts = (metrics: readonly MetricData[]) =>
      Object.fromEntries(metrics.flatMap((m) => m.dataPoints.map((p) => [String(p.attributes['k8s.pod.name']), p.startTime[0]])));
    expect(starts(builder.build(energy(['a']), t(20)))).toEqual({ a: 10 }); // the first collection: from creation
    expect(starts(builder.build(energy(['a', 'b']), t(30)))).toEqual({ a: 10, b: 20 }); // a new series: from the previous collection
    expect(starts(builder.build(energy(['b']), t(40)))).toEqual({ b: 20 });
    expect(starts(builder.build(energy(['a', 'b']), t(50)))).toEqual({ a: 40, b: 20 }); // a left and came back: a new series
    const [metric] = builder.build(energy(['a']), t(60));
    expect(metric?.dataPoints[0]?.endTime).toEqual(t(60));
  });

  it('reports deltas as the SDK does when the export path asks for delta temporality', async () => {
    const sdk = sdkPipeline(AggregationTemporality.DELTA);
    // The OTel spec's delta preference: counters delta, up-down counters cumulative.
    const builder = new MetricDataBuilder((kind) => (kind === 'counter' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE), t(0));
    const rounds: Values[] = [
      { 'hw.energy': [[pod('a'), 100], [pod('b'), 7]] },
      { 'hw.energy': [[pod('a'), 160], [pod('b'), 7]] },
      { 'hw.energy': [[pod('a'), 40]] }, // a's counter was reset; b left
      { 'hw.energy': [[pod('a'), 45], [pod('b'), 9]] }, // b is back: a new series, its whole value
    ];
    const deltas: unknown[] = [];
    for (const [i, v] of rounds.entries()) {
      sdk.set(v);
      const theirs = (await sdk.reader.collect()).resourceMetrics.scopeMetrics[0]?.metrics ?? [];
      const ours = builder.build(observations(v), t(i + 1));
      deltas.push(essence(ours));
      if (i !== 3) expect(essence(ours)).toEqual(essence(theirs));
      else expect(essence(theirs)).toEqual([expect.objectContaining({ points: [[attributeKey(pod('a')), 5], [attributeKey(pod('b')), 2]] })]);
    }
    // Round 4: the SDK remembers b's 7 from round 2 and reports 2; a series that left is new to us.
    expect(deltas[3]).toEqual([expect.objectContaining({ points: [[attributeKey(pod('a')), 5], [attributeKey(pod('b')), 9]] })]);
    await sdk.provider.shutdown();
  });

  it('keeps the last of two points with equal attributes, as the SDK does', async () => {
    const sdk = sdkPipeline(AggregationTemporality.CUMULATIVE);
    const values: Values = { 'hw.power': [[pod('a'), 1], [{ 'k8s.pod.name': 'a', 'hw.id': 'GPU-0' }, 2]] };
    sdk.set(values);
    const theirs = (await sdk.reader.collect()).resourceMetrics.scopeMetrics[0]!.metrics;
    const ours = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, t(0)).build(observations(values), t(1));
    expect(essence(ours)).toEqual(essence(theirs));
    expect(ours[0]?.dataPoints.map((p) => p.value)).toEqual([2]);
    await sdk.provider.shutdown();
  });
});

describe('temporalityOf', () => {
  it('follows the real OTLP exporter: cumulative by default; delta preference makes counters delta, up-down counters cumulative', async () => {
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-grpc');
    const cumulative = temporalityOf(new OTLPMetricExporter({ url: 'http://127.0.0.1:1' }));
    expect([cumulative('counter'), cumulative('updowncounter')]).toEqual([AggregationTemporality.CUMULATIVE, AggregationTemporality.CUMULATIVE]);
    const delta = temporalityOf(new OTLPMetricExporter({ url: 'http://127.0.0.1:1', temporalityPreference: AggregationTemporality.DELTA }));
    expect([delta('counter'), delta('updowncounter')]).toEqual([AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE]);
    expect(temporalityOf({})('counter')).toBe(AggregationTemporality.CUMULATIVE);
  });
});

describe('attributeKey', () => {
  it('keys attribute sets independently of order, cached per object with the same value as a fresh one', () => {
    expect(attributeKey({ a: '1', b: '2' })).toBe(attributeKey({ b: '2', a: '1' }));
    expect(attributeKey({ a: '1' })).not.toBe(attributeKey({ a: '2' }));
    const reused = { 'hw.id': 'GPU-0', 'k8s.pod.name': 'p1' };
    const first = attributeKey(reused);
    expect(attributeKey(reused)).toBe(first);
    expect(attributeKey({ 'k8s.pod.name': 'p1', 'hw.id': 'GPU-0' })).toBe(first);
    expect(attributeKey({ 'hw.id': 'GPU-0', 'k8s.pod.name': 'p2' })).not.toBe(first);
  });
});
