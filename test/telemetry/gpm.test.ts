/**
 * GPM profiling metrics end to end: the NVML backend on the fake libnvidia-ml (machine: an A100, a whole H100, an
 * H100 with two MIG devices) feeds telemetry; a real OTLP gRPC receiver and the Prometheus text of /metrics carry
 * `gpulet.gpu.*` profiling instruments and dcgm-exporter's `DCGM_FI_PROF_*` gauges with the figures the fake's
 * counters imply (test/helpers/gpm-model.ts), labelled as dcgm-exporter labels them (a MIG device on its parent's
 * `gpu`/`UUID` plus `GPU_I_PROFILE`/`GPU_I_ID`), and nothing at all — not 0 — for the A100.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { createNvmlBackend, type NvmlBackend } from '../../src/gpu/nvml/index.js';
import { silentLogger } from '../../src/log.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { expectedGpm, fakeGpmActivity, GPM_MACHINE } from '../helpers/gpm-model.js';
import { driverName, poolName } from '../helpers/names.js';
import { fakeSetup, type FakeSetup } from '../helpers/nvml.js';
import { attrs, pointValue, startOtlpReceiver, type OtlpReceiver, type OtlpRequest } from '../helpers/otlp-receiver.js';
import { parsePrometheusText, type PromSample } from '../helpers/promtext.js';
import { waitFor } from '../helpers/wait.js';

/** OTel instrument (and its series attribute) → GpmMetrics field, and the DCGM field of the same figure. */
const CATALOGUE: readonly { otel: string; attr?: [string, string]; field: string; dcgm: string }[] = [
  { otel: 'gpulet.gpu.graphics_engine.utilization', field: 'graphicsActive', dcgm: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE' },
  { otel: 'gpulet.gpu.sm.utilization', field: 'smActive', dcgm: 'DCGM_FI_PROF_SM_ACTIVE' },
  { otel: 'gpulet.gpu.sm.occupancy', field: 'smOccupancy', dcgm: 'DCGM_FI_PROF_SM_OCCUPANCY' },
  { otel: 'gpulet.gpu.pipe.utilization', attr: ['gpulet.gpu.pipe', 'tensor'], field: 'tensorActive', dcgm: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE' },
  { otel: 'gpulet.gpu.pipe.utilization', attr: ['gpulet.gpu.pipe', 'fp64'], field: 'fp64Active', dcgm: 'DCGM_FI_PROF_PIPE_FP64_ACTIVE' },
  { otel: 'gpulet.gpu.pipe.utilization', attr: ['gpulet.gpu.pipe', 'fp32'], field: 'fp32Active', dcgm: 'DCGM_FI_PROF_PIPE_FP32_ACTIVE' },
  { otel: 'gpulet.gpu.pipe.utilization', attr: ['gpulet.gpu.pipe', 'fp16'], field: 'fp16Active', dcgm: 'DCGM_FI_PROF_PIPE_FP16_ACTIVE' },
  { otel: 'gpulet.gpu.dram.utilization', field: 'dramActive', dcgm: 'DCGM_FI_PROF_DRAM_ACTIVE' },
  { otel: 'gpulet.gpu.pcie.bandwidth', attr: ['network.io.direction', 'transmit'], field: 'pcieTxBytesPerSecond', dcgm: 'DCGM_FI_PROF_PCIE_TX_BYTES' },
  { otel: 'gpulet.gpu.pcie.bandwidth', attr: ['network.io.direction', 'receive'], field: 'pcieRxBytesPerSecond', dcgm: 'DCGM_FI_PROF_PCIE_RX_BYTES' },
  { otel: 'gpulet.gpu.nvlink.bandwidth', attr: ['network.io.direction', 'transmit'], field: 'nvlinkTxBytesPerSecond', dcgm: 'DCGM_FI_PROF_NVLINK_TX_BYTES' },
  { otel: 'gpulet.gpu.nvlink.bandwidth', attr: ['network.io.direction', 'receive'], field: 'nvlinkRxBytesPerSecond', dcgm: 'DCGM_FI_PROF_NVLINK_RX_BYTES' },
];

let fake: FakeSetup;
let backend: NvmlBackend;
let receiver: OtlpReceiver;
let telemetry: Telemetry;

beforeAll(async () => {
  fake = await fakeSetup({ machine: GPM_MACHINE, nodeName: 'gpm-node' });
  Object.assign(process.env, fake.files.env);
  backend = createNvmlBackend({ library: fake.library, sysfsRoot: fake.sysfsRoot });
  await backend.init();
  receiver = await startOtlpReceiver();
  telemetry = await startTelemetry({
    backend, ownership: { owners: () => new Map() }, health: new HealthTracker(backend.inventory()), nodeName: 'gpm-node',
    serviceVersion: '0.1.0', resourceAttributes: {}, sampleIntervalMs: 200, metricsHost: '127.0.0.1', metricsPort: 0,
    otlp: { endpoint: receiver.endpoint, intervalMs: 500, timeoutMs: 1_000 }, dcgmCompat: true, logger: silentLogger(),
    driverName: driverName('gpu.gpulet.dev'), poolName: poolName('gpm-node'),
  });
}, 120_000);

afterAll(async () => {
  await telemetry?.shutdown();
  await backend?.shutdown();
  await receiver?.close();
  await fake?.cleanup();
});

/** Expected value per (hw.id, GpmMetrics field), from the fake's counter model; devices without a figure absent. */
function expectations(): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const g of backend.inventory().gpus) {
    if (g.architecture === 'Ampere') continue; // GPM is Hopper and newer
    out.set(g.uuid, expectedGpm(fakeGpmActivity(g.minor), false));
    for (const m of g.migDevices) out.set(m.uuid, expectedGpm(fakeGpmActivity(g.minor, m.gpuInstanceId), true));
  }
  return out;
}

function gpmPoints(req: OtlpRequest): { metric: string; value: number; attributes: Record<string, string> }[] {
  const out: { metric: string; value: number; attributes: Record<string, string> }[] = [];
  const names = new Set(CATALOGUE.map((c) => c.otel));
  for (const rm of req.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        if (!names.has(m.name)) continue;
        for (const p of m.gauge?.dataPoints ?? []) out.push({ metric: m.name, value: pointValue(p), attributes: attrs(p.attributes) });
      }
    }
  }
  return out;
}

const close = (a: number | undefined, e: number): boolean => a !== undefined && Math.abs(a - e) <= 1e-9 * Math.max(1, Math.abs(e));

describe('GPM profiling metrics in telemetry (fake libnvidia-ml)', () => {
  it('OTLP: one gauge point per device and figure, equal to the fake\'s counters; none for the A100', async () => {
    const expected = expectations();
    const req = await receiver.waitFor((r) => gpmPoints(r).length > 0, 20_000);
    const points = gpmPoints(req);
    const a100 = backend.inventory().gpus.find((g) => g.architecture === 'Ampere')!;
    expect(points.filter((p) => p.attributes['hw.id'] === a100.uuid)).toEqual([]);
    const want = [...expected].flatMap(([uuid, fig]) =>
      CATALOGUE.filter((c) => fig[c.field] !== undefined).map((c) => ({ uuid, c, value: fig[c.field]! })),
    );
    expect(points).toHaveLength(want.length); // 2 whole H100s × 12 + 2 MIG devices × 8
    for (const w of want) {
      const p = points.find((x) => x.metric === w.c.otel && x.attributes['hw.id'] === w.uuid && (w.c.attr === undefined || x.attributes[w.c.attr[0]] === w.c.attr[1]));
      expect(close(p?.value, w.value), `${w.c.otel} ${w.c.attr?.join('=') ?? ''} ${w.uuid}: ${String(p?.value)} != ${w.value}`).toBe(true);
    }
  });

  it('/metrics: DCGM_FI_PROF_* gauges with dcgm-exporter\'s labels and the fake\'s figures, absent for the A100', async () => {
    const expected = expectations();
    const inv = backend.inventory();
    let samples: PromSample[] = [];
    let types = new Map<string, string>();
    await waitFor(async () => {
      const parsed = parsePrometheusText(await (await fetch(`${telemetry.url}/metrics`)).text());
      samples = parsed.samples;
      types = parsed.types;
      return samples.some((s) => s.name === 'DCGM_FI_PROF_SM_ACTIVE');
    }, { what: 'DCGM_FI_PROF_SM_ACTIVE on /metrics' });
    for (const c of CATALOGUE) expect(types.get(c.dcgm), c.dcgm).toBe('gauge');
    const a100 = inv.gpus.find((g) => g.architecture === 'Ampere')!;
    expect(samples.filter((s) => s.name.startsWith('DCGM_FI_PROF_') && s.labels['UUID'] === a100.uuid)).toEqual([]);
    expect(samples.filter((s) => s.name.startsWith('gpulet_gpu_') && s.labels['hw_id'] === a100.uuid && /pipe|sm_|dram|graphics|bandwidth/.test(s.name))).toEqual([]);
    for (const g of inv.gpus.filter((x) => x !== a100)) {
      const whole = samples.filter((s) => s.labels['UUID'] === g.uuid && s.labels['GPU_I_ID'] === undefined && s.name.startsWith('DCGM_FI_PROF_'));
      const fig = expected.get(g.uuid)!;
      for (const c of CATALOGUE) {
        const s = whole.find((x) => x.name === c.dcgm);
        expect(s?.labels['gpu'], c.dcgm).toBe(String(g.index));
        expect(s?.labels['device']).toBe(`nvidia${g.minor}`);
        expect(close(s?.value, fig[c.field]!), `${c.dcgm} ${g.uuid}: ${String(s?.value)}`).toBe(true);
      }
      for (const m of g.migDevices) {
        const mine = samples.filter((s) => s.name.startsWith('DCGM_FI_PROF_') && s.labels['UUID'] === g.uuid && s.labels['GPU_I_ID'] === String(m.gpuInstanceId));
        const mfig = expected.get(m.uuid)!;
        expect(new Set(mine.map((s) => s.labels['GPU_I_PROFILE']))).toEqual(new Set([m.profile]));
        expect(mine.map((s) => s.name).sort()).toEqual(CATALOGUE.filter((c) => mfig[c.field] !== undefined).map((c) => c.dcgm).sort());
        for (const s of mine) expect(close(s.value, mfig[CATALOGUE.find((c) => c.dcgm === s.name)!.field]!), s.name).toBe(true);
      }
    }
  });
});
