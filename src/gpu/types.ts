/**
 * The GPU model shared by every backend (mock, NVML) and every consumer (ResourceSlices, CDI, telemetry).
 *
 * Units are in the field names: bytes, milliwatts, millijoules, percent (0–100), degrees Celsius, MHz.
 * A reading that the hardware or driver does not support (NVML_ERROR_NOT_SUPPORTED) is `undefined`, never 0.
 */

/** CUDA compute capability, from `nvmlDeviceGetCudaComputeCapability` (e.g. Hopper = 9.0). */
export interface ComputeCapability {
  readonly major: number;
  readonly minor: number;
}

/** PCI facts, from `nvmlDeviceGetPciInfo_v3`. */
export interface PciInfo {
  /**
   * Bus ID normalised to the Linux sysfs form `DDDD:BB:DD.F` (lower-case hex, 4-digit domain),
   * e.g. NVML's `00000000:18:00.0` → `0000:18:00.0`.
   */
  readonly busId: string;
  /** PCIe root complex of the device, e.g. `pci0000:00` (the `resource.kubernetes.io/pcieRoot` attribute). */
  readonly pcieRoot: string;
  /** `pciDeviceId`: device ID in the high 16 bits, vendor ID (0x10de) in the low 16 bits. */
  readonly pciDeviceId: number;
  /** `pciSubSystemId`. */
  readonly pciSubSystemId: number;
}

/**
 * A MIG device (a GPU instance + compute instance pair) on a GPU in MIG mode.
 * Sources: `nvmlDeviceGetMigDeviceHandleByIndex`, `nvmlDeviceGetGpuInstanceId`,
 * `nvmlDeviceGetComputeInstanceId`, `nvmlGpuInstanceGetInfo` (placement) and
 * `nvmlDeviceGetGpuInstanceProfileInfoV` (profile facts).
 */
export interface MigDeviceInfo {
  /** `MIG-<uuid>` from `nvmlDeviceGetUUID` on the MIG device handle. */
  readonly uuid: string;
  /** UUID of the parent GPU (`GPU-...`). */
  readonly parentUuid: string;
  /** Minor number of the parent GPU (`/dev/nvidia<minor>`). */
  readonly parentMinor: number;
  /** Index of this MIG device under its parent (`nvmlDeviceGetMigDeviceHandleByIndex`). */
  readonly index: number;
  /** Profile name as `nvidia-smi` prints it, e.g. `1g.10gb`, `1g.10gb+me`. */
  readonly profile: string;
  /** GPU-instance profile ID (`nvmlGpuInstanceProfileInfo_v2_t.id`), e.g. 19 for 1g.10gb on H100. */
  readonly giProfileId: number;
  /** Placement in memory slices (`nvmlGpuInstancePlacement_t`). */
  readonly placement: { readonly start: number; readonly size: number };
  /** GPU-instance ID (`nvmlDeviceGetGpuInstanceId`). */
  readonly gpuInstanceId: number;
  /** Compute-instance ID (`nvmlDeviceGetComputeInstanceId`). */
  readonly computeInstanceId: number;
  /** Streaming multiprocessors (`multiprocessorCount`). */
  readonly multiprocessors: number;
  readonly copyEngines: number;
  readonly decoders: number;
  readonly encoders: number;
  readonly jpegEngines: number;
  readonly ofaEngines: number;
  /** Framebuffer memory of the GPU instance, bytes (`memorySizeMB` × 2^20). */
  readonly memoryBytes: number;
}

/**
 * Addressing mode of a GPU (`nvmlDeviceGetAddressingMode`), spelled as NVIDIA's DRA driver publishes it
 * (go-nvlib `GetAddressingModeAsString`, NVIDIA/go-nvlib pkg/nvlib/device/device.go): `HMM` (system memory
 * reachable through software mirroring of the CPU page tables), `ATS` (through Address Translation Services,
 * e.g. Grace Hopper), `None` (supported, neither active) — nvml.h `nvmlDeviceAddressingModeType_t`.
 */
export type AddressingMode = 'HMM' | 'ATS' | 'None';

/** A physical GPU as discovered at start-up. Static facts only; readings are in {@link DeviceSample}. */
export interface GpuInfo {
  /** NVML enumeration index (`nvmlDeviceGetHandleByIndex_v2`); may change across boots. */
  readonly index: number;
  /** Minor number (`nvmlDeviceGetMinorNumber`): `/dev/nvidia<minor>`; stable, used in device names. */
  readonly minor: number;
  /** `GPU-<uuid>` (`nvmlDeviceGetUUID`). */
  readonly uuid: string;
  /** Board serial (`nvmlDeviceGetSerial`). */
  readonly serial: string;
  /** Product name (`nvmlDeviceGetName`), e.g. `NVIDIA H100 80GB HBM3`. */
  readonly productName: string;
  /** Brand (`nvmlDeviceGetBrand`), as NVIDIA's DRA driver spells it, e.g. `Nvidia`. */
  readonly brand: string;
  /** Architecture (`nvmlDeviceGetArchitecture`), e.g. `Hopper`, `Ampere`. */
  readonly architecture: string;
  readonly cudaComputeCapability: ComputeCapability;
  readonly pci: PciInfo;
  /** Total framebuffer memory, bytes (`nvmlDeviceGetMemoryInfo_v2.total`). */
  readonly memoryBytes: number;
  /** Streaming multiprocessors of the full GPU. */
  readonly multiprocessors: number;
  /** Enforced power limit, milliwatts (`nvmlDeviceGetEnforcedPowerLimit`). */
  readonly powerLimitMilliwatts: number;
  /** Current MIG mode (`nvmlDeviceGetMigMode`, current). */
  readonly migEnabled: boolean;
  /**
   * Addressing mode (`nvmlDeviceGetAddressingMode` on the GPU; its MIG devices share it). Absent where NVML does
   * not say: NVML_ERROR_NOT_SUPPORTED, another failure, or a library without the call (e.g. R535).
   */
  readonly addressingMode?: AddressingMode;
  /** VBIOS version (`nvmlDeviceGetVbiosVersion`), e.g. `96.00.74.00.0D`; absent when NVML does not say. */
  readonly vbiosVersion?: string;
  /** MIG devices present on this GPU; empty unless `migEnabled`. */
  readonly migDevices: readonly MigDeviceInfo[];
}

/** Node-wide driver facts. */
export interface SystemInfo {
  /** Driver version as NVML prints it (`nvmlSystemGetDriverVersion`), e.g. `580.95.05`. */
  readonly driverVersion: string;
  /** NVML library version (`nvmlSystemGetNVMLVersion`), e.g. `13.580.95.05`. */
  readonly nvmlVersion: string;
  /** CUDA driver version as NVML encodes it (`nvmlSystemGetCudaDriverVersion_v2`): 1000×major + 10×minor, e.g. 13000. */
  readonly cudaDriverVersion: number;
}

/** Everything discovered on the node: the one inventory that both the DRA and telemetry halves read. */
export interface Inventory {
  readonly system: SystemInfo;
  /** GPUs ordered by NVML index. */
  readonly gpus: readonly GpuInfo[];
}

/**
 * One reading of one device (a full GPU or a MIG device). Every reading is optional: `undefined` means
 * the device or driver does not support it (NVML_ERROR_NOT_SUPPORTED), never zero.
 */
export interface DeviceSample {
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
  /** `nvmlDeviceGetUtilizationRates.gpu`, percent. Not supported on MIG devices. */
  readonly gpuUtilizationPercent?: number;
  /** `nvmlDeviceGetUtilizationRates.memory` (memory-controller busy), percent. */
  readonly memoryUtilizationPercent?: number;
  /** `nvmlDeviceGetEncoderUtilization`, percent. */
  readonly encoderUtilizationPercent?: number;
  /** `nvmlDeviceGetDecoderUtilization`, percent. */
  readonly decoderUtilizationPercent?: number;
  /**
   * `nvmlMemory_v2_t.used` (`nvmlDeviceGetMemoryInfo_v2`), bytes. nvml.h: "The used amount also includes the
   * reserved amount", i.e. used = reserved + allocated, and `memoryUsedBytes + memoryFreeBytes = memoryTotalBytes`.
   */
  readonly memoryUsedBytes?: number;
  /** `nvmlMemory_v2_t.free`, bytes: unallocated memory, `total − used` (nvml.h). */
  readonly memoryFreeBytes?: number;
  /** `nvmlMemory_v2_t.reserved`, bytes: reserved by the driver/system; part of `used` (so ≤ used, nvml.h). */
  readonly memoryReservedBytes?: number;
  /** `nvmlMemory_v2_t.total`, bytes: total physical device memory (for a MIG device: its GPU instance's). */
  readonly memoryTotalBytes?: number;
  /** `nvmlDeviceGetPowerUsage`, milliwatts. */
  readonly powerMilliwatts?: number;
  /** `nvmlDeviceGetEnforcedPowerLimit`, milliwatts. */
  readonly powerLimitMilliwatts?: number;
  /** `nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver loaded; never decreases. */
  readonly energyMillijoules?: number;
  /** `nvmlDeviceGetTemperatureV` (GPU sensor), °C. */
  readonly gpuTemperatureCelsius?: number;
  /** Field `NVML_FI_DEV_MEMORY_TEMP` (82), °C. */
  readonly memoryTemperatureCelsius?: number;
  /** `nvmlDeviceGetClockInfo(NVML_CLOCK_SM)`, MHz. */
  readonly smClockMhz?: number;
  /** `nvmlDeviceGetClockInfo(NVML_CLOCK_MEM)`, MHz. */
  readonly memoryClockMhz?: number;
  /** `nvmlDeviceGetCurrentClocksEventReasons` bitmask (nvmlClocksEventReason*). */
  readonly clockEventReasons?: number;
  /** `nvmlDeviceGetTotalEccErrors(CORRECTED, VOLATILE_ECC)`, count since driver load. */
  readonly eccCorrectedErrors?: number;
  /** `nvmlDeviceGetTotalEccErrors(UNCORRECTED, VOLATILE_ECC)`, count since driver load. */
  readonly eccUncorrectedErrors?: number;
  /** `nvmlDeviceGetRemappedRows`, rows. */
  readonly remappedRowsCorrectable?: number;
  readonly remappedRowsUncorrectable?: number;
  /** `nvmlDeviceGetRemappedRows` `failureOccurred`: 1 when a row remapping failed, else 0 (nvml.h). */
  readonly remappedRowsFailure?: number;
  /**
   * NVLink data bytes transmitted plus received since the driver loaded, over every link: fields
   * `NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX` + `_RX` (138, 139; KiB; scopeId UINT_MAX sums the links, nvml.h) × 1024.
   * Absent on a GPU without NVLink (NOT_SUPPORTED) and on MIG devices.
   */
  readonly nvlinkDataBytes?: number;
  /** `nvmlDeviceGetPcieReplayCounter`, count. */
  readonly pcieReplays?: number;
  /** Cumulative PCIe bytes transmitted / received (integrated from `nvmlDeviceGetPcieThroughput`, KB/s). */
  readonly pcieTxBytes?: number;
  readonly pcieRxBytes?: number;
  /**
   * Profiling metrics over the last sample interval (NVML GPM, Hopper and newer): absent where GPM is not
   * supported (before Hopper, `nvmlGpmQueryDeviceSupport` says so), and on the first sample (GPM needs two).
   */
  readonly gpm?: GpmMetrics;
}

/**
 * Profiling ("DCP") metrics of one device over one sample interval, from NVML GPM: `nvmlGpmMetricsGet` over two
 * samples (`nvmlGpmSampleGet`, or `nvmlGpmMigSampleGet` for a MIG device's GPU instance) one interval apart.
 * NVML gives activities in percent (0–100) and bandwidths in MiB/s (nvml.h `nvmlGpmMetricId_t`, NVIDIA
 * nvidia-nvml-dev 13.5.37); here they are fractions 0..1 and bytes per second. Each field is absent when NVML
 * answered that metric with an error (e.g. no NVLink), never 0.
 */
export interface GpmMetrics {
  /** `NVML_GPM_METRIC_GRAPHICS_UTIL` (1): fraction of time any graphics/compute engine was active. */
  readonly graphicsActive?: number;
  /** `NVML_GPM_METRIC_SM_UTIL` (2): fraction of SMs busy, averaged over the interval. */
  readonly smActive?: number;
  /** `NVML_GPM_METRIC_SM_OCCUPANCY` (3): resident warps over the theoretical maximum. */
  readonly smOccupancy?: number;
  /** `NVML_GPM_METRIC_ANY_TENSOR_UTIL` (5): fraction of time the SMs ran any tensor operation. */
  readonly tensorActive?: number;
  /** `NVML_GPM_METRIC_FP64_UTIL` (11): fraction of time the SMs ran non-tensor FP64 math. */
  readonly fp64Active?: number;
  /** `NVML_GPM_METRIC_FP32_UTIL` (12). */
  readonly fp32Active?: number;
  /** `NVML_GPM_METRIC_FP16_UTIL` (13). */
  readonly fp16Active?: number;
  /** `NVML_GPM_METRIC_DRAM_BW_UTIL` (10): DRAM bandwidth used over the theoretical maximum. */
  readonly dramActive?: number;
  /** `NVML_GPM_METRIC_PCIE_TX_PER_SEC` (20, MiB/s × 2^20): PCIe bytes per second from the GPU. */
  readonly pcieTxBytesPerSecond?: number;
  /** `NVML_GPM_METRIC_PCIE_RX_PER_SEC` (21): PCIe bytes per second to the GPU. */
  readonly pcieRxBytesPerSecond?: number;
  /** `NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC` (61): NVLink bytes per second written, all links. */
  readonly nvlinkTxBytesPerSecond?: number;
  /** `NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC` (60): NVLink bytes per second read, all links. */
  readonly nvlinkRxBytesPerSecond?: number;
}

/** One full sample of the node: every GPU and every MIG device, taken at `timestampMs` (Unix ms). */
export interface Sample {
  readonly timestampMs: number;
  readonly devices: readonly DeviceSample[];
}

/** Kinds of health event, from the NVML event types `nvmlEventTypeXidCriticalError`, `...DoubleBitEccError`,
 * `...SingleBitEccError` and `nvmlEventTypeGpuUnavailableError`, plus `gpu-lost` (NVML_ERROR_GPU_IS_LOST on a call),
 * `unmonitored` (health events cannot be registered for the device: `nvmlEventSetCreate` failed, or
 * `nvmlDeviceGetSupportedEventTypes` / `nvmlDeviceRegisterEvents` failed or support none of them) and
 * `gpu-recovered` (a device that was lost answers again, same UUID, after a rediscovery or GPU reset).
 * What each means for health: src/gpu/health.ts. */
export type HealthEventKind = 'xid' | 'ecc-double-bit' | 'ecc-single-bit' | 'gpu-unavailable' | 'gpu-lost' | 'unmonitored' | 'gpu-recovered';

/** A health event for one device (a GPU, or a MIG device when NVML attributes it to one). */
export interface HealthEvent {
  readonly kind: HealthEventKind;
  /** `GPU-...` or `MIG-...` the event concerns. */
  readonly uuid: string;
  /** The XID number (`eventData`), for `kind === 'xid'`. */
  readonly xid?: number;
  /** Unix ms. */
  readonly timestampMs: number;
  /** Human-readable description. */
  readonly message: string;
}

/** Health verdict of a device, derived from its events (see `src/gpu/health.ts`). */
export type DeviceHealthState = 'ok' | 'degraded' | 'failed';

/**
 * What gpulet needs from a GPU source. Both the mock and the NVML backend implement it.
 * Lifecycle: `init()` once, then `inventory()` / `sample()` any number of times, then `shutdown()` (idempotent).
 */
export interface GpuBackend {
  /** `mock` or `nvml`. */
  readonly kind: 'mock' | 'nvml';
  /**
   * Load the library / build the machine and discover devices.
   * @throws BackendError (e.g. NVML library not found, NVML_ERROR_DRIVER_NOT_LOADED) naming what to check.
   */
  init(): Promise<void>;
  /** The discovered devices. Cheap: discovery happened in `init()` (and after a refresh). */
  inventory(): Inventory;
  /** Read every device once. Never rejects for one device's failure: that device's readings are absent. */
  sample(): Promise<Sample>;
  /** Subscribe to health events; returns the unsubscribe function. */
  onHealthEvent(listener: (event: HealthEvent) => void): () => void;
  /** Stop event threads and release the library. Idempotent. */
  shutdown(): Promise<void>;
  /**
   * MIG management (dynamic MIG, issue 12): absent where the backend cannot create or destroy instances.
   * After a successful create or destroy, `inventory()` lists the GPU's MIG devices as they now are.
   */
  readonly mig?: MigManager;
}

/** A GPU instance to create: its GI profile and exact memory-slice placement (`nvmlGpuInstancePlacement_t`). */
export interface MigPlacementRequest {
  /** GPU-instance profile ID (`nvmlGpuInstanceProfileInfo_v2_t.id`), e.g. 19 for 1g.10gb on H100. */
  readonly giProfileId: number;
  /** First memory slice. */
  readonly start: number;
  /** Memory slices covered. */
  readonly size: number;
}

export type { MigErrorCode } from '../errors.js';

/**
 * MIG management of one backend (NVML: `nvmlDeviceCreateGpuInstanceWithPlacement`,
 * `nvmlGpuInstanceCreateComputeInstance`, `nvmlComputeInstanceDestroy`, `nvmlGpuInstanceDestroy`,
 * `nvmlDeviceGetMigMode`, `nvmlDeviceSetMigMode`). Calls on one GPU are serialised by the backend.
 * Every rejection is a `BackendError` (src/errors.ts) whose `migCode` is a {@link MigErrorCode}.
 */
export interface MigManager {
  /**
   * Create a GPU instance of `req.giProfileId` at exactly `req.start` on GPU `gpuUuid`, then one compute
   * instance spanning it (the GI's full-size CI profile). If the compute instance cannot be made, the GPU
   * instance is destroyed again before rejecting: no half-made state.
   * @returns the new MIG device as discovery lists it (UUID, IDs, placement, engines, memory)
   */
  createMigDevice(gpuUuid: string, req: MigPlacementRequest): Promise<MigDeviceInfo>;
  /**
   * Destroy the compute instances and then GPU instance `gpuInstanceId` of GPU `gpuUuid`. Resolves when the
   * instance does not exist (NOT_FOUND): idempotent, so recovery can repeat it.
   */
  destroyMigDevice(gpuUuid: string, gpuInstanceId: number): Promise<void>;
  /** The GPU's MIG devices as they are now (read again, not the cached inventory). */
  listMigDevices(gpuUuid: string): Promise<MigDeviceInfo[]>;
  /**
   * Every GPU instance of the GPU, with or without a compute instance (`nvmlDeviceGetGpuInstances` per GI
   * profile, `nvmlGpuInstanceGetInfo`). Optional: recovery uses it to find a GPU instance whose creation was
   * interrupted before its compute instance (not a MIG device, so not in `listMigDevices`); without it, such an
   * instance is found only once it is a MIG device.
   */
  gpuInstances?(gpuUuid: string): Promise<Array<{ readonly gpuInstanceId: number; readonly giProfileId: number; readonly placement: { readonly start: number; readonly size: number } }>>;
  /** Current and pending MIG mode (`nvmlDeviceGetMigMode`). */
  migMode(gpuUuid: string): Promise<{ readonly current: boolean; readonly pending: boolean }>;
  /**
   * Set MIG mode (`nvmlDeviceSetMigMode`). `resetRequired` when the new mode is pending until a GPU reset
   * (A100 class; `activationStatus` NVML_ERROR_RESET_REQUIRED or pending != current).
   */
  setMigMode(gpuUuid: string, enabled: boolean): Promise<{ readonly current: boolean; readonly pending: boolean; readonly resetRequired: boolean }>;
}

/**
 * One GPU-instance profile of a GPU model, with its possible placements (`nvmlGpuInstanceProfileInfo_v2_t` and
 * `nvmlDeviceGetGpuInstancePossiblePlacements_v2`): what the NVML backend reads, the mock's tables hold
 * (src/gpu/mock/profiles.ts) and the placement model checks (src/model/mig-placements.ts).
 */
export interface MigProfileSpec {
  /** Name as `nvidia-smi` prints it, e.g. `1g.10gb`, `1g.10gb+me`. */
  readonly name: string;
  /** GPU-instance profile ID (`nvmlGpuInstanceProfileInfo_v2_t.id`), e.g. 19. */
  readonly id: number;
  /** Most instances of this profile on one GPU (`instanceCount`). */
  readonly maxCount: number;
  /** Compute slices used (of 7 on every MIG-capable GPU so far): the `Ng` prefix of the name. */
  readonly computeSlices: number;
  /** Streaming multiprocessors (`multiprocessorCount`). */
  readonly multiprocessors: number;
  /** Framebuffer memory, MiB (`memorySizeMB`, which nvml.h documents in MiB). */
  readonly memoryMiB: number;
  readonly copyEngines: number;
  readonly decoders: number;
  readonly encoders: number;
  readonly jpegEngines: number;
  readonly ofaEngines: number;
  /** Possible placement starts in memory slices (`nvmlDeviceGetGpuInstancePossiblePlacements_v2`). */
  readonly placementStarts: readonly number[];
  /** Memory slices an instance occupies (`nvmlGpuInstancePlacement_t.size`). */
  readonly placementSize: number;
}
