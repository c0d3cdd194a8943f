/**
 * The GPU models the mock backend can build, as data. Product names, architectures, compute capabilities,
 * SM counts, memory sizes and power limits are what `nvidia-smi` / NVML report for these boards
 * (NVIDIA's product pages and data sheets, and `test/reference/mig-profiles.md`); PCI device IDs are NVIDIA's (A100-SXM4-40GB 0x20b0,
 * A100-SXM4-80GB 0x20b2, H100 SXM5 80GB 0x2330, H200 SXM 141GB 0x2335); idle power, clocks and thermal figures are typical values
 * used only to shape simulated readings.
 */
import {
  A100_40GB_PROFILES,
  A100_80GB_PROFILES,
  H100_80GB_PROFILES,
  H200_141GB_PROFILES,
  type MigProfile,
} from './profiles.js';

/** Names of the mock GPU models, as used in a {@link MachineSpec}. */
export const GPU_MODEL_NAMES = ['a100-40gb', 'a100-80gb', 'h100-80gb', 'h200-141gb'] as const;
/** One of {@link GPU_MODEL_NAMES}. */
export type GpuModelName = (typeof GPU_MODEL_NAMES)[number];

/** Static facts of one GPU model. */
export interface GpuModel {
  /** `nvmlDeviceGetName`. */
  readonly productName: string;
  /** `nvmlDeviceGetArchitecture`, spelled as NVIDIA's DRA driver does. */
  readonly architecture: string;
  readonly computeCapability: { readonly major: number; readonly minor: number };
  readonly multiprocessors: number;
  /** Total framebuffer, MiB (`nvmlDeviceGetMemoryInfo_v2.total` / 2^20). */
  readonly memoryMiB: number;
  /** Memory NVML reports as reserved by the driver, MiB (`nvmlMemory_v2_t.reserved`). */
  readonly reservedMiB: number;
  /** Enforced power limit, watts. */
  readonly powerLimitW: number;
  /** Power draw at idle, watts. */
  readonly idlePowerW: number;
  /** SM clock at idle and at full boost, MHz. */
  readonly smClockIdleMhz: number;
  readonly smClockMaxMhz: number;
  /** HBM clock, MHz (fixed). */
  readonly memoryClockMhz: number;
  /** PCIe device ID (high 16 bits of `pciDeviceId`; vendor 0x10de in the low 16). */
  readonly pciDevice: number;
  /** `pciSubSystemId`. */
  readonly pciSubSystemId: number;
  /** Peak PCIe throughput used to shape tx/rx counters, bytes per second. */
  readonly pcieBytesPerSecond: number;
  /**
   * Total NVLink bandwidth of the board, both directions, bytes per second (NVIDIA's data sheets: A100 SXM4
   * 600 GB/s, H100 SXM5 and H200 SXM 900 GB/s); shapes the NVLink data counter.
   */
  readonly nvlinkBytesPerSecond: number;
  /**
   * VBIOS version (`nvmlDeviceGetVbiosVersion`): one that `nvidia-smi -q` printed for this board in published
   * output (A100-SXM4-40GB `92.00.36.00.04` on R535, H100 80GB HBM3 `96.00.74.00.0D` on R545, H200
   * `96.00.A5.00.03` on R550); a real fleet has several.
   */
  readonly vbiosVersion: string;
  /** MIG GPU-instance profiles. */
  readonly migProfiles: readonly MigProfile[];
}

/** NVIDIA's PCI vendor ID. */
export const NVIDIA_PCI_VENDOR = 0x10de;

/** The model table. */
export const GPU_MODELS: Readonly<Record<GpuModelName, GpuModel>> = {
  'a100-40gb': {
    productName: 'NVIDIA A100-SXM4-40GB',
    architecture: 'Ampere',
    computeCapability: { major: 8, minor: 0 },
    multiprocessors: 108,
    memoryMiB: 40960,
    reservedMiB: 364,
    powerLimitW: 400,
    idlePowerW: 55,
    smClockIdleMhz: 210,
    smClockMaxMhz: 1410,
    memoryClockMhz: 1215,
    pciDevice: 0x20b0,
    pciSubSystemId: 0x134f10de,
    pcieBytesPerSecond: 25e9,
    nvlinkBytesPerSecond: 600e9,
    vbiosVersion: '92.00.36.00.04',
    migProfiles: A100_40GB_PROFILES,
  },
  'a100-80gb': {
    productName: 'NVIDIA A100-SXM4-80GB',
    architecture: 'Ampere',
    computeCapability: { major: 8, minor: 0 },
    multiprocessors: 108,
    memoryMiB: 81920,
    reservedMiB: 616,
    powerLimitW: 400,
    idlePowerW: 60,
    smClockIdleMhz: 210,
    smClockMaxMhz: 1410,
    memoryClockMhz: 1593,
    pciDevice: 0x20b2,
    pciSubSystemId: 0x147f10de,
    pcieBytesPerSecond: 25e9,
    nvlinkBytesPerSecond: 600e9,
    // GA100 boards' VBIOS versions are in the 92.00 series; this one is the A100-40GB's, not read off an 80GB board.
    vbiosVersion: '92.00.36.00.04',
    migProfiles: A100_80GB_PROFILES,
  },
  'h100-80gb': {
    productName: 'NVIDIA H100 80GB HBM3',
    architecture: 'Hopper',
    computeCapability: { major: 9, minor: 0 },
    multiprocessors: 132,
    memoryMiB: 81559,
    reservedMiB: 543,
    powerLimitW: 700,
    idlePowerW: 70,
    smClockIdleMhz: 345,
    smClockMaxMhz: 1980,
    memoryClockMhz: 2619,
    pciDevice: 0x2330,
    pciSubSystemId: 0x16c110de,
    pcieBytesPerSecond: 50e9,
    nvlinkBytesPerSecond: 900e9,
    vbiosVersion: '96.00.74.00.0D',
    migProfiles: H100_80GB_PROFILES,
  },
  'h200-141gb': {
    productName: 'NVIDIA H200',
    architecture: 'Hopper',
    computeCapability: { major: 9, minor: 0 },
    multiprocessors: 132,
    memoryMiB: 143771,
    reservedMiB: 590,
    powerLimitW: 700,
    idlePowerW: 75,
    smClockIdleMhz: 345,
    smClockMaxMhz: 1980,
    memoryClockMhz: 3201,
    pciDevice: 0x2335,
    pciSubSystemId: 0x18be10de,
    pcieBytesPerSecond: 50e9,
    nvlinkBytesPerSecond: 900e9,
    vbiosVersion: '96.00.A5.00.03',
    migProfiles: H200_141GB_PROFILES,
  },
};

/** Whether `name` is a known model name. */
export function isGpuModelName(name: string): name is GpuModelName {
  return (GPU_MODEL_NAMES as readonly string[]).includes(name);
}

/**
 * The MIG profile table of a GPU by its product name (`nvmlDeviceGetName`), when it is one of the models above;
 * undefined otherwise. Until the NVML backend reads the tables from the GPU itself
 * (`nvmlDeviceGetGpuInstanceProfileInfoV` + `nvmlDeviceGetGpuInstancePossiblePlacements_v2`, issue 12 item 4),
 * this is where dynamic MIG gets a GPU's profiles and placements from, on both backends.
 */
export function migProfilesByProductName(productName: string): readonly MigProfile[] | undefined {
  return Object.values(GPU_MODELS).find((m) => m.productName === productName)?.migProfiles;
}
