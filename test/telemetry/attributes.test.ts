/**
 * Device attributes of every `hw.*` series against OpenTelemetry semconv (`model/hardware/registry.yaml`:
 * hw.id, hw.name, hw.parent, hw.model, hw.vendor, hw.serial_number, hw.driver_version, hw.firmware_version;
 * `hw.type` "gpu" only on the common metrics, `docs/hardware/common.md`, never on the `hw.gpu.*` group; a
 * temperature sensor its own component, `docs/hardware/temperature.md`) and gpulet's DRA device names
 * (docs/contracts.md §1), in-process.
 */
import { describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { attributionSets, deviceIdentities } from '../../src/telemetry/attributes.js';
import { claimRef, podRef } from '../helpers/names.js';
import { GPU0, GPU1, INVENTORY, MIG_A } from '../helpers/telemetry.js';

describe('deviceIdentities', () => {
  it('gives a whole GPU its semconv attributes and its DRA name, and no firmware version NVML did not give', () => {
    const ids = deviceIdentities(INVENTORY);
    const gpu0 = ids.get(GPU0)!;
    const gpu0Attributes = {
      'hw.id': GPU0,
      'hw.name': 'NVIDIA H100 80GB HBM3',
      'hw.model': 'NVIDIA H100 80GB HBM3',
      'hw.vendor': 'NVIDIA',
      'hw.serial_number': '165232200',
      'hw.driver_version': '580.95.05',
      'gpulet.dra.device.name': 'gpu-0',
    };
    expect(gpu0).toMatchObject({ uuid: GPU0, kind: 'gpu', gpu: INVENTORY.gpus[0], draName: 'gpu-0' });
    expect(gpu0).not.toHaveProperty('mig');
    // The hw.gpu.* group has no hw.type; the common metrics (power, energy, errors, status) carry hw.type=gpu.
    expect(gpu0.attributes).toStrictEqual(gpu0Attributes);
    expect(gpu0.commonAttributes).toStrictEqual({ ...gpu0Attributes, 'hw.type': 'gpu' });
    // Each temperature sensor is its own component, its parent the GPU.
    expect(gpu0.temperatureAttributes.gpu).toStrictEqual({
      'hw.id': `${GPU0}-temperature-gpu`,
      'hw.type': 'temperature',
      'hw.name': 'NVIDIA H100 80GB HBM3 gpu temperature',
      'hw.parent': GPU0,
      'hw.sensor_location': 'gpu',
      'gpulet.dra.device.name': 'gpu-0',
    });
    expect(gpu0.temperatureAttributes.memory).toStrictEqual({
      'hw.id': `${GPU0}-temperature-memory`,
      'hw.type': 'temperature',
      'hw.name': 'NVIDIA H100 80GB HBM3 memory temperature',
      'hw.parent': GPU0,
      'hw.sensor_location': 'memory',
      'gpulet.dra.device.name': 'gpu-0',
    });
  });

  it('a GPU in MIG mode is not allocatable: no DRA name; its MIG devices are, with the parent', () => {
    const ids = deviceIdentities(INVENTORY);
    const gpu1 = ids.get(GPU1)!;
    expect(gpu1).not.toHaveProperty('draName');
    expect(gpu1.kind).toBe('gpu');
    expect(gpu1.attributes).not.toHaveProperty('gpulet.dra.device.name');
    const mig = ids.get(MIG_A)!;
    expect(mig).toMatchObject({ uuid: MIG_A, kind: 'mig', gpu: INVENTORY.gpus[1], mig: INVENTORY.gpus[1]!.migDevices[0] });
    expect(mig.draName).toBe('gpu-1-mig-1g10gb-19-9');
    expect(mig.attributes).toStrictEqual({
      'hw.id': MIG_A,
      'hw.name': '1g.10gb',
      'hw.parent': GPU1,
      'hw.model': 'NVIDIA H100 80GB HBM3',
      'hw.vendor': 'NVIDIA',
      'hw.serial_number': '165232201',
      'hw.driver_version': '580.95.05',
      'gpulet.dra.device.name': 'gpu-1-mig-1g10gb-19-9',
    });
    expect([...ids.keys()].sort()).toEqual([GPU0, GPU1, ...INVENTORY.gpus[1]!.migDevices.map((m) => m.uuid)].sort());
  });

  it('carries the VBIOS version as hw.firmware_version, a MIG device its parent\'s', () => {
    const withVbios: Inventory = { ...INVENTORY, gpus: INVENTORY.gpus.map((g, i) => ({ ...g, vbiosVersion: `96.00.99.00.0${i}` })) };
    const ids = deviceIdentities(withVbios);
    expect(ids.get(GPU0)!.attributes['hw.firmware_version']).toBe('96.00.99.00.00');
    expect(ids.get(MIG_A)!.attributes['hw.firmware_version']).toBe('96.00.99.00.01');
    expect(deviceIdentities(INVENTORY).get(MIG_A)!.attributes).not.toHaveProperty('hw.firmware_version');
  });

  it('a MIG device that is not allocatable (its GPU not reported in MIG mode) has its identity but no DRA name', () => {
    // An inventory whose GPU lists MIG devices while its MIG mode reads disabled (the backends do not produce
    // one; deviceIdentities must not invent a name): allocatableDevices offers only the GPU, so the MIG
    // device's series carry no gpulet.dra.device.name.
    const gpus = INVENTORY.gpus.map((g) => (g.uuid === GPU1 ? { ...g, migEnabled: false } : g));
    const ids = deviceIdentities({ ...INVENTORY, gpus });
    const mig = ids.get(MIG_A)!;
    expect(mig).toMatchObject({ uuid: MIG_A, kind: 'mig', gpu: gpus[1], mig: gpus[1]!.migDevices[0] });
    expect(mig).not.toHaveProperty('draName');
    expect(mig.attributes).toStrictEqual({
      'hw.id': MIG_A,
      'hw.name': '1g.10gb',
      'hw.parent': GPU1,
      'hw.model': 'NVIDIA H100 80GB HBM3',
      'hw.vendor': 'NVIDIA',
      'hw.serial_number': '165232201',
      'hw.driver_version': '580.95.05',
    });
    expect(mig.commonAttributes).toStrictEqual({ ...mig.attributes, 'hw.type': 'gpu' });
    expect(mig.temperatureAttributes.memory).toStrictEqual({
      'hw.id': `${MIG_A}-temperature-memory`,
      'hw.type': 'temperature',
      'hw.name': '1g.10gb memory temperature',
      'hw.parent': MIG_A,
      'hw.sensor_location': 'memory',
    });
    expect(ids.get(GPU1)!.draName).toBe('gpu-1');
  });
});

describe('attributionSets', () => {
  const base = { 'hw.id': GPU0 };
  const claim = claimRef({ namespace: 'ml', name: 'c' });
  it('one set per holder: the base alone, the claim alone while it has no pod, else one per pod', () => {
    expect(attributionSets(base, undefined)).toStrictEqual([base]);
    expect(attributionSets(base, [])).toStrictEqual([base]);
    const claimOnly = { ...base, 'k8s.namespace.name': 'ml', 'gpulet.claim.name': 'c', 'gpulet.claim.namespace': 'ml', 'gpulet.claim.uid': claim.uid };
    expect(attributionSets(base, [{ claim, pods: [], deviceName: 'gpu-0', uuid: GPU0 }])).toStrictEqual([claimOnly]);
    const p1 = podRef({ namespace: 'ml', name: 'p1' });
    const p2 = podRef({ namespace: 'ml', name: 'p2' });
    expect(attributionSets(base, [{ claim, pods: [p1, p2], deviceName: 'gpu-0', uuid: GPU0 }])).toStrictEqual([
      { ...claimOnly, 'k8s.pod.name': 'p1', 'k8s.pod.uid': p1.uid },
      { ...claimOnly, 'k8s.pod.name': 'p2', 'k8s.pod.uid': p2.uid },
    ]);
  });
});
