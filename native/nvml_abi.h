/*
 * nvml_abi.h — gpulet's own declarations of the subset of the NVIDIA Management Library (NVML) C ABI
 * that gpulet calls. gpulet never includes NVIDIA's nvml.h at build time (so `npm install` builds on any
 * Linux machine); libnvidia-ml.so.1 is dlopen()ed at run time and every function below is dlsym()ed
 * through the `*_fn` pointer typedefs.
 *
 * Source of truth: NVIDIA's nvml.h as shipped by Debian's libnvidia-ml-dev 11.8 (/usr/include/nvml.h).
 * Every struct size, field offset, enum/#define value, versioned-struct version constant and function
 * prototype here is compared against that header by test/native/nvml-abi.test.ts, which parses THIS file
 * to build its list of checks (so nothing declared here escapes the check).
 *
 * Items marked `@since` on their line are newer than NVML 11.8 (values and signatures from NVIDIA's
 * NVML API reference / nvml.h 12.x as mirrored by NVIDIA's pynvml and go-nvml). The ABI test checks them
 * when the official header defines them and otherwise reports them as "not checkable against 11.8".
 * Items also marked `@with <macro>` (the addressing-mode ABI) are checked against an excerpt of a newer
 * NVIDIA nvml.h (test/reference/nvml/, PyPI nvidia-nvml-dev 13.5.37) included after the official header:
 * present there exactly when `<macro>` is defined.
 *
 * Layout rules this file follows (the ABI test's parser relies on them): one `#define NAME value` per
 * line; enum constants with explicit values; struct/union fields one per line; function-pointer typedefs
 * on one line, named `<symbol>_fn`.
 *
 * Plain C89/C99 and C++ compatible.
 */
#ifndef GPULET_NVML_ABI_H
#define GPULET_NVML_ABI_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
 * Versioning helpers
 * ------------------------------------------------------------------------------------------------- */

/** Version word of a versioned struct: sizeof(struct) | (version << 24) (nvml.h NVML_STRUCT_VERSION). */
#define NVML_STRUCT_VERSION(data, ver) (unsigned int)(sizeof(nvml ## data ## _v ## ver ## _t) | (ver << 24U))

/** Special value some fields take when they are not available (nvml.h). */
#define NVML_VALUE_NOT_AVAILABLE (-1)

/* ---------------------------------------------------------------------------------------------------
 * Buffer sizes (bytes, including the NUL terminator)
 * ------------------------------------------------------------------------------------------------- */

#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_SERIAL_BUFFER_SIZE 30
#define NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE 32
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80

/* ---------------------------------------------------------------------------------------------------
 * Opaque handles
 * ------------------------------------------------------------------------------------------------- */

typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlGpuInstance_st *nvmlGpuInstance_t;
typedef struct nvmlComputeInstance_st *nvmlComputeInstance_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;
typedef struct nvmlGpmSample_st *nvmlGpmSample_t;

/* ---------------------------------------------------------------------------------------------------
 * Return codes
 * ------------------------------------------------------------------------------------------------- */

typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
  NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_DEPRECATED = 26, /* @since 12.0 */
  NVML_ERROR_NOT_READY = 27, /* @since 12.2 */
  NVML_ERROR_GPU_NOT_FOUND = 28, /* @since 12.3 */
  NVML_ERROR_INVALID_STATE = 29, /* @since 12.3 */
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

/* ---------------------------------------------------------------------------------------------------
 * Enums
 * ------------------------------------------------------------------------------------------------- */

typedef enum nvmlEnableState_enum {
  NVML_FEATURE_DISABLED = 0,
  NVML_FEATURE_ENABLED = 1
} nvmlEnableState_t;

/** nvmlDeviceGetBrand. */
typedef enum nvmlBrandType_enum {
  NVML_BRAND_UNKNOWN = 0,
  NVML_BRAND_QUADRO = 1,
  NVML_BRAND_TESLA = 2,
  NVML_BRAND_NVS = 3,
  NVML_BRAND_GRID = 4,
  NVML_BRAND_GEFORCE = 5,
  NVML_BRAND_TITAN = 6,
  NVML_BRAND_NVIDIA_VAPPS = 7,
  NVML_BRAND_NVIDIA_VPC = 8,
  NVML_BRAND_NVIDIA_VCS = 9,
  NVML_BRAND_NVIDIA_VWS = 10,
  NVML_BRAND_NVIDIA_CLOUD_GAMING = 11,
  NVML_BRAND_NVIDIA_VGAMING = 11,
  NVML_BRAND_QUADRO_RTX = 12,
  NVML_BRAND_NVIDIA_RTX = 13,
  NVML_BRAND_NVIDIA = 14,
  NVML_BRAND_GEFORCE_RTX = 15,
  NVML_BRAND_TITAN_RTX = 16,
  NVML_BRAND_COUNT = 17
} nvmlBrandType_t;

/** nvmlDeviceGetTemperature sensor. */
typedef enum nvmlTemperatureSensors_enum {
  NVML_TEMPERATURE_GPU = 0,
  NVML_TEMPERATURE_COUNT = 1
} nvmlTemperatureSensors_t;

/** nvmlDeviceGetClockInfo clock domain. */
typedef enum nvmlClockType_enum {
  NVML_CLOCK_GRAPHICS = 0,
  NVML_CLOCK_SM = 1,
  NVML_CLOCK_MEM = 2,
  NVML_CLOCK_VIDEO = 3,
  NVML_CLOCK_COUNT = 4
} nvmlClockType_t;

/** nvmlDeviceGetTotalEccErrors error type. */
typedef enum nvmlMemoryErrorType_enum {
  NVML_MEMORY_ERROR_TYPE_CORRECTED = 0,
  NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1,
  NVML_MEMORY_ERROR_TYPE_COUNT = 2
} nvmlMemoryErrorType_t;

#define NVML_SINGLE_BIT_ECC NVML_MEMORY_ERROR_TYPE_CORRECTED
#define NVML_DOUBLE_BIT_ECC NVML_MEMORY_ERROR_TYPE_UNCORRECTED

/** nvmlDeviceGetTotalEccErrors counter type. */
typedef enum nvmlEccCounterType_enum {
  NVML_VOLATILE_ECC = 0,
  NVML_AGGREGATE_ECC = 1,
  NVML_ECC_COUNTER_TYPE_COUNT = 2
} nvmlEccCounterType_t;

/** nvmlDeviceGetPcieThroughput counter (KB/s, 1 KB granularity). */
typedef enum nvmlPcieUtilCounter_enum {
  NVML_PCIE_UTIL_TX_BYTES = 0,
  NVML_PCIE_UTIL_RX_BYTES = 1,
  NVML_PCIE_UTIL_COUNT = 2
} nvmlPcieUtilCounter_t;

/** nvmlFieldValue_t.valueType. */
typedef enum nvmlValueType_enum {
  NVML_VALUE_TYPE_DOUBLE = 0,
  NVML_VALUE_TYPE_UNSIGNED_INT = 1,
  NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
  NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
  NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
  NVML_VALUE_TYPE_COUNT = 5
} nvmlValueType_t;

/* ---------------------------------------------------------------------------------------------------
 * Architecture (nvmlDeviceGetArchitecture)
 * ------------------------------------------------------------------------------------------------- */

typedef unsigned int nvmlDeviceArchitecture_t;

#define NVML_DEVICE_ARCH_KEPLER 2
#define NVML_DEVICE_ARCH_MAXWELL 3
#define NVML_DEVICE_ARCH_PASCAL 4
#define NVML_DEVICE_ARCH_VOLTA 5
#define NVML_DEVICE_ARCH_TURING 6
#define NVML_DEVICE_ARCH_AMPERE 7
#define NVML_DEVICE_ARCH_ADA 8
#define NVML_DEVICE_ARCH_HOPPER 9
#define NVML_DEVICE_ARCH_BLACKWELL 10 /* @since 12.8 */
#define NVML_DEVICE_ARCH_UNKNOWN 0xffffffff

/* ---------------------------------------------------------------------------------------------------
 * Structs
 * ------------------------------------------------------------------------------------------------- */

/** nvmlDeviceGetPciInfo_v3 / _v2. */
typedef struct nvmlPciInfo_st {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

/** nvmlDeviceGetUtilizationRates: percent over the last sample period. */
typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

/** nvmlDeviceGetMemoryInfo (v1): bytes; used includes reserved. */
typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

/** nvmlDeviceGetMemoryInfo_v2: bytes; `version` must be nvmlMemory_v2. */
typedef struct nvmlMemory_v2_st {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

/** nvmlDeviceGetAttributes_v2: for a MIG device handle, the MIG device's resources. */
typedef struct nvmlDeviceAttributes_st {
  unsigned int multiprocessorCount;
  unsigned int sharedCopyEngineCount;
  unsigned int sharedDecoderCount;
  unsigned int sharedEncoderCount;
  unsigned int sharedJpegCount;
  unsigned int sharedOfaCount;
  unsigned int gpuInstanceSliceCount;
  unsigned int computeInstanceSliceCount;
  unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;

/** Field value payload (nvmlFieldValue_t.value). */
typedef union nvmlValue_st {
  double dVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  signed long long sllVal;
} nvmlValue_t;

/** nvmlDeviceGetFieldValues entry: set fieldId (and scopeId) before the call; check nvmlReturn per entry. */
typedef struct nvmlFieldValue_st {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;
  long long latencyUsec;
  nvmlValueType_t valueType;
  nvmlReturn_t nvmlReturn;
  nvmlValue_t value;
} nvmlFieldValue_t;

/** nvmlEventSetWait_v2 output. */
typedef struct nvmlEventData_st {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlEventData_t;

/** GPU-instance placement, in memory slices. */
typedef struct nvmlGpuInstancePlacement_st {
  unsigned int start;
  unsigned int size;
} nvmlGpuInstancePlacement_t;

/** nvmlDeviceGetGpuInstanceProfileInfo (v1). */
typedef struct nvmlGpuInstanceProfileInfo_st {
  unsigned int id;
  unsigned int isP2pSupported;
  unsigned int sliceCount;
  unsigned int instanceCount;
  unsigned int multiprocessorCount;
  unsigned int copyEngineCount;
  unsigned int decoderCount;
  unsigned int encoderCount;
  unsigned int jpegCount;
  unsigned int ofaCount;
  unsigned long long memorySizeMB;
} nvmlGpuInstanceProfileInfo_t;

/** nvmlDeviceGetGpuInstanceProfileInfoV: `version` must be nvmlGpuInstanceProfileInfo_v2. */
typedef struct nvmlGpuInstanceProfileInfo_v2_st {
  unsigned int version;
  unsigned int id;
  unsigned int isP2pSupported;
  unsigned int sliceCount;
  unsigned int instanceCount;
  unsigned int multiprocessorCount;
  unsigned int copyEngineCount;
  unsigned int decoderCount;
  unsigned int encoderCount;
  unsigned int jpegCount;
  unsigned int ofaCount;
  unsigned long long memorySizeMB;
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
} nvmlGpuInstanceProfileInfo_v2_t;

#define nvmlGpuInstanceProfileInfo_v2 NVML_STRUCT_VERSION(GpuInstanceProfileInfo, 2)

/** nvmlGpuInstanceGetInfo. */
typedef struct nvmlGpuInstanceInfo_st {
  nvmlDevice_t device;
  unsigned int id;
  unsigned int profileId;
  nvmlGpuInstancePlacement_t placement;
} nvmlGpuInstanceInfo_t;

/* ---------------------------------------------------------------------------------------------------
 * Addressing mode (nvmlDeviceGetAddressingMode): newer than NVML 11.8 (absent from Debian's 535 library);
 * declared as NVIDIA's nvml.h 13.5.37 declares it (there the enum is anonymous and
 * `nvmlDeviceAddressingMode_t` is an alias of the _v1_t struct).
 * ------------------------------------------------------------------------------------------------- */

/** nvmlDeviceAddressingMode_v1_t.value: NONE = neither HMM nor ATS is active. */
typedef enum nvmlDeviceAddressingModeType_enum {
  NVML_DEVICE_ADDRESSING_MODE_NONE = 0, /* @since >11.8 @with nvmlDeviceAddressingMode_v1 */
  NVML_DEVICE_ADDRESSING_MODE_HMM = 1, /* @since >11.8 @with nvmlDeviceAddressingMode_v1 */
  NVML_DEVICE_ADDRESSING_MODE_ATS = 2 /* @since >11.8 @with nvmlDeviceAddressingMode_v1 */
} nvmlDeviceAddressingModeType_t;

/** nvmlDeviceGetAddressingMode: `version` must be nvmlDeviceAddressingMode_v1; `value` one of the above. */
typedef struct nvmlDeviceAddressingMode_v1_st {
  unsigned int version;
  unsigned int value;
} nvmlDeviceAddressingMode_v1_t;

#define nvmlDeviceAddressingMode_v1 NVML_STRUCT_VERSION(DeviceAddressingMode, 1) /* @since >11.8 */

/* ---------------------------------------------------------------------------------------------------
 * MIG
 * ------------------------------------------------------------------------------------------------- */

#define NVML_DEVICE_MIG_DISABLE 0x0
#define NVML_DEVICE_MIG_ENABLE 0x1

/* GPU-instance profile INDEX (argument of nvmlDeviceGetGpuInstanceProfileInfoV), not the profile ID. */
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE 0x0
#define NVML_GPU_INSTANCE_PROFILE_2_SLICE 0x1
#define NVML_GPU_INSTANCE_PROFILE_3_SLICE 0x2
#define NVML_GPU_INSTANCE_PROFILE_4_SLICE 0x3
#define NVML_GPU_INSTANCE_PROFILE_7_SLICE 0x4
#define NVML_GPU_INSTANCE_PROFILE_8_SLICE 0x5
#define NVML_GPU_INSTANCE_PROFILE_6_SLICE 0x6
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 0x7
#define NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1 0x8 /* @since 12.0 */
#define NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2 0x9 /* @since 12.0 */
/** Profile indexes gpulet scans: 0 .. GPULET_NVML_GPU_INSTANCE_PROFILE_SCAN-1 (NVML 12.x PROFILE_COUNT). */
#define GPULET_NVML_GPU_INSTANCE_PROFILE_SCAN 10
/** Most possible placements of one GI profile (nvmlDeviceGetGpuInstancePossiblePlacements_v2): 8 memory slices. */
#define GPULET_NVML_MAX_PLACEMENTS 8
/** Most GPU instances of one GI profile gpulet lists (nvmlDeviceGetGpuInstances): 8 memory slices, one GI each at most. */
#define GPULET_NVML_MAX_GPU_INSTANCES 8

/* Compute-instance profile INDEX (argument of nvmlGpuInstanceGetComputeInstanceProfileInfoV), by compute slices. */
#define NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE 0x0
#define NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE 0x1
#define NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE 0x2
#define NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE 0x3
#define NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE 0x4
#define NVML_COMPUTE_INSTANCE_PROFILE_8_SLICE 0x5
#define NVML_COMPUTE_INSTANCE_PROFILE_6_SLICE 0x6
/** Compute-instance profile indexes gpulet scans: 0 .. GPULET_NVML_COMPUTE_INSTANCE_PROFILE_SCAN-1 (11.8 PROFILE_COUNT). */
#define GPULET_NVML_COMPUTE_INSTANCE_PROFILE_SCAN 7
/** Engine profile: every engine but the multiprocessors shared between the GI's compute instances. */
#define NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED 0x0
/** Compute instances of one profile gpulet lists per GI (nvmlGpuInstanceGetComputeInstances): at most 8 (8 slices). */
#define GPULET_NVML_MAX_COMPUTE_INSTANCES 8

/** nvmlGpuInstanceGetComputeInstanceProfileInfoV: `version` must be nvmlComputeInstanceProfileInfo_v2. */
typedef struct nvmlComputeInstanceProfileInfo_v2_st {
  unsigned int version;
  unsigned int id;
  unsigned int sliceCount;
  unsigned int instanceCount;
  unsigned int multiprocessorCount;
  unsigned int sharedCopyEngineCount;
  unsigned int sharedDecoderCount;
  unsigned int sharedEncoderCount;
  unsigned int sharedJpegCount;
  unsigned int sharedOfaCount;
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
} nvmlComputeInstanceProfileInfo_v2_t;

#define nvmlComputeInstanceProfileInfo_v2 NVML_STRUCT_VERSION(ComputeInstanceProfileInfo, 2)

/* ---------------------------------------------------------------------------------------------------
 * GPM (GPU Performance Monitoring, Hopper and newer): nvmlGpmSampleAlloc / nvmlGpmSampleGet (or
 * nvmlGpmMigSampleGet for one GPU instance) twice, one interval apart, then nvmlGpmMetricsGet over the two.
 * Metric IDs, structs and version words as NVIDIA's nvml.h 13.5.37 (PyPI nvidia-nvml-dev, nvidia/cu13/include/
 * nvml.h, lines 14884-15563) declares them; the same in Debian's 11.8 header except NVML_GPM_METRIC_MAX, which
 * sizes nvmlGpmMetricsGet_t.metrics: 98 in 11.8, 477 in 13.5.37. gpulet keeps 11.8's 98 (checked against the
 * official header): the version word is 1 in both and NVML reads only the first `numMetrics` entries, so the
 * smaller array is a valid prefix of the newer layout. nvml.h's enum and structs are anonymous; the tags here
 * are gpulet's (a tag does not change the ABI).
 * ------------------------------------------------------------------------------------------------- */

/** nvmlGpmMetric_t.metricId: the metrics gpulet reads (percent 0-100, or MiB/s for the _PER_SEC ones). */
typedef enum nvmlGpmMetricId_enum {
  NVML_GPM_METRIC_GRAPHICS_UTIL = 1,
  NVML_GPM_METRIC_SM_UTIL = 2,
  NVML_GPM_METRIC_SM_OCCUPANCY = 3,
  NVML_GPM_METRIC_ANY_TENSOR_UTIL = 5,
  NVML_GPM_METRIC_DRAM_BW_UTIL = 10,
  NVML_GPM_METRIC_FP64_UTIL = 11,
  NVML_GPM_METRIC_FP32_UTIL = 12,
  NVML_GPM_METRIC_FP16_UTIL = 13,
  NVML_GPM_METRIC_PCIE_TX_PER_SEC = 20,
  NVML_GPM_METRIC_PCIE_RX_PER_SEC = 21,
  NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC = 60,
  NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC = 61,
  NVML_GPM_METRIC_MAX = 98
} nvmlGpmMetricId_t;

/** One metric of nvmlGpmMetricsGet: set metricId; read nvmlReturn, then value when it is NVML_SUCCESS. */
typedef struct nvmlGpmMetric_st {
  unsigned int metricId;
  nvmlReturn_t nvmlReturn;
  double value;
  struct {
    char *shortName;
    char *longName;
    char *unit;
  } metricInfo;
} nvmlGpmMetric_t;

/** nvmlGpmMetricsGet: `version` must be NVML_GPM_METRICS_GET_VERSION; sample1 older than sample2. */
typedef struct nvmlGpmMetricsGet_st {
  unsigned int version;
  unsigned int numMetrics;
  nvmlGpmSample_t sample1;
  nvmlGpmSample_t sample2;
  nvmlGpmMetric_t metrics[NVML_GPM_METRIC_MAX];
} nvmlGpmMetricsGet_t;

#define NVML_GPM_METRICS_GET_VERSION 1

/** nvmlGpmQueryDeviceSupport: `version` must be NVML_GPM_SUPPORT_VERSION. */
typedef struct nvmlGpmSupport_st {
  unsigned int version;
  unsigned int isSupportedDevice;
} nvmlGpmSupport_t;

#define NVML_GPM_SUPPORT_VERSION 1

/* Event masks, clock-event reasons, field IDs, the function-pointer typedefs and the symbol table. */
#include "nvml_abi_calls.h"

#ifdef __cplusplus
}
#endif

#endif /* GPULET_NVML_ABI_H */
