/**
 * prometheus-text.ts writes, byte for byte, what the real `PrometheusSerializer` of @opentelemetry/exporter-prometheus
 * writes for the same MetricData (with `target_info` left out, as the agent's own series are written after the
 * SDK's): the whole catalogue of a mock dgx-h100 with every device held by a claim, and the corner cases of the
 * serializer's rules (escaping, name sanitising, `_total`, empty description and unit, infinities, non-string
 * attribute values).
 */
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type { Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, type MetricData } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { createMockBackend } from '../../src/gpu/mock/index.js';
import { silentLogger } from '../../src/log.js';
import { allocatableDevices } from '../../src/model/devices.js';
import type { DeviceOwner } from '../../src/model/types.js';
import { deviceIdentities } from '../../src/telemetry/attributes.js';
import { INSTRUMENTS } from '../../src/telemetry/instruments.js';
import { MetricDataBuilder, type Observation, type OwnInstrument } from '../../src/telemetry/metric-data.js';
import { observeOwn, withOwnMetrics, type InstrumentationScope } from '../../src/telemetry/own-metrics.js';
import { renderOwnMetrics } from '../../src/telemetry/prometheus-text.js';
import { claimRef, podRef } from '../helpers/names.js';

/** The serializer as the agent configures it, but without target_info (the SDK's part of the text carries it). */
function serializerText(metrics: readonly MetricData[], scope: InstrumentationScope): string {
  const rm = withOwnMetrics({ resource: resourceFromAttributes({ 'service.name': 'gpulet' }), scopeMetrics: [] }, scope, metrics);
  const text = new PrometheusSerializer(undefined, false, undefined, true).serialize(rm);
  return text === '# no registered metrics' ? '' : text;
}

const build = (observations: readonly Observation[]): MetricData[] =>
  new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, [1, 0]).build(observations, [2, 0]);

describe('renderOwnMetrics', () => {
  it('writes the serializer\'s text for the whole catalogue of a machine whose devices are all held', async () => {
    const backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'node-a' });
    await backend.init();
    try {
      const inventory = backend.inventory();
      const owners = new Map<string, DeviceOwner[]>();
      for (const [i, d] of allocatableDevices(inventory).entries()) {
        owners.set(d.uuid, [{ claim: claimRef({ namespace: 'ml', name: `claim-${i}` }), pods: [podRef({ namespace: 'ml', name: `pod-${i}` })], deviceName: d.name, uuid: d.uuid }]);
      }
      const health = new HealthTracker(inventory);
      const sample = await backend.sample();
      const observations = observeOwn(INSTRUMENTS, () => ({ sample, identities: deviceIdentities(inventory), owners, health }), () => [], silentLogger());
      const metrics = build(observations);
      expect(metrics.length).toBeGreaterThan(10);
      const scope = { name: 'gpulet', version: '1.2.3' };
      const ours = renderOwnMetrics(metrics, scope);
      expect(ours).toContain('k8s_pod_name="pod-0"');
      expect(ours).toBe(serializerText(metrics, scope));
      // The label cache: a second render of the same series gives the same text.
      expect(renderOwnMetrics(metrics, scope)).toBe(ours);
    } finally {
      await backend.shutdown();
    }
  });

  it('follows the serializer on escaping, names, types, empty metadata and special values', () => {
    const odd: Attributes = { 'a.b-c': 'quote " back \\ slash\nnewline', n: 42, flag: true, list: ['x', 'y'], '9lives': 'ok' };
    const cases: readonly [OwnInstrument, readonly [Attributes, number][]][] = [
      [{ name: 'hw.odd__name', kind: 'gauge', unit: '', description: '' }, [[odd, Infinity], [{}, -Infinity], [{ x: '' }, NaN]]],
      [{ name: '9.starts.with.digit', kind: 'counter', unit: 'By', description: 'back\\slash and\nnewline' }, [[{ k: 'v' }, 1.5e-7]]],
      [{ name: 'already_total', kind: 'counter', unit: '1', description: 'd' }, [[{ k: 'v' }, 2 ** 70 + 0.5]]],
      [{ name: 'updown', kind: 'updowncounter', unit: '{thing}', description: 'd' }, [[{ k: 'v' }, -3]]],
      [{ name: 'empty', kind: 'gauge', unit: 'W', description: 'no points' }, []],
    ];
    const metrics = build(cases.map(([instrument, points]) => ({ instrument, points: points.map(([attributes, value]) => ({ attributes, value })) })));
    for (const scope of [{ name: 'gpulet', version: '0.1.0' }, { name: 'gpulet' }, { name: 'we"ird', version: 'v\\1', schemaUrl: 'https://x/y' }]) {
      expect(renderOwnMetrics(metrics, scope)).toBe(serializerText(metrics, scope));
    }
    expect(renderOwnMetrics([], { name: 'gpulet' })).toBe('');
  });
});
