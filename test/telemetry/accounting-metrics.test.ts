/**
 * Per-claim accounting on `/metrics` (src/telemetry/accounting-metrics.ts through startTelemetry, real HTTP, the
 * OTel Prometheus exporter as it really names things), with readings the test sets: a claim holding a GPU gets
 * `gpulet_claim_energy_total` (the counter's delta, J), `gpulet_claim_device_time_total` (s),
 * `gpulet_claim_sm_active_time_total` (utilization × time, s) and `gpulet_claim_memory_peak` (bytes, reserved
 * excluded) with its claim and pod labels; after the claim releases the GPU, one scrape carries the final
 * totals and the next has no series of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { silentLogger } from '../../src/log.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { FakeBackend, FakeOwnership, fullReadings, GPU0, INVENTORY } from '../helpers/telemetry.js';
import { parsePrometheusText, type PromSample } from '../helpers/promtext.js';
import { claimRef, driverName, podRef, poolName } from '../helpers/names.js';
import { waitFor } from '../helpers/wait.js';

let telemetry: Telemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
});

const GIB = 1024 ** 3;

async function scrape(t: Telemetry): Promise<{ samples: PromSample[]; types: Map<string, string> }> {
  return parsePrometheusText(await (await fetch(`${t.url}/metrics`)).text());
}

describe('per-claim accounting on /metrics', () => {
  it('reports the claim\'s totals under the exporter\'s names, the final ones once after release, then nothing', async () => {
    const backend = new FakeBackend();
    const ownership = new FakeOwnership();
    const claim = claimRef({ namespace: 'ml', name: 'train' });
    const pod = podRef({ namespace: 'ml', name: 'trainer-0' });
    ownership.map.set(GPU0, [{ claim, pods: [pod], deviceName: 'gpu-0', uuid: GPU0 }]);
    // used 20 GiB of which 1 GiB reserved; utilization 42 %; energy counter 123456.789 J.
    backend.next = { timestampMs: 1_000, devices: [fullReadings(GPU0)] };
    telemetry = await startTelemetry({
      backend, ownership, health: new HealthTracker(INVENTORY), nodeName: 'node-a', serviceVersion: '9.9.9',
      sampleIntervalMs: 3_600_000, metricsHost: '127.0.0.1', metricsPort: 0, dcgmCompat: false, scrapeCacheMs: 0, logger: silentLogger(),
      driverName: driverName('gpu.gpulet.dev'), poolName: poolName('node-a'),
    });
    const t = telemetry;
    expect(t.accounting.totals(claim.uid)).toMatchObject({ deviceSeconds: 0, energyJoules: 0 }); // the start-up sample: baselines

    backend.next = { timestampMs: 11_000, devices: [fullReadings(GPU0, { energyMillijoules: 123_456_789 + 5_000_000, memoryUsedBytes: 30 * GIB })] };
    t.claimsChanged();
    await waitFor(() => t.accounting.totals(claim.uid)?.deviceSeconds === 10, { what: 'the second sample integrated' });
    const held = await scrape(t);
    const of = (samples: PromSample[], name: string) => samples.filter((s) => s.name === name && s.labels['gpulet_claim_uid'] === claim.uid);
    const labels = { k8s_namespace_name: 'ml', gpulet_claim_name: 'train', gpulet_claim_namespace: 'ml', gpulet_claim_uid: claim.uid, k8s_pod_name: 'trainer-0', k8s_pod_uid: pod.uid };
    expect(of(held.samples, 'gpulet_claim_energy_total')).toEqual([{ name: 'gpulet_claim_energy_total', labels: expect.objectContaining(labels), value: 5000 }]);
    expect(of(held.samples, 'gpulet_claim_device_time_total')[0]?.value).toBe(10);
    expect(of(held.samples, 'gpulet_claim_sm_active_time_total')[0]?.value).toBeCloseTo(4.2, 9);
    expect(of(held.samples, 'gpulet_claim_memory_peak')[0]?.value).toBe(29 * GIB);
    expect(held.types.get('gpulet_claim_energy_total')).toBe('counter');
    expect(held.types.get('gpulet_claim_device_time_total')).toBe('counter');
    expect(held.types.get('gpulet_claim_sm_active_time_total')).toBe('counter');
    expect(held.types.get('gpulet_claim_memory_peak')).toBe('gauge');

    // Unprepared: the next sample closes the claim's interval.
    ownership.map.clear();
    backend.next = { timestampMs: 21_000, devices: [fullReadings(GPU0, { energyMillijoules: 123_456_789 + 6_000_000 })] };
    t.claimsChanged();
    await waitFor(() => t.accounting.totals(claim.uid)?.departedAtMs === 21_000, { what: 'the claim closed' });
    const final = await scrape(t);
    expect(of(final.samples, 'gpulet_claim_energy_total')[0]?.value).toBe(6000);
    expect(of(final.samples, 'gpulet_claim_device_time_total')[0]?.value).toBe(20);
    const after = await scrape(t);
    for (const name of ['gpulet_claim_energy_total', 'gpulet_claim_device_time_total', 'gpulet_claim_sm_active_time_total', 'gpulet_claim_memory_peak']) {
      expect(of(after.samples, name), name).toEqual([]);
    }
    expect(t.accounting.totals(claim.uid)).toBeUndefined(); // forgotten: memory bounded
  });
});
