import { describe, expect, it } from 'vitest';
import type { DeviceOwner } from '../../src/model/types.js';
import { HealthTracker } from '../../src/gpu/health.js';
import { deviceIdentities } from '../../src/telemetry/attributes.js';
import { INSTRUMENTS } from '../../src/telemetry/instruments.js';
import { observeInstrument, type ObservationContext, type Point } from '../../src/telemetry/observe.js';
import { fullReadings, GPU0, GPU1, INVENTORY, MIG_A, MIG_B } from '../helpers/telemetry.js';
import { claimRef, podRef } from '../helpers/names.js';

function ctx(over: Partial<ObservationContext> = {}): ObservationContext {
  return {
    sample: { timestampMs: 1, devices: [fullReadings(GPU0), fullReadings(GPU1), fullReadings(MIG_A, { gpuUtilizationPercent: undefined, memoryUsedBytes: 5 * 1024 ** 3, memoryTotalBytes: 10 * 1024 ** 3 })] },
    identities: deviceIdentities(INVENTORY),
    owners: new Map(),
    health: new HealthTracker(INVENTORY),
    ...over,
  };
}

function points(name: string, c: ObservationContext): Point[] {
  const spec = INSTRUMENTS.find((i) => i.name === name);
  if (spec === undefined) throw new Error(`no instrument ${name}`);
  return observeInstrument(spec, c);
}

function one(ps: Point[], match: Record<string, string>): Point {
  const found = ps.filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
  expect(found, JSON.stringify(match)).toHaveLength(1);
  return found[0]!;
}

describe('observeInstrument', () => {
  it('converts percent to a 0..1 ratio per hw.gpu.task', () => {
    const ps = points('hw.gpu.utilization', ctx());
    expect(one(ps, { 'hw.id': GPU0, 'hw.gpu.task': 'general' }).value).toBeCloseTo(0.42, 12);
    expect(one(ps, { 'hw.id': GPU0, 'hw.gpu.task': 'encoder' }).value).toBeCloseTo(0.05, 12);
    expect(one(ps, { 'hw.id': GPU0, 'hw.gpu.task': 'decoder' }).value).toBe(0);
    for (const p of ps) {
      expect(p.value).toBeGreaterThanOrEqual(0);
      expect(p.value).toBeLessThanOrEqual(1);
    }
  });

  it('gives no point, not 0, for an unsupported reading', () => {
    const ps = points('hw.gpu.utilization', ctx());
    expect(ps.filter((p) => p.attributes['hw.id'] === MIG_A && p.attributes['hw.gpu.task'] === 'general')).toHaveLength(0);
    // MIG_B is absent from the sample altogether: no point of any sample-fed instrument.
    for (const spec of INSTRUMENTS.filter((i) => i.name !== 'hw.status')) {
      expect(observeInstrument(spec, ctx()).filter((p) => p.attributes['hw.id'] === MIG_B), spec.name).toHaveLength(0);
    }
  });

  it('converts mW → W and mJ → J, keeps bytes', () => {
    const c = ctx();
    expect(one(points('hw.power', c), { 'hw.id': GPU0 }).value).toBeCloseTo(345.678, 9);
    expect(one(points('hw.energy', c), { 'hw.id': GPU0 }).value).toBeCloseTo(123_456.789, 6);
    expect(one(points('hw.gpu.memory.usage', c), { 'hw.id': GPU0 }).value).toBe(20 * 1024 ** 3);
    expect(one(points('hw.gpu.memory.utilization', c), { 'hw.id': GPU0 }).value).toBeCloseTo(0.25, 12);
    expect(one(points('hw.gpu.memory.utilization', c), { 'hw.id': MIG_A }).value).toBeCloseTo(0.5, 12);
  });

  it('labels temperatures, io and errors with their semconv attributes', () => {
    const c = ctx();
    // A temperature sensor is its own component (semconv docs/hardware/temperature.md): hw.type=temperature,
    // hw.parent the GPU, its own hw.id.
    const memTemp = one(points('hw.temperature', c), { 'hw.parent': GPU0, 'hw.sensor_location': 'memory' });
    expect(memTemp.value).toBe(60);
    expect(memTemp.attributes).toMatchObject({ 'hw.type': 'temperature', 'hw.id': `${GPU0}-temperature-memory` });
    expect(memTemp.attributes).not.toHaveProperty('hw.serial_number');
    expect(one(points('hw.temperature', c), { 'hw.parent': GPU0, 'hw.sensor_location': 'gpu' }).attributes['hw.id']).toBe(`${GPU0}-temperature-gpu`);
    expect(one(points('hw.gpu.io', c), { 'hw.id': GPU0, 'network.io.direction': 'receive' }).attributes).not.toHaveProperty('hw.type');
    expect(one(points('hw.gpu.io', c), { 'hw.id': GPU0, 'network.io.direction': 'receive' }).value).toBe(2_000_000);
    expect(one(points('hw.errors', c), { 'hw.id': GPU0, 'error.type': 'corrected' }).value).toBe(3);
  });

  it('sets device attributes, hw.parent on MIG devices', () => {
    const ps = points('hw.power', ctx());
    const gpu = one(ps, { 'hw.id': GPU0 }).attributes;
    expect(gpu).toMatchObject({ 'hw.type': 'gpu', 'hw.vendor': 'NVIDIA', 'hw.model': 'NVIDIA H100 80GB HBM3', 'hw.serial_number': '165232200', 'hw.driver_version': '580.95.05', 'gpulet.dra.device.name': 'gpu-0' });
    expect(gpu['hw.parent']).toBeUndefined();
    const mig = one(ps, { 'hw.id': MIG_A }).attributes;
    expect(mig).toMatchObject({ 'hw.parent': GPU1, 'hw.name': '1g.10gb', 'gpulet.dra.device.name': 'gpu-1-mig-1g10gb-19-9' });
    // A GPU in MIG mode is not allocatable: no DRA name.
    expect(one(ps, { 'hw.id': GPU1 }).attributes['gpulet.dra.device.name']).toBeUndefined();
  });

  it('attributes a held device to its claim and every pod of it', () => {
    const owner: DeviceOwner = {
      claim: claimRef({ namespace: 'ml', name: 'train-gpu' }),
      pods: [podRef({ namespace: 'ml', name: 'trainer-0' }), podRef({ namespace: 'ml', name: 'trainer-1' })],
      deviceName: 'gpu-0',
      uuid: GPU0,
    };
    const c = ctx({ owners: new Map([[GPU0, [owner]]]) });
    const ps = points('hw.gpu.utilization', c).filter((p) => p.attributes['hw.id'] === GPU0 && p.attributes['hw.gpu.task'] === 'general');
    expect(ps).toHaveLength(2);
    expect(ps.map((p) => p.attributes['k8s.pod.name']).sort()).toEqual(['trainer-0', 'trainer-1']);
    for (const p of ps) {
      expect(p.attributes).toMatchObject({ 'k8s.namespace.name': 'ml', 'gpulet.claim.name': 'train-gpu', 'gpulet.claim.uid': owner.claim.uid });
      expect(p.attributes['k8s.pod.uid']).toBe(owner.pods.find((pod) => pod.name === p.attributes['k8s.pod.name'])?.uid);
    }
    // The unheld GPU has no k8s attributes.
    expect(one(points('hw.power', c), { 'hw.id': GPU1 }).attributes['k8s.pod.name']).toBeUndefined();
  });

  it('reports hw.status as 1 for the current state and 0 for the others, and XID counts', () => {
    const health = new HealthTracker(INVENTORY);
    health.record({ kind: 'xid', xid: 79, uuid: GPU1, timestampMs: 1, message: 'fallen off the bus' });
    health.record({ kind: 'xid', xid: 13, uuid: GPU0, timestampMs: 2, message: 'app' });
    health.record({ kind: 'xid', xid: 13, uuid: GPU0, timestampMs: 3, message: 'app' });
    const c = ctx({ health });
    const status = points('hw.status', c);
    expect(status).toHaveLength(4 * 3); // 4 devices × 3 states
    expect(one(status, { 'hw.id': GPU0, 'hw.state': 'ok' }).value).toBe(1);
    expect(one(status, { 'hw.id': GPU0, 'hw.state': 'failed' }).value).toBe(0);
    expect(one(status, { 'hw.id': MIG_B, 'hw.state': 'failed' }).value).toBe(1); // inherited from GPU1
    const errors = points('hw.errors', c);
    // error.type is `xid` (not one of the ECC kinds corrected/uncorrected), the XID number its own attribute.
    expect(one(errors, { 'hw.id': GPU0, 'error.type': 'xid', 'gpulet.gpu.xid': '13' }).value).toBe(2);
    expect(one(errors, { 'hw.id': GPU1, 'error.type': 'xid', 'gpulet.gpu.xid': '79' })).toMatchObject({ value: 1, attributes: { 'hw.type': 'gpu' } });
    expect(errors.filter((p) => /^\d+$/.test(p.attributes['error.type'] ?? ''))).toEqual([]);
  });

  it('before the first sample only hw.status has points', () => {
    const c = ctx({ sample: undefined });
    for (const spec of INSTRUMENTS) {
      const n = observeInstrument(spec, c).length;
      if (spec.name === 'hw.status') expect(n).toBe(12);
      else expect(n, spec.name).toBe(0);
    }
  });
});
