/**
 * Shapes of what the native addon's NVML session returns, after validation by the loader (`validate.ts`).
 * They mirror the NVML structs field by field, in NVML's units; the mapping to gpulet's model (`GpuInfo`,
 * `DeviceSample`) is in `map.ts`. Every reading is optional: absent means the call answered
 * NVML_ERROR_NOT_SUPPORTED, the symbol is missing from the library, or the call failed (then the failure is
 * in `errors`).
 */
import type { NvmlError } from './nvml-error.js';

/** Node-wide facts (`nvmlSystemGet*`). */
export interface NvmlSystemFacts {
  /** `nvmlSystemGetDriverVersion`, e.g. `580.95.05`. */
  readonly driverVersion?: string;
  /** `nvmlSystemGetNVMLVersion`, e.g. `13.580.95.05`. */
  readonly nvmlVersion?: string;
  /** `nvmlSystemGetCudaDriverVersion_v2`: 1000 × major + 10 × minor. */
  readonly cudaDriverVersion?: number;
  readonly errors: readonly NvmlError[];
}

/** `nvmlPciInfo_t` (from `nvmlDeviceGetPciInfo_v3`). */
export interface NvmlPciFacts {
  /** `busId`, e.g. `00000000:18:00.0` (8-digit domain). */
  readonly busId: string;
  readonly domain: number;
  readonly bus: number;
  readonly device: number;
  /** `pciDeviceId`: device ID << 16 | vendor ID. */
  readonly pciDeviceId: number;
  readonly pciSubSystemId: number;
}

/** `nvmlGpuInstanceProfileInfo_v2_t` (from `nvmlDeviceGetGpuInstanceProfileInfoV`, or v1 without a name). */
export interface NvmlGiProfileFacts {
  /** Profile index passed to the call (`NVML_GPU_INSTANCE_PROFILE_*`). */
  readonly index: number;
  /** `id`: GPU-instance profile ID, e.g. 19. */
  readonly id: number;
  /** `name`, e.g. `MIG 1g.10gb`; empty when only the v1 call exists. */
  readonly name: string;
  /** `sliceCount`: compute slices. */
  readonly sliceCount: number;
  /** `instanceCount`: most instances of this profile on the GPU (absent / 0: not read). */
  readonly instanceCount?: number;
  readonly multiprocessorCount: number;
  readonly copyEngineCount: number;
  readonly decoderCount: number;
  readonly encoderCount: number;
  readonly jpegCount: number;
  readonly ofaCount: number;
  /** `memorySizeMB` (MiB). */
  readonly memorySizeMB: number;
  /**
   * `nvmlDeviceGetGpuInstancePossiblePlacements_v2` for this profile: the memory-slice placements a GPU instance
   * of it may have. Absent or empty when the call is missing or failed.
   */
  readonly placements?: readonly { readonly start: number; readonly size: number }[];
}

/** One MIG device under a GPU (`nvmlDeviceGetMigDeviceHandleByIndex`). */
export interface NvmlMigFacts {
  /** Index passed to `nvmlDeviceGetMigDeviceHandleByIndex`. */
  readonly index: number;
  /** Set when the MIG device could not be read at all (its handle or UUID failed). */
  readonly error?: NvmlError;
  readonly uuid?: string;
  readonly gpuInstanceId?: number;
  readonly computeInstanceId?: number;
  /** `nvmlGpuInstanceGetInfo`: profile ID and placement. */
  readonly profileId?: number;
  readonly placementStart?: number;
  readonly placementSize?: number;
  /** The GPU-instance profile whose `id` equals {@link profileId}. */
  readonly profile?: NvmlGiProfileFacts;
  readonly errors: readonly NvmlError[];
}

/** One GPU (`nvmlDeviceGetHandleByIndex_v2`). */
export interface NvmlGpuFacts {
  /** NVML index. */
  readonly index: number;
  /** Set when the GPU could not be read at all (handle or UUID failed, e.g. NVML_ERROR_GPU_IS_LOST). */
  readonly error?: NvmlError;
  readonly uuid?: string;
  readonly serial?: string;
  readonly name?: string;
  readonly minor?: number;
  /** `nvmlBrandType_t`. */
  readonly brand?: number;
  /** `nvmlDeviceArchitecture_t`. */
  readonly architecture?: number;
  readonly ccMajor?: number;
  readonly ccMinor?: number;
  readonly pci?: NvmlPciFacts;
  /** `nvmlMemory_v2_t.total` (or v1), bytes. */
  readonly memoryTotal?: number;
  /** `nvmlDeviceAttributes_t.multiprocessorCount`. */
  readonly multiprocessors?: number;
  /** `nvmlDeviceGetEnforcedPowerLimit`, mW. */
  readonly powerLimit?: number;
  /** `nvmlDeviceGetMigMode`: 1 = enabled. */
  readonly migCurrent?: number;
  readonly migPending?: number;
  /** `nvmlDeviceAddressingMode_v1_t.value` (`nvmlDeviceGetAddressingMode`): 0 NONE, 1 HMM, 2 ATS (nvml.h). */
  readonly addressingMode?: number;
  /** `nvmlDeviceGetVbiosVersion`, e.g. `96.00.74.00.0D`. */
  readonly vbiosVersion?: string;
  readonly migDevices: readonly NvmlMigFacts[];
  /** GPU-instance profiles with their possible placements; read only while MIG mode is on (else absent or empty). */
  readonly migProfiles?: readonly NvmlGiProfileFacts[];
  readonly errors: readonly NvmlError[];
}

/** `session.migMode(gpu)`: `nvmlDeviceGetMigMode` (1 = enabled). */
export interface NvmlMigMode {
  readonly current: number;
  readonly pending: number;
}

/** `session.setMigMode(gpu, enabled)`: `nvmlDeviceSetMigMode`, then the mode and the GPU read again. */
export interface NvmlSetMigModeResult extends NvmlMigMode {
  /** `activationStatus` (`nvmlReturn_t`): 0, or e.g. 16 NVML_ERROR_RESET_REQUIRED (pending until a GPU reset). */
  readonly activationStatus: number;
  /** Its symbolic name, e.g. `NVML_ERROR_RESET_REQUIRED`. */
  readonly activationStatusName: string;
  readonly gpu: NvmlGpuFacts;
}

/** `session.createMigDevice(...)`: the new GPU instance and the GPU read again. */
export interface NvmlCreateMigResult {
  /** `nvmlGpuInstanceInfo_t.id` of the new GPU instance. */
  readonly gpuInstanceId: number;
  /** Compute-instance profile ID of its (full) compute instance. */
  readonly computeInstanceProfileId: number;
  readonly gpu: NvmlGpuFacts;
}

/** `session.destroyMigDevice(...)`: whether the GPU instance existed, and the GPU read again. */
export interface NvmlDestroyMigResult {
  readonly found: boolean;
  readonly gpu: NvmlGpuFacts;
}

/** One GPU instance of `session.gpuInstances(gpu)`: `nvmlGpuInstanceInfo_t` (`id`, `profileId`, `placement`). */
export interface NvmlGpuInstanceListed {
  readonly gpuInstanceId: number;
  readonly giProfileId: number;
  /** First memory slice and memory slices covered (`nvmlGpuInstancePlacement_t`). */
  readonly start: number;
  readonly size: number;
}

/** Result of a discovery (at init, and on a handle refresh). */
export interface NvmlDiscovery {
  readonly system: NvmlSystemFacts;
  readonly gpus: readonly NvmlGpuFacts[];
}

/** Readings of one device in one sample, in NVML's units. */
export interface NvmlReading {
  /** Index of the GPU in the discovery. */
  readonly gpu: number;
  /** Index of the MIG device under it (position in `migDevices`), or -1 for the GPU itself. */
  readonly mig: number;
  /** Set when the device could not be read (e.g. NVML_ERROR_GPU_IS_LOST): no readings then. */
  readonly error?: NvmlError;
  /** Readings that failed with a code other than NOT_SUPPORTED (each reading absent). */
  readonly errors?: readonly NvmlError[];
  /** `nvmlUtilization_t.gpu` / `.memory`, percent. */
  readonly gpuUtil?: number;
  readonly memUtil?: number;
  /** `nvmlDeviceGetEncoderUtilization` / `...Decoder...`, percent. */
  readonly encUtil?: number;
  readonly decUtil?: number;
  /** `nvmlMemory_v2_t`, bytes (`reserved` absent with the v1 call). */
  readonly memTotal?: number;
  readonly memReserved?: number;
  readonly memFree?: number;
  readonly memUsed?: number;
  /** mW. */
  readonly power?: number;
  readonly powerLimit?: number;
  /** `nvmlDeviceGetTotalEnergyConsumption`, mJ. */
  readonly energy?: number;
  /** °C: `nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU)`, field `NVML_FI_DEV_MEMORY_TEMP`. */
  readonly gpuTemp?: number;
  readonly memTemp?: number;
  /** MHz. */
  readonly smClock?: number;
  readonly memClock?: number;
  /** `nvmlClocksEventReason*` bitmask. */
  readonly clockReasons?: number;
  /** Volatile ECC totals. */
  readonly eccCorrected?: number;
  readonly eccUncorrected?: number;
  /** `nvmlDeviceGetRemappedRows`. */
  readonly remappedCorrectable?: number;
  readonly remappedUncorrectable?: number;
  /** `nvmlDeviceGetRemappedRows` `failureOccurred`: 1 when a row failed to be remapped, else 0. */
  readonly remappedFailure?: number;
  /** Fields `NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX` / `_RX` (138/139, scopeId UINT_MAX: all links), KiB since the driver loaded. */
  readonly nvlinkTxKiB?: number;
  readonly nvlinkRxKiB?: number;
  readonly pcieReplays?: number;
  /** `nvmlDeviceGetPcieThroughput`, KB/s. */
  readonly pcieTxKBs?: number;
  readonly pcieRxKBs?: number;
  /**
   * GPM metrics over the interval since the previous sample (`nvmlGpmMetricsGet`; native/nvml_gpm.cc): absent on a
   * device without GPM (before Hopper, or a library without the calls) and at its first sample.
   */
  readonly gpm?: NvmlGpmReading;
}

/**
 * `nvmlGpmMetric_t.value` of each metric gpulet asks for, named after its `nvmlGpmMetricId_t` (nvml.h 13.5.37):
 * percent 0–100 for the `*Util` and `smOccupancy`, MiB/s for the `*PerSec`. A metric NVML answered with an
 * error is absent.
 */
export interface NvmlGpmReading {
  /** `NVML_GPM_METRIC_GRAPHICS_UTIL` (1). */
  readonly graphicsUtil?: number;
  /** `NVML_GPM_METRIC_SM_UTIL` (2). */
  readonly smUtil?: number;
  /** `NVML_GPM_METRIC_SM_OCCUPANCY` (3). */
  readonly smOccupancy?: number;
  /** `NVML_GPM_METRIC_ANY_TENSOR_UTIL` (5). */
  readonly anyTensorUtil?: number;
  /** `NVML_GPM_METRIC_DRAM_BW_UTIL` (10). */
  readonly dramBwUtil?: number;
  /** `NVML_GPM_METRIC_FP64_UTIL` (11), `_FP32_UTIL` (12), `_FP16_UTIL` (13). */
  readonly fp64Util?: number;
  readonly fp32Util?: number;
  readonly fp16Util?: number;
  /** `NVML_GPM_METRIC_PCIE_TX_PER_SEC` (20), `_RX_PER_SEC` (21), MiB/s. */
  readonly pcieTxPerSec?: number;
  readonly pcieRxPerSec?: number;
  /** `NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC` (61), `_RX_PER_SEC` (60), MiB/s. */
  readonly nvlinkTotalTxPerSec?: number;
  readonly nvlinkTotalRxPerSec?: number;
}

/** One sample of every device of the last discovery. */
export interface NvmlSampleResult {
  /** Unix ms when the native reads started. */
  readonly timestampMs: number;
  readonly devices: readonly NvmlReading[];
}

/** An NVML event as the native event thread delivers it. */
export interface NvmlRawEvent {
  /** Index of the GPU (in the discovery) the event's device handle belongs to; -1 when unknown. */
  readonly gpu: number;
  /** `nvmlEventType*` bit, or 0 for an error from `nvmlEventSetWait_v2` (then `error` is set). */
  readonly eventType: number;
  /** `eventData` (the XID for XID events). */
  readonly eventData: number;
  /** `gpuInstanceId` / `computeInstanceId` (0xFFFFFFFF when not a MIG event). */
  readonly gpuInstanceId: number;
  readonly computeInstanceId: number;
  /** Unix ms when the native thread received it. */
  readonly timestampMs: number;
  /** The wait failed (e.g. NVML_ERROR_GPU_IS_LOST). */
  readonly error?: NvmlError;
}

/** Event types registered per GPU (`nvmlDeviceGetSupportedEventTypes` ∩ wanted). */
export interface NvmlEventRegistration {
  /** Per GPU index: the registered event-type mask (0 when none or unsupported). */
  readonly registered: readonly number[];
  readonly errors: readonly NvmlError[];
}
