/**
 * Build the {@link Inventory} of a mock machine: pure function of a validated {@link MachineSpec} and the
 * node name. Also the data a fake libnvidia-ml can be driven from (serialise the result to JSON).
 */
import type { GpuInfo, Inventory, MigDeviceInfo, SystemInfo } from '../types.js';
import { GPU_MODELS, NVIDIA_PCI_VENDOR } from './models.js';
import { gpuInstanceId } from './profiles.js';
import { mockGpuUuid, mockMigUuid, mockPciAddress, mockSerial } from './identity.js';
import type { GpuSpec, MachineSpec } from './spec.js';

/** Driver facts every mock machine reports (R580, CUDA 13.0). */
export const MOCK_SYSTEM: SystemInfo = {
  driverVersion: '580.95.05',
  nvmlVersion: '13.580.95.05',
  cudaDriverVersion: 13000,
};

const MIB = 1024 * 1024;

function migDevices(spec: GpuSpec, nodeName: string, index: number, parentUuid: string): MigDeviceInfo[] {
  const model = GPU_MODELS[spec.model];
  const layout = [...(spec.mig ?? [])].sort((a, b) => a.placementStart - b.placementStart);
  return layout.map((inst, migIndex): MigDeviceInfo => {
    const profile = model.migProfiles.find((p) => p.name === inst.profile);
    if (!profile) throw new Error(`unvalidated MachineSpec: profile ${inst.profile} on ${spec.model}`);
    const placement = { start: inst.placementStart, size: profile.placementSize };
    const gi = gpuInstanceId(placement);
    return {
      uuid: mockMigUuid(nodeName, index, gi),
      parentUuid,
      parentMinor: index,
      index: migIndex,
      profile: profile.name,
      giProfileId: profile.id,
      placement,
      gpuInstanceId: gi,
      computeInstanceId: 0,
      multiprocessors: profile.multiprocessors,
      copyEngines: profile.copyEngines,
      decoders: profile.decoders,
      encoders: profile.encoders,
      jpegEngines: profile.jpegEngines,
      ofaEngines: profile.ofaEngines,
      memoryBytes: profile.memoryMiB * MIB,
    };
  });
}

/**
 * The inventory of `spec` on node `nodeName`. GPU i has NVML index i and minor number i; MIG devices are
 * indexed under their parent by placement start. `spec` must have passed `validateMachineSpec()`.
 */
export function buildMockInventory(spec: MachineSpec, nodeName: string): Inventory {
  const gpus = spec.gpus.map((g, index): GpuInfo => {
    const model = GPU_MODELS[g.model];
    const uuid = mockGpuUuid(nodeName, index);
    const pci = mockPciAddress(index);
    return {
      index,
      minor: index,
      uuid,
      serial: mockSerial(nodeName, index),
      productName: model.productName,
      brand: 'Nvidia',
      architecture: model.architecture,
      cudaComputeCapability: { ...model.computeCapability },
      pci: {
        busId: pci.busId,
        pcieRoot: pci.pcieRoot,
        pciDeviceId: ((model.pciDevice << 16) | NVIDIA_PCI_VENDOR) >>> 0,
        pciSubSystemId: model.pciSubSystemId,
      },
      memoryBytes: model.memoryMiB * MIB,
      multiprocessors: model.multiprocessors,
      powerLimitMilliwatts: model.powerLimitW * 1000,
      migEnabled: g.mig !== undefined,
      migDevices: migDevices(g, nodeName, index, uuid),
    };
  });
  return { system: { ...MOCK_SYSTEM }, gpus };
}
