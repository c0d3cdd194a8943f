/**
 * Pure mapping of an NVML discovery (`NvmlDiscovery`) to gpulet's {@link Inventory}, spelled exactly as the
 * mock backend and NVIDIA's DRA driver spell the same facts:
 * - brand / architecture strings: go-nvlib `GetBrandAsString` / `GetArchitectureAsString`
 *   (NVIDIA/go-nvlib pkg/nvlib/device/device.go), which NVIDIA/k8s-dra-driver-gpu publishes, e.g.
 *   `NVML_BRAND_NVIDIA` → `Nvidia`, `NVML_DEVICE_ARCH_HOPPER` → `Hopper`;
 * - bus ID in sysfs form (`00000000:18:00.0` → `0000:18:00.0`); the PCIe root from the injected resolver
 *   (sysfs, as k8s.io/dynamic-resource-allocation/deviceattribute does);
 * - MIG profile from `nvmlGpuInstanceProfileInfo_v2_t.name` without its `MIG ` prefix, memory from
 *   `memorySizeMB` × 2^20;
 * - addressing mode as go-nvlib `GetAddressingModeAsString` spells it (`HMM`, `ATS`, `None`), absent when NVML
 *   does not say (NOT_SUPPORTED, a failed call, a library without the call, or a value this build does not know);
 *   the VBIOS version as NVML prints it.
 * A GPU or MIG device whose identity cannot be read is left out and reported in `problems`.
 */
import type { AddressingMode, GpuInfo, Inventory, MigDeviceInfo } from '../types.js';
import type { NvmlDiscovery, NvmlGiProfileFacts, NvmlGpuFacts, NvmlMigFacts } from './native-types.js';

const MIB = 1024 * 1024;

/** `nvmlBrandType_t` → go-nvlib's string. */
const BRANDS: Readonly<Record<number, string>> = {
  0: 'Unknown', 1: 'Quadro', 2: 'Tesla', 3: 'NVS', 4: 'Grid', 5: 'GeForce', 6: 'Titan', 7: 'NvidiaVApps',
  8: 'NvidiaVPC', 9: 'NvidiaVCS', 10: 'NvidiaVWS', 11: 'NvidiaCloudGaming', 12: 'QuadroRTX', 13: 'NvidiaRTX',
  14: 'Nvidia', 15: 'GeForceRTX', 16: 'TitanRTX',
};

/** `nvmlDeviceArchitecture_t` → go-nvlib's string. */
const ARCHITECTURES: Readonly<Record<number, string>> = {
  2: 'Kepler', 3: 'Maxwell', 4: 'Pascal', 5: 'Volta', 6: 'Turing', 7: 'Ampere', 8: 'Ada Lovelace', 9: 'Hopper',
  10: 'Blackwell', 0xffffffff: 'Unknown',
};

/**
 * `nvmlDeviceAddressingModeType_t` (nvml.h: NONE 0, HMM 1, ATS 2) → go-nvlib's string
 * (NVIDIA/go-nvlib pkg/nvlib/device/device.go `GetAddressingModeAsString`).
 */
const ADDRESSING_MODES: Readonly<Record<number, AddressingMode>> = { 0: 'None', 1: 'HMM', 2: 'ATS' };

/**
 * Addressing-mode string of an `nvmlDeviceAddressingModeType_t` value; `undefined` for a value this build does
 * not know (go-nvlib fails the GPU then; gpulet leaves the attribute out instead).
 */
export function addressingModeName(mode: number): AddressingMode | undefined {
  return Object.hasOwn(ADDRESSING_MODES, mode) ? ADDRESSING_MODES[mode] : undefined;
}

/** Brand string of an `nvmlBrandType_t` value (`Unknown` for values this build does not know). */
export function brandName(brand: number): string {
  return BRANDS[brand] ?? 'Unknown';
}

/** Architecture string of an `nvmlDeviceArchitecture_t` value (`Unknown` for values this build does not know). */
export function architectureName(arch: number): string {
  return ARCHITECTURES[arch] ?? 'Unknown';
}

/**
 * NVML bus ID (`00000000:18:00.0`, any case, 4- or 8-digit domain) in sysfs form `0000:18:00.0`
 * (lower case; the domain keeps more than 4 digits only when it needs them). Undefined when not a bus ID.
 */
export function normalizeBusId(busId: string): string | undefined {
  const m = /^([0-9a-f]{1,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(busId.trim());
  if (!m) return undefined;
  const domain = Number.parseInt(m[1] ?? '0', 16).toString(16).padStart(4, '0');
  return `${domain}:${(m[2] ?? '').toLowerCase()}:${(m[3] ?? '').toLowerCase()}.${m[4] ?? '0'}`;
}

/**
 * MIG profile name: `MIG 1g.10gb` → `1g.10gb`. When the library only has the v1 profile call (no name), it
 * is derived as go-nvlib does: `<sliceCount>g.<GB>gb`, GB = memory fraction rounded up to eighths × total GB.
 */
export function migProfileName(profile: NvmlGiProfileFacts, gpuMemoryBytes: number): string {
  const name = profile.name.trim().replace(/^MIG\s+/, '');
  if (name !== '') return name;
  const fraction = Math.ceil(((profile.memorySizeMB * MIB) / gpuMemoryBytes) * 8) / 8;
  const totalGb = Math.ceil(gpuMemoryBytes / (1024 * MIB));
  return `${profile.sliceCount}g.${Math.round(fraction * totalGb)}gb`;
}

/** Resolves the PCIe root (`pci0000:00`) of a sysfs bus ID; `undefined` when unknown. */
export type PcieRootResolver = (busId: string) => string | undefined;

/** Result of {@link mapInventory}. */
export interface MappedInventory {
  readonly inventory: Inventory;
  /** Devices (or attributes of a device) left out, and why (for the log), e.g. `GPU 3: NVML_ERROR_GPU_IS_LOST from nvmlDeviceGetUUID`. */
  readonly problems: readonly string[];
}

function missing(g: NvmlGpuFacts): string[] {
  const need: Array<[string, unknown]> = [
    ['uuid', g.uuid], ['minor', g.minor], ['name', g.name], ['pci', g.pci], ['memory', g.memoryTotal],
    ['brand', g.brand], ['architecture', g.architecture], ['compute capability', g.ccMajor],
  ];
  return need.filter(([, v]) => v === undefined).map(([k]) => k);
}

function mapMig(parent: GpuInfo, m: NvmlMigFacts, problems: string[]): MigDeviceInfo | undefined {
  const where = `MIG device ${m.index} of GPU ${parent.index} (${parent.uuid})`;
  if (m.error) {
    problems.push(`${where}: ${m.error.name} from ${m.error.nvmlFunction}`);
    return undefined;
  }
  const p = m.profile;
  if (m.uuid === undefined || m.gpuInstanceId === undefined || m.computeInstanceId === undefined || p === undefined ||
      m.placementStart === undefined || m.placementSize === undefined) {
    const why = m.errors.map((e) => `${e.name} from ${e.nvmlFunction}`).join('; ');
    problems.push(`${where}: identity or GPU-instance profile unreadable${why ? ` (${why})` : ''}`);
    return undefined;
  }
  return {
    uuid: m.uuid,
    parentUuid: parent.uuid,
    parentMinor: parent.minor,
    index: m.index,
    profile: migProfileName(p, parent.memoryBytes),
    giProfileId: p.id,
    placement: { start: m.placementStart, size: m.placementSize },
    gpuInstanceId: m.gpuInstanceId,
    computeInstanceId: m.computeInstanceId,
    multiprocessors: p.multiprocessorCount,
    copyEngines: p.copyEngineCount,
    decoders: p.decoderCount,
    encoders: p.encoderCount,
    jpegEngines: p.jpegCount,
    ofaEngines: p.ofaCount,
    memoryBytes: p.memorySizeMB * MIB,
  };
}

function mapGpu(g: NvmlGpuFacts, pcieRoot: PcieRootResolver, problems: string[]): GpuInfo | undefined {
  if (g.error) {
    problems.push(`GPU ${g.index}: ${g.error.name} from ${g.error.nvmlFunction}`);
    return undefined;
  }
  const absent = missing(g);
  const busId = g.pci ? normalizeBusId(g.pci.busId) : undefined;
  if (g.pci && busId === undefined) absent.push(`pci bus ID (${g.pci.busId})`);
  if (absent.length > 0 || !g.pci || busId === undefined) {
    const why = g.errors.map((e) => `${e.name} from ${e.nvmlFunction}`).join('; ');
    problems.push(`GPU ${g.index} (${g.uuid ?? 'no UUID'}): unreadable ${absent.join(', ')}${why ? ` (${why})` : ''}`);
    return undefined;
  }
  const addressingMode = g.addressingMode === undefined ? undefined : addressingModeName(g.addressingMode);
  if (g.addressingMode !== undefined && addressingMode === undefined) {
    problems.push(`GPU ${g.index} (${g.uuid ?? 'no UUID'}) attribute addressingMode: nvmlDeviceGetAddressingMode value ${g.addressingMode} is not one this gpulet knows (NVML newer than gpulet?)`);
  }
  const gpu: GpuInfo = {
    index: g.index,
    minor: g.minor ?? 0,
    uuid: g.uuid ?? '',
    serial: g.serial ?? '',
    productName: g.name ?? '',
    brand: brandName(g.brand ?? 0),
    architecture: architectureName(g.architecture ?? 0xffffffff),
    cudaComputeCapability: { major: g.ccMajor ?? 0, minor: g.ccMinor ?? 0 },
    pci: {
      busId,
      pcieRoot: pcieRoot(busId) ?? '',
      pciDeviceId: g.pci.pciDeviceId >>> 0,
      pciSubSystemId: g.pci.pciSubSystemId >>> 0,
    },
    memoryBytes: g.memoryTotal ?? 0,
    multiprocessors: g.multiprocessors ?? 0,
    powerLimitMilliwatts: g.powerLimit ?? 0,
    migEnabled: g.migCurrent === 1,
    migDevices: [],
    ...(addressingMode === undefined ? {} : { addressingMode }),
    ...(g.vbiosVersion === undefined || g.vbiosVersion === '' ? {} : { vbiosVersion: g.vbiosVersion }),
  };
  if (!gpu.migEnabled) return gpu;
  const migs = g.migDevices.map((m) => mapMig(gpu, m, problems)).filter((m): m is MigDeviceInfo => m !== undefined);
  return { ...gpu, migDevices: migs };
}

/**
 * Map a discovery to an {@link Inventory}. Static GPU facts NVML does not support (serial on some boards,
 * power limit, SM count) become `''` / 0; GPUs lacking identity (UUID, minor, name, PCI, memory, brand,
 * architecture, CC) and MIG devices lacking identity or profile are left out and listed in `problems`.
 */
export function mapInventory(d: NvmlDiscovery, pcieRoot: PcieRootResolver): MappedInventory {
  const problems: string[] = [];
  const gpus = d.gpus.map((g) => mapGpu(g, pcieRoot, problems)).filter((g): g is GpuInfo => g !== undefined);
  const system = {
    driverVersion: d.system.driverVersion ?? '',
    nvmlVersion: d.system.nvmlVersion ?? '',
    cudaDriverVersion: d.system.cudaDriverVersion ?? 0,
  };
  for (const e of d.system.errors) problems.push(`system: ${e.name} from ${e.nvmlFunction}`);
  return { inventory: { system, gpus }, problems };
}
