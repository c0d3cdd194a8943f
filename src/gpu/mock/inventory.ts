/**
 * Build the {@link Inventory} of a mock machine: pure function of a validated {@link MachineSpec} and the
 * node name. Also the data a fake libnvidia-ml can be driven from (serialise the result to JSON).
 */
import type { GpuInfo, Inventory, MigDeviceInfo, SystemInfo } from '../types.js';
import { GPU_MODELS, NVIDIA_PCI_VENDOR } from './models.js';
import { gpuInstanceId } from './profiles.js';
import { mockGpuUuid, mockMigUuid, mockPciAddress, mockSerial } from './identity.js';
import type { GpuSpec, MachineSpec } from './spec.js';

/**
 * Addressing mode every mock GPU reports: `HMM`. The mock machines are x86 nodes (no NVLink-C2C, so not ATS,
 * which NVIDIA's Grace Hopper reports) on R580, whose installer defaults to NVIDIA's open kernel modules for
 * Turing and newer since R560; NVIDIA's HMM requirements (CUDA 12.2 release notes: open kernel modules r535+,
 * Linux 6.1.24+, Turing or newer — every mock model is compute capability 8.0 or 9.0) are then met on a current
 * kernel. Published `nvidia-smi -q` output shows the alternatives: `None` on x86 H100/A100 nodes with older
 * drivers (R535/R545), `ATS` on GH200, `HMM` on an x86 Blackwell board on R570.
 */
export const MOCK_ADDRESSING_MODE = 'HMM' as const;

/** Driver facts every mock machine reports (R580, CUDA 13.0). */
export const MOCK_SYSTEM: SystemInfo = {
  driverVersion: '580.95.05',
  nvmlVersion: '13.580.95.05',
  cudaDriverVersion: 13000,
};

const MIB = 1024 * 1024;

/**
 * The MIG devices of GPU `index` (model `spec.model`) for a layout of `{profile, placementStart}` instances, as
 * discovery lists them: indexed by placement start, UUIDs from node name, GPU index and GI ID (so an instance made
 * again at the same placement gets the same UUID, as `mockMigUuid` documents).
 * @throws Error for a profile the model does not have (the layout must have been validated).
 */
export function mockMigDevices(spec: GpuSpec, nodeName: string, index: number, parentUuid: string): MigDeviceInfo[] {
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
      migDevices: mockMigDevices(g, nodeName, index, uuid),
      addressingMode: MOCK_ADDRESSING_MODE,
      vbiosVersion: model.vbiosVersion,
    };
  });
  return { system: { ...MOCK_SYSTEM }, gpus };
}
