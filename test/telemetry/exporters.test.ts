/**
 * startTelemetry end to end over real HTTP (port 0) with the fake backend: the OTel Prometheus exporter's
 * names as it really produces them, the dcgm series after them, /healthz and /readyz, shutdown.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { silentLogger } from '../../src/log.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { FakeBackend, FakeOwnership, fullReadings, GPU0, GPU1, INVENTORY, MIG_A } from '../helpers/telemetry.js';
import { parsePrometheusText } from '../helpers/promtext.js';
import { claimRef, driverName, podRef, poolName } from '../helpers/names.js';

let telemetry: Telemetry | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  telemetry = undefined;
});

async function start(dcgmCompat: boolean, ownership = new FakeOwnership(), scrapeCacheMs?: number) {
  const backend = new FakeBackend();
  backend.next = { timestampMs: 1, devices: [fullReadings(GPU0), fullReadings(GPU1), fullReadings(MIG_A, { gpuUtilizationPercent: undefined })] };
  const health = new HealthTracker(INVENTORY);
  telemetry = await startTelemetry({
    backend, ownership, health, nodeName: 'node-a', serviceVersion: '9.9.9', resourceAttributes: { 'host.name': 'host-a' },
    sampleIntervalMs: 60_000, metricsHost: '127.0.0.1', metricsPort: 0, dcgmCompat, logger: silentLogger(),
    driverName: driverName('gpu.gpulet.dev'), poolName: poolName('node-a'),
    ...(scrapeCacheMs === undefined ? {} : { scrapeCacheMs }),
  });
  return { backend, health, telemetry };
}

async function get(t: Telemetry, path: string) {
  const res = await fetch(`${t.url}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('startTelemetry', () => {
  it('serves OTel metrics under the exporter names (dots → underscores, counters + _total, no unit suffix)', async () => {
    const { telemetry: t } = await start(false);
    const res = await get(t, '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toContain('text/plain');
    const parsed = parsePrometheusText(res.body);
    const names = new Set(parsed.samples.map((s) => s.name));
    for (const n of ['hw_gpu_utilization', 'hw_gpu_memory_usage', 'hw_gpu_memory_limit', 'hw_power', 'hw_temperature', 'hw_status', 'hw_energy_total', 'hw_errors_total', 'hw_gpu_io_total', 'gpulet_gpu_clock_frequency']) {
      expect(names.has(n), n).toBe(true);
    }
    expect(parsed.types.get('hw_energy_total')).toBe('counter'); // the family is named with its _total suffix
    expect(parsed.types.get('hw_gpu_memory_usage')).toBe('gauge'); // UpDownCounter → gauge
    const util = parsed.samples.find((s) => s.name === 'hw_gpu_utilization' && s.labels['hw_id'] === GPU0 && s.labels['hw_gpu_task'] === 'general')!;
    expect(util.value).toBeCloseTo(0.42, 12);
    expect(util.labels).toMatchObject({ hw_vendor: 'NVIDIA', otel_scope_name: 'gpulet' });
    expect(util.labels).not.toHaveProperty('hw_type');
    const power = parsed.samples.find((s) => s.name === 'hw_power' && s.labels['hw_id'] === GPU0)!;
    expect(power.labels).toMatchObject({ hw_type: 'gpu' });
    expect(power.value).toBeCloseTo(345.678, 9);
    const target = parsed.samples.find((s) => s.name === 'target_info')!;
    expect(target.labels).toMatchObject({ service_name: 'gpulet', service_version: '9.9.9', k8s_node_name: 'node-a', host_name: 'host-a' });
    expect(names.has('DCGM_FI_DEV_GPU_UTIL')).toBe(false);
  });

  it('appends dcgm-exporter series when dcgmCompat is on, attributed to the claim holding the device', async () => {
    const ownership = new FakeOwnership();
    const { telemetry: t } = await start(true, ownership);
    const pod = podRef({ namespace: 'ml', name: 'p1' });
    ownership.map.set(MIG_A, [{ claim: claimRef({ namespace: 'ml', name: 'c1' }), pods: [pod], deviceName: 'gpu-1-mig-1g10gb-19-9', uuid: MIG_A }]);
    const parsed = parsePrometheusText((await get(t, '/metrics')).body);
    const fb = parsed.samples.find((s) => s.name === 'DCGM_FI_DEV_FB_USED' && s.labels['GPU_I_ID'] === '9')!;
    expect(fb.labels).toMatchObject({ UUID: GPU1, namespace: 'ml', pod: 'p1', dra_claim_name: 'c1', dra_pool_name: 'node-a', dra_driver_name: 'gpu.gpulet.dev', Hostname: 'node-a' });
    const otel = parsed.samples.find((s) => s.name === 'hw_gpu_memory_usage' && s.labels['hw_id'] === MIG_A)!;
    expect(otel.labels).toMatchObject({ k8s_pod_name: 'p1', k8s_pod_uid: pod.uid, k8s_namespace_name: 'ml', gpulet_claim_name: 'c1', hw_parent: GPU1 });
  });

  it('drops a series attribution when the claim releases the device', async () => {
    const ownership = new FakeOwnership();
    const { telemetry: t } = await start(false, ownership, 0); // no shared body: each scrape renders
    ownership.map.set(GPU0, [{ claim: claimRef({ namespace: 'ml', name: 'c1' }), pods: [podRef({ namespace: 'ml', name: 'p1' })], deviceName: 'gpu-0', uuid: GPU0 }]);
    const held = parsePrometheusText((await get(t, '/metrics')).body).samples.filter((s) => s.name === 'hw_power' && s.labels['hw_id'] === GPU0);
    expect(held.map((s) => s.labels['k8s_pod_name'])).toEqual(['p1']);
    ownership.map.clear();
    const freed = parsePrometheusText((await get(t, '/metrics')).body).samples.filter((s) => s.name === 'hw_power' && s.labels['hw_id'] === GPU0);
    expect(freed.map((s) => s.labels['k8s_pod_name'])).toEqual([undefined]);
  });

  it('back-to-back and concurrent scrapes within the cache time share one render (issue 9: /metrics cannot exhaust memory)', async () => {
    const { telemetry: t } = await start(true);
    const first = await get(t, '/metrics');
    const more = await Promise.all(Array.from({ length: 10 }, () => get(t, '/metrics'))); // below the cap of 16 concurrent scrapes
    expect(more.every((r) => r.status === 200 && r.body === first.body)).toBe(true);
    expect(t.scrapeStats()).toMatchObject({ renders: 1, shared: 10, scrapesInFlight: 0 });
  });

  it('answers /healthz 200 and /readyz 503 with the reason until ready, 404 elsewhere', async () => {
    const { telemetry: t } = await start(false);
    expect((await get(t, '/healthz')).status).toBe(200);
    const notReady = await get(t, '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toContain('starting');
    t.setReady(true);
    expect((await get(t, '/readyz')).status).toBe(200);
    t.setReady(false, 'kubelet registration lost');
    const again = await get(t, '/readyz');
    expect(again.status).toBe(503);
    expect(again.body).toContain('kubelet registration lost');
    expect((await get(t, '/nope')).status).toBe(404);
  });

  it('shuts down idempotently and stops listening', async () => {
    const { telemetry: t } = await start(false);
    const url = t.url;
    await Promise.all([t.shutdown(), t.shutdown()]);
    await t.shutdown();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    telemetry = undefined;
  });

  it('keeps serving when the backend sample rejects', async () => {
    const { telemetry: t, backend } = await start(false);
    backend.fail = new Error('NVML_ERROR_GPU_IS_LOST');
    const res = await get(t, '/metrics');
    expect(res.status).toBe(200);
    expect(parsePrometheusText(res.body).samples.some((s) => s.name === 'hw_power')).toBe(true);
  });
});
