/**
 * OTLP gRPC export to a real gRPC receiver, from the mock dgx-h100 machine (6 whole H100s + 2 in MIG mode).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { createMockBackend, type MockBackend } from '../../src/gpu/mock/index.js';
import type { DeviceOwner, OwnershipSource } from '../../src/model/types.js';
import { allocatableDevices } from '../../src/model/devices.js';
import { silentLogger } from '../../src/log.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { attrs, pointValue, startOtlpReceiver, type OtlpMetric, type OtlpReceiver, type OtlpRequest } from '../helpers/otlp-receiver.js';
import { claimRef, driverName, podRef, poolName } from '../helpers/names.js';

let receiver: OtlpReceiver;
let backend: MockBackend;
let telemetry: Telemetry;
let owned: DeviceOwner;

function metric(req: OtlpRequest, name: string): OtlpMetric | undefined {
  for (const rm of req.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) if (m.name === name) return m;
  return undefined;
}

const POD_UID = '2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f';

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'otlp-node' });
  await backend.init();
  const inventory = backend.inventory();
  const mig = allocatableDevices(inventory).find((d) => d.kind === 'mig')!;
  owned = { claim: claimRef({ namespace: 'ml', name: 'mig-claim' }), pods: [podRef({ namespace: 'ml', name: 'trainer', uid: POD_UID })], deviceName: mig.name, uuid: mig.uuid };
  const ownership: OwnershipSource = { owners: () => new Map([[owned.uuid, [owned]]]) };
  telemetry = await startTelemetry({
    backend, ownership, health: new HealthTracker(inventory), nodeName: 'otlp-node', serviceVersion: '0.1.0',
    resourceAttributes: { 'host.name': 'otlp-host' }, sampleIntervalMs: 200, metricsHost: '127.0.0.1', metricsPort: 0,
    otlp: { endpoint: receiver.endpoint, intervalMs: 1_000, timeoutMs: 1_000 }, dcgmCompat: false, logger: silentLogger(),
    driverName: driverName('gpu.gpulet.dev'), poolName: poolName('otlp-node'),
  });
});

afterAll(async () => {
  await telemetry?.shutdown();
  await backend?.shutdown();
  await receiver?.close();
});

describe('OTLP gRPC export', () => {
  it('delivers hw.* metrics with the node resource and per-device hw.id', async () => {
    const req = await receiver.waitFor((r) => metric(r, 'hw.gpu.utilization') !== undefined, 15_000);
    const resource = attrs(req.resourceMetrics[0]!.resource!.attributes);
    expect(resource).toMatchObject({ 'service.name': 'gpulet', 'service.version': '0.1.0', 'k8s.node.name': 'otlp-node', 'host.name': 'otlp-host' });

    const inventory = backend.inventory();
    const util = metric(req, 'hw.gpu.utilization')!;
    expect(util.unit).toBe('1');
    expect(util.gauge).toBeDefined();
    const general = util.gauge!.dataPoints.filter((p) => attrs(p.attributes)['hw.gpu.task'] === 'general');
    const ids = new Set(general.map((p) => attrs(p.attributes)['hw.id']));
    const whole = inventory.gpus.filter((g) => !g.migEnabled);
    expect(whole.length).toBe(6);
    for (const gpu of whole) expect(ids.has(gpu.uuid), gpu.uuid).toBe(true);
    for (const p of general) {
      expect(pointValue(p)).toBeGreaterThanOrEqual(0);
      expect(pointValue(p)).toBeLessThanOrEqual(1);
    }

    const usage = metric(req, 'hw.gpu.memory.usage')!;
    expect(usage.unit).toBe('By');
    expect(usage.sum?.isMonotonic).toBe(false);
    const migUuids = inventory.gpus.flatMap((g) => g.migDevices.map((m) => m.uuid));
    expect(migUuids.length).toBe(10);
    const usageById = new Map(usage.sum!.dataPoints.map((p) => [attrs(p.attributes)['hw.id'], p]));
    for (const uuid of migUuids) expect(usageById.has(uuid), uuid).toBe(true);

    const energy = metric(req, 'hw.energy')!;
    expect(energy.unit).toBe('J');
    expect(energy.sum?.isMonotonic).toBe(true);
    expect(energy.sum?.aggregationTemporality).toBe(2); // AGGREGATION_TEMPORALITY_CUMULATIVE

    const status = metric(req, 'hw.status')!;
    const okPoints = status.sum!.dataPoints.filter((p) => attrs(p.attributes)['hw.state'] === 'ok');
    expect(okPoints.length).toBe(inventory.gpus.length + migUuids.length);
  });

  it('attributes the device held by a claim to its pod', async () => {
    const req = await receiver.waitFor((r) => metric(r, 'hw.gpu.memory.usage') !== undefined, 15_000);
    const p = metric(req, 'hw.gpu.memory.usage')!.sum!.dataPoints.find((d) => attrs(d.attributes)['hw.id'] === owned.uuid)!;
    expect(attrs(p.attributes)).toMatchObject({
      'k8s.namespace.name': 'ml', 'k8s.pod.name': 'trainer', 'k8s.pod.uid': POD_UID, 'gpulet.claim.name': 'mig-claim',
      'gpulet.dra.device.name': owned.deviceName, 'hw.vendor': 'NVIDIA',
    });
    // hw.gpu.* metrics carry no hw.type (semconv metric_attributes.hw.gpu has none); the common hw.* metrics do.
    expect(attrs(p.attributes)).not.toHaveProperty('hw.type');
    expect(attrs(p.attributes)['hw.parent']).toMatch(/^GPU-/);
  });
});
