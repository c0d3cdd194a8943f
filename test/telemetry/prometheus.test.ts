/**
 * A real Prometheus (Debian's /usr/bin/prometheus) scrapes the whole running agent (mock dgx-h100, embedded API
 * server, as `npm start` runs it); PromQL over its HTTP API returns the GPU series and the DRA operation metrics
 * (a histogram quantile included). Also /healthz and /readyz.
 * Skipped with a notice when prometheus is not installed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedApiProvider } from '../../dev/embedded.js';
import { loadConfig } from '../../src/config.js';
import type { GpuBackend } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { startAgent, type Agent } from '../../src/main.js';
import type { Telemetry } from '../../src/telemetry/exporters.js';
import { havePrometheus, PROMETHEUS, startPrometheus, type Prometheus, type PromSeries } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

if (!havePrometheus) console.warn(`NOTICE: ${PROMETHEUS} not found: skipping the Prometheus scrape test (CI installs it)`);

let dir: string;
let agent: Agent;
let backend: GpuBackend;
let telemetry: Telemetry;
let prom: Prometheus | undefined;

const query = (q: string): Promise<PromSeries[]> => prom!.query(q);
/** The tail of Prometheus's own log, for a timeout error. */
const promLogTail = (): string => prom?.logTail() ?? '';

describe.skipIf(!havePrometheus)('Prometheus scrape of /metrics', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-prom-'));
    const config = loadConfig(
      ['--node-name', 'prom-node', '--state-dir', path.join(dir, 'agent'), '--metrics-address', '127.0.0.1:0', '--sample-interval', '500'],
      {},
      dir,
    );
    agent = await startAgent(config, silentLogger(), { embeddedApi: embeddedApiProvider });
    backend = agent.backend;
    telemetry = agent.telemetry;
    prom = await startPrometheus(dir, [`127.0.0.1:${telemetry.port}`]);
  });

  afterAll(async () => {
    await prom?.stop();
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('has hw.gpu.utilization for every whole GPU, as a 0..1 fraction', async () => {
    const whole = backend.inventory().gpus.filter((g) => !g.migEnabled).map((g) => g.uuid);
    const series = await waitFor(async () => {
      const r = await query('hw_gpu_utilization{hw_gpu_task="general"}');
      return r.length >= whole.length ? r : undefined;
    }, { what: 'utilization series', intervalMs: 250, detail: promLogTail });
    expect(new Set(series.map((s) => s.metric['hw_id']))).toEqual(new Set(whole));
    for (const s of series) {
      const v = Number(s.value[1]);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
      expect(s.metric).toMatchObject({ hw_vendor: 'NVIDIA', job: 'gpulet' });
      expect(s.metric).not.toHaveProperty('hw_type'); // not a hw.gpu.* attribute (semconv metric_attributes.hw.gpu)
    }
  });

  it('has hw.gpu.memory.usage for every MIG device, within its memory', async () => {
    const migs = backend.inventory().gpus.flatMap((g) => g.migDevices);
    const series = await query('hw_gpu_memory_usage{hw_parent!=""}');
    const byId = new Map(series.map((s) => [s.metric['hw_id'], Number(s.value[1])]));
    expect(migs.length).toBe(10);
    for (const m of migs) {
      const v = byId.get(m.uuid);
      expect(v, m.uuid).toBeDefined();
      expect(v!).toBeGreaterThanOrEqual(0);
      expect(v!).toBeLessThanOrEqual(m.memoryBytes);
    }
  });

  it('has the dcgm-exporter series with dcgm labels, in dcgm units', async () => {
    const util = await query('DCGM_FI_DEV_GPU_UTIL');
    expect(util.length).toBe(6);
    for (const s of util) {
      expect(Number(s.value[1])).toBeGreaterThanOrEqual(0);
      expect(Number(s.value[1])).toBeLessThanOrEqual(100);
      expect(s.metric).toMatchObject({ Hostname: 'prom-node', modelName: expect.stringContaining('H100') as string });
      expect(s.metric['device']).toMatch(/^nvidia\d+$/);
      expect(s.metric['pci_bus_id']).toMatch(/^[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]$/);
    }
    const fb = await query('DCGM_FI_DEV_FB_USED{GPU_I_PROFILE!=""}');
    expect(fb.length).toBe(10);
    // Same device, two units: MiB (dcgm) vs bytes (OTel), sampled at the same scrape.
    const ratio = await query('sum(DCGM_FI_DEV_FB_USED{GPU_I_PROFILE!=""}) * 1048576 / sum(hw_gpu_memory_usage{hw_parent!=""})');
    expect(ratio).toHaveLength(1);
    expect(Number(ratio[0]!.value[1])).toBeCloseTo(1, 6);
    // Before any XID, every GPU has DCGM_FI_DEV_XID_ERRORS at 0, "No Error" (dcgm-exporter's err_code/err_msg).
    const xid = await query('DCGM_FI_DEV_XID_ERRORS{err_code="0", err_msg="No Error"} == 0');
    expect(new Set(xid.map((s) => s.metric['gpu']))).toEqual(new Set(backend.inventory().gpus.map((g) => String(g.index))));
  });

  it('ingests the DRA operation metrics: the request counter, and the duration histogram PromQL can take a quantile of', async () => {
    // Three NodePrepareResources calls as the kubelet plugin reports them (src/main.ts wires telemetry.dra to it).
    for (const seconds of [0.003, 0.03, 0.3]) {
      telemetry.dra.started('NodePrepareResources');
      telemetry.dra.finished('NodePrepareResources', seconds, true);
    }
    const total = await waitFor(async () => {
      const r = await query('gpulet_dra_requests_total{operation="NodePrepareResources",result="success"}');
      return r[0]?.value[1] === '3' ? r : undefined;
    }, { what: 'gpulet_dra_requests_total == 3', intervalMs: 250, detail: promLogTail });
    expect(total[0]!.metric).toMatchObject({ driver: 'gpu.gpulet.dev', job: 'gpulet' });
    const count = await query('gpulet_dra_request_duration_seconds_count{operation="NodePrepareResources",result="success"}');
    expect(count[0]?.value[1]).toBe('3');
    // The median of 3, 30 and 300 ms lies in the bucket (0.025, 0.05]; PromQL interpolates within it.
    const median = await query('histogram_quantile(0.5, sum by (le) (gpulet_dra_request_duration_seconds_bucket{operation="NodePrepareResources"}))');
    const m = Number(median[0]?.value[1]);
    expect(m).toBeGreaterThan(0.025);
    expect(m).toBeLessThanOrEqual(0.05);
    const inflight = await query('gpulet_dra_requests_inflight{operation="NodePrepareResources"}');
    expect(inflight[0]?.value[1]).toBe('0');
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${telemetry.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${telemetry.url}/readyz`)).status).toBe(200);
    telemetry.setReady(false, 'test: not ready');
    const notReady = await fetch(`${telemetry.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain('test: not ready');
    telemetry.setReady(true);
  });
});
