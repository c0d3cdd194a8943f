import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { attributeKey, dropUnobserved } from '../../src/telemetry/stale.js';

/** A pull reader, to collect what the real SDK produces. */
class TestReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

describe('dropUnobserved', () => {
  it('keys attribute sets independently of order', () => {
    expect(attributeKey({ a: '1', b: '2' })).toBe(attributeKey({ b: '2', a: '1' }));
    expect(attributeKey({ a: '1' })).not.toBe(attributeKey({ a: '2' }));
  });

  it('gives a cached key the same value as a fresh object with the same attributes', () => {
    const reused = { 'hw.id': 'GPU-0', 'k8s.pod.name': 'p1' };
    const first = attributeKey(reused);
    expect(attributeKey(reused)).toBe(first);
    expect(attributeKey({ 'k8s.pod.name': 'p1', 'hw.id': 'GPU-0' })).toBe(first);
    expect(attributeKey({ 'hw.id': 'GPU-0', 'k8s.pod.name': 'p2' })).not.toBe(first);
  });

  it('removes the series the SDK keeps reporting after the callback stopped observing them', async () => {
    const reader = new TestReader();
    const provider = new MeterProvider({ readers: [reader] });
    const gauge = provider.getMeter('t').createObservableGauge('hw.power');
    let pods = ['p1'];
    gauge.addCallback((r) => {
      for (const pod of pods) r.observe(1, { 'hw.id': 'GPU-0', 'k8s.pod.name': pod });
    });
    await reader.collect();
    pods = ['p2'];
    const { resourceMetrics } = await reader.collect();
    const seen = (rm: typeof resourceMetrics) =>
      rm.scopeMetrics.flatMap((sm) => sm.metrics.flatMap((m) => m.dataPoints.map((p) => p.attributes['k8s.pod.name'])));
    // The SDK's own behaviour (the reason for the filter): p1 is still there.
    expect(seen(resourceMetrics).sort()).toEqual(['p1', 'p2']);
    const observed = new Map([['hw.power', new Set([attributeKey({ 'hw.id': 'GPU-0', 'k8s.pod.name': 'p2' })])]]);
    expect(seen(dropUnobserved(resourceMetrics, observed))).toEqual(['p2']);
    // Metrics the filter does not know pass through; metrics left empty disappear.
    expect(seen(dropUnobserved(resourceMetrics, new Map()))).toHaveLength(2);
    expect(dropUnobserved(resourceMetrics, new Map([['hw.power', new Set<string>()]])).scopeMetrics[0]!.metrics).toHaveLength(0);
    await provider.shutdown();
  });
});
