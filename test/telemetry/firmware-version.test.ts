/**
 * `hw.firmware_version` (the GPU's VBIOS version, `nvmlDeviceGetVbiosVersion`) on the `hw.*` series, as the
 * OpenTelemetry hardware conventions recommend it: an attribute of every `hw.gpu.*` metric
 * (`metric_attributes.hw.gpu`, semantic-conventions docs/hardware/gpu.md; `ATTR_HW_FIRMWARE_VERSION` =
 * `hw.firmware_version` in @opentelemetry/semantic-conventions), beside `hw.driver_version` — not a resource
 * attribute. Checked through a real OTLP gRPC receiver and the Prometheus text of /metrics, from the mock dgx-h100
 * (6 whole H100s, 2 in MIG mode with 10 MIG devices): a MIG device carries its parent GPU's VBIOS version.
 */
import { ATTR_HW_FIRMWARE_VERSION } from '@opentelemetry/semantic-conventions/incubating';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { createMockBackend, GPU_MODELS, type MockBackend } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { deviceIdentities } from '../../src/telemetry/attributes.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { attrs, startOtlpReceiver, type OtlpReceiver, type OtlpRequest } from '../helpers/otlp-receiver.js';
import { parsePrometheusText } from '../helpers/promtext.js';
import { driverName, poolName } from '../helpers/names.js';
import { INVENTORY } from '../helpers/telemetry.js';

const VBIOS = GPU_MODELS['h100-80gb'].vbiosVersion;

let receiver: OtlpReceiver;
let backend: MockBackend;
let telemetry: Telemetry;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'fw-node' });
  await backend.init();
  telemetry = await startTelemetry({
    backend, ownership: { owners: () => new Map() }, health: new HealthTracker(backend.inventory()), nodeName: 'fw-node',
    serviceVersion: '0.1.0', resourceAttributes: {}, sampleIntervalMs: 200, metricsHost: '127.0.0.1', metricsPort: 0,
    otlp: { endpoint: receiver.endpoint, intervalMs: 1_000, timeoutMs: 1_000 }, dcgmCompat: false, logger: silentLogger(),
    driverName: driverName('gpu.gpulet.dev'), poolName: poolName('fw-node'),
  });
});

afterAll(async () => {
  await telemetry?.shutdown();
  await backend?.shutdown();
  await receiver?.close();
});

/** Every data point of every metric of the request, with its metric name and attributes. */
function points(req: OtlpRequest): { metric: string; attributes: Record<string, string> }[] {
  const out: { metric: string; attributes: Record<string, string> }[] = [];
  for (const rm of req.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        for (const p of [...(m.gauge?.dataPoints ?? []), ...(m.sum?.dataPoints ?? [])]) out.push({ metric: m.name, attributes: attrs(p.attributes) });
      }
    }
  }
  return out;
}

/** UUID → the VBIOS version of the GPU it is (or of its parent), from the inventory. */
function expectedByDevice(inventory: Inventory): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const g of inventory.gpus) {
    out.set(g.uuid, g.vbiosVersion);
    for (const m of g.migDevices) out.set(m.uuid, g.vbiosVersion);
  }
  return out;
}

describe('hw.firmware_version', () => {
  it('is the semantic-conventions attribute name', () => {
    expect(ATTR_HW_FIRMWARE_VERSION).toBe('hw.firmware_version');
  });

  it('OTLP: every hw.* data point of a GPU or MIG device carries its GPU\'s VBIOS version; the resource does not', async () => {
    const req = await receiver.waitFor((r) => points(r).some((p) => p.metric === 'hw.gpu.memory.usage'), 15_000);
    const expected = expectedByDevice(backend.inventory());
    // Temperature sensors are their own components (hw.type=temperature, hw.parent the device): checked below.
    const all = points(req).filter((p) => p.metric.startsWith('hw.') && p.attributes['hw.id'] !== undefined);
    const hw = all.filter((p) => p.attributes['hw.type'] !== 'temperature');
    const sensors = all.filter((p) => p.attributes['hw.type'] === 'temperature');
    expect(sensors.length).toBeGreaterThan(0);
    expect(sensors.filter((p) => !expected.has(p.attributes['hw.parent'] ?? '') || p.metric !== 'hw.temperature')).toEqual([]);
    expect(new Set(hw.map((p) => p.attributes['hw.id']))).toEqual(new Set(expected.keys())); // all 8 GPUs and 10 MIG devices
    expect(hw.filter((p) => p.attributes[ATTR_HW_FIRMWARE_VERSION] !== expected.get(p.attributes['hw.id']!))).toEqual([]);
    expect(new Set(hw.map((p) => p.attributes[ATTR_HW_FIRMWARE_VERSION]))).toEqual(new Set([VBIOS]));
    expect([...new Set(hw.map((p) => p.metric))]).toEqual(expect.arrayContaining(['hw.gpu.utilization', 'hw.gpu.memory.usage', 'hw.power', 'hw.status']));
    for (const rm of req.resourceMetrics) expect(attrs(rm.resource?.attributes ?? [])).not.toHaveProperty(ATTR_HW_FIRMWARE_VERSION);
  });

  it('Prometheus text: every hw_* series has the hw_firmware_version label of its device', async () => {
    const parsed = parsePrometheusText(await (await fetch(`${telemetry.url}/metrics`)).text());
    const expected = expectedByDevice(backend.inventory());
    const hw = parsed.samples.filter((s) => s.name.startsWith('hw_') && s.labels['hw_id'] !== undefined && s.labels['hw_type'] !== 'temperature');
    expect(new Set(hw.map((s) => s.labels['hw_id']))).toEqual(new Set(expected.keys()));
    expect(hw.filter((s) => s.labels['hw_firmware_version'] !== expected.get(s.labels['hw_id']!))).toEqual([]);
    const target = parsed.samples.find((s) => s.name === 'target_info');
    expect(target?.labels).not.toHaveProperty('hw_firmware_version');
  });

  it('is left out, not empty, for a GPU whose VBIOS version NVML does not give', () => {
    expect(INVENTORY.gpus.every((g) => g.vbiosVersion === undefined)).toBe(true);
    for (const id of deviceIdentities(INVENTORY).values()) expect(id.attributes).not.toHaveProperty(ATTR_HW_FIRMWARE_VERSION);
    const withOne: Inventory = { ...INVENTORY, gpus: INVENTORY.gpus.map((g, i) => (i === 1 ? { ...g, vbiosVersion: '96.00.74.00.0D' } : g)) };
    const ids = deviceIdentities(withOne);
    const gpu1 = withOne.gpus[1]!;
    expect(ids.get(withOne.gpus[0]!.uuid)?.attributes).not.toHaveProperty(ATTR_HW_FIRMWARE_VERSION);
    expect(ids.get(gpu1.uuid)?.attributes[ATTR_HW_FIRMWARE_VERSION]).toBe('96.00.74.00.0D');
    for (const m of gpu1.migDevices) expect(ids.get(m.uuid)?.attributes[ATTR_HW_FIRMWARE_VERSION]).toBe('96.00.74.00.0D');
  });
});
