/**
 * Hand-built inventories for slice tests, independent of the mock backend.
 * Values: the worked example in test/reference/examples.md (one full H100 80GB, one H100 in MIG mode
 * with a 1g.10gb instance: GI profile 19, placement 0:1, 16 SMs, 1 CE / 1 DEC / 1 JPG / 0 OFA, 9856 MiB —
 * test/reference/mig-profiles.md), driver 580.95.05, CUDA 13000.
 */
import type { GpuInfo, Inventory, MigDeviceInfo } from '../../src/gpu/types.js';

export const MIB = 1024 * 1024;
export const EXAMPLE_GPU0_UUID = 'GPU-8a2f0000-1111-2222-3333-444455556666';
export const EXAMPLE_GPU1_UUID = 'GPU-77d10000-1111-2222-3333-444455556666';
export const EXAMPLE_MIG_UUID = 'MIG-41c00000-1111-2222-3333-444455556666';

/** A full GPU with H100 80GB HBM3 facts; `minor` also sets index and the bus number. */
export function h100(minor: number, overrides: Partial<GpuInfo> = {}): GpuInfo {
  const bus = (0x18 + minor).toString(16).padStart(2, '0');
  return {
    index: minor,
    minor,
    uuid: `GPU-${minor.toString(16).padStart(8, '0')}-1111-2222-3333-444455556666`,
    serial: `165322${String(minor).padStart(7, '0')}`,
    productName: 'NVIDIA H100 80GB HBM3',
    brand: 'Nvidia',
    architecture: 'Hopper',
    cudaComputeCapability: { major: 9, minor: 0 },
    pci: { busId: `0000:${bus}:00.0`, pcieRoot: 'pci0000:00', pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memoryBytes: 81559 * MIB,
    multiprocessors: 132,
    powerLimitMilliwatts: 700_000,
    migEnabled: false,
    migDevices: [],
    ...overrides,
  };
}

/** A 1g.10gb MIG device on an H100 (GI profile 19) at `start`. */
export function mig1g10gb(parent: Pick<GpuInfo, 'uuid' | 'minor'>, start: number, uuid?: string): MigDeviceInfo {
  return {
    uuid: uuid ?? `MIG-${parent.minor.toString(16).padStart(4, '0')}${start.toString(16).padStart(4, '0')}-1111-2222-3333-444455556666`,
    parentUuid: parent.uuid,
    parentMinor: parent.minor,
    index: start,
    profile: '1g.10gb',
    giProfileId: 19,
    placement: { start, size: 1 },
    gpuInstanceId: start + 1,
    computeInstanceId: 0,
    multiprocessors: 16,
    copyEngines: 1,
    decoders: 1,
    encoders: 0,
    jpegEngines: 1,
    ofaEngines: 0,
    memoryBytes: 9856 * MIB,
  };
}

/** The node of test/reference/examples.md: gpu-0 (full) and gpu-1 in MIG mode with `gpu-1-mig-1g10gb-19-0`. */
export function exampleInventory(): Inventory {
  const gpu0 = h100(0, { uuid: EXAMPLE_GPU0_UUID });
  const gpu1Base = h100(1, { uuid: EXAMPLE_GPU1_UUID, migEnabled: true });
  const gpu1: GpuInfo = { ...gpu1Base, migDevices: [mig1g10gb(gpu1Base, 0, EXAMPLE_MIG_UUID)] };
  return {
    system: { driverVersion: '580.95.05', nvmlVersion: '13.580.95.05', cudaDriverVersion: 13000 },
    gpus: [gpu0, gpu1],
  };
}

/** `count` full H100s with minors 0..count-1 (for the > 128 devices split). */
export function manyGpus(count: number): Inventory {
  return {
    system: { driverVersion: '580.95.05', nvmlVersion: '13.580.95.05', cudaDriverVersion: 12040 },
    gpus: Array.from({ length: count }, (_, i) => h100(i)),
  };
}
