/*
 * The call-level half of gpulet's NVML declarations: event masks, clock-event reasons, field IDs, one
 * function-pointer typedef per dlsym()ed symbol, and the symbol table as an X-macro. Part of native/nvml_abi.h
 * (which includes this file after the types and structs); checked against NVIDIA's official nvml.h together with
 * it by test/native/nvml-abi.test.ts.
 */
#ifndef GPULET_NVML_ABI_CALLS_H
#define GPULET_NVML_ABI_CALLS_H

#include "nvml_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gpulet-abi-calls-begin */
/* ---------------------------------------------------------------------------------------------------
 * Event types (nvmlDeviceRegisterEvents / nvmlEventData_t.eventType)
 * ------------------------------------------------------------------------------------------------- */

#define nvmlEventTypeSingleBitEccError 0x0000000000000001LL
#define nvmlEventTypeDoubleBitEccError 0x0000000000000002LL
#define nvmlEventTypePState 0x0000000000000004LL
#define nvmlEventTypeXidCriticalError 0x0000000000000008LL
#define nvmlEventTypeClock 0x0000000000000010LL
#define nvmlEventTypePowerSourceChange 0x0000000000000080LL
#define nvmlEventMigConfigChange 0x0000000000000100LL
#define nvmlEventTypeGpuUnavailableError 0x0000000000004000LL /* @since 12.9 */
#define nvmlEventTypeNone 0x0000000000000000LL

/* ---------------------------------------------------------------------------------------------------
 * Clock event (formerly "throttle") reasons, bitmask of nvmlDeviceGetCurrentClocksEventReasons
 * ------------------------------------------------------------------------------------------------- */

#define nvmlClocksThrottleReasonGpuIdle 0x0000000000000001LL
#define nvmlClocksThrottleReasonApplicationsClocksSetting 0x0000000000000002LL
#define nvmlClocksThrottleReasonSwPowerCap 0x0000000000000004LL
#define nvmlClocksThrottleReasonHwSlowdown 0x0000000000000008LL
#define nvmlClocksThrottleReasonSyncBoost 0x0000000000000010LL
#define nvmlClocksThrottleReasonSwThermalSlowdown 0x0000000000000020LL
#define nvmlClocksThrottleReasonHwThermalSlowdown 0x0000000000000040LL
#define nvmlClocksThrottleReasonHwPowerBrakeSlowdown 0x0000000000000080LL
#define nvmlClocksThrottleReasonDisplayClockSetting 0x0000000000000100LL
#define nvmlClocksThrottleReasonNone 0x0000000000000000LL

/* Same bits under the names NVML 12.2+ uses (the ThrottleReason names became deprecated aliases). */
#define nvmlClocksEventReasonGpuIdle 0x0000000000000001LL /* @since 12.2 */
#define nvmlClocksEventReasonApplicationsClocksSetting 0x0000000000000002LL /* @since 12.2 */
#define nvmlClocksEventReasonSwPowerCap 0x0000000000000004LL /* @since 12.2 */
#define nvmlClocksEventReasonHwSlowdown 0x0000000000000008LL /* @since 12.2 */
#define nvmlClocksEventReasonSyncBoost 0x0000000000000010LL /* @since 12.2 */
#define nvmlClocksEventReasonSwThermalSlowdown 0x0000000000000020LL /* @since 12.2 */
#define nvmlClocksEventReasonHwThermalSlowdown 0x0000000000000040LL /* @since 12.2 */
#define nvmlClocksEventReasonHwPowerBrakeSlowdown 0x0000000000000080LL /* @since 12.2 */
#define nvmlClocksEventReasonDisplayClockSetting 0x0000000000000100LL /* @since 12.2 */
#define nvmlClocksEventReasonNone 0x0000000000000000LL /* @since 12.2 */

/* ---------------------------------------------------------------------------------------------------
 * Field IDs (nvmlFieldValue_t.fieldId)
 * ------------------------------------------------------------------------------------------------- */

#define NVML_FI_DEV_ECC_CURRENT 1
#define NVML_FI_DEV_ECC_PENDING 2
#define NVML_FI_DEV_ECC_SBE_VOL_TOTAL 3
#define NVML_FI_DEV_ECC_DBE_VOL_TOTAL 4
#define NVML_FI_DEV_ECC_SBE_AGG_TOTAL 5
#define NVML_FI_DEV_ECC_DBE_AGG_TOTAL 6
#define NVML_FI_DEV_RETIRED_SBE 29
#define NVML_FI_DEV_RETIRED_DBE 30
#define NVML_FI_DEV_RETIRED_PENDING 31
#define NVML_FI_DEV_MEMORY_TEMP 82
#define NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION 83
#define NVML_FI_DEV_PCIE_REPLAY_COUNTER 94
#define NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER 95
#define NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX 138
#define NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX 139
#define NVML_FI_DEV_REMAPPED_COR 142
#define NVML_FI_DEV_REMAPPED_UNC 143
#define NVML_FI_DEV_REMAPPED_PENDING 144
#define NVML_FI_DEV_REMAPPED_FAILURE 145

/* ---------------------------------------------------------------------------------------------------
 * Function-pointer typedefs: one per dlsym()ed symbol, `<symbol>_fn`.
 * ------------------------------------------------------------------------------------------------- */

typedef nvmlReturn_t (*nvmlInit_v2_fn)(void);
typedef nvmlReturn_t (*nvmlInit_fn)(void);
typedef nvmlReturn_t (*nvmlShutdown_fn)(void);
typedef const char *(*nvmlErrorString_fn)(nvmlReturn_t result);
typedef nvmlReturn_t (*nvmlSystemGetDriverVersion_fn)(char *version, unsigned int length);
typedef nvmlReturn_t (*nvmlSystemGetNVMLVersion_fn)(char *version, unsigned int length);
typedef nvmlReturn_t (*nvmlSystemGetCudaDriverVersion_v2_fn)(int *cudaDriverVersion);
typedef nvmlReturn_t (*nvmlSystemGetCudaDriverVersion_fn)(int *cudaDriverVersion);
typedef nvmlReturn_t (*nvmlDeviceGetCount_v2_fn)(unsigned int *deviceCount);
typedef nvmlReturn_t (*nvmlDeviceGetCount_fn)(unsigned int *deviceCount);
typedef nvmlReturn_t (*nvmlDeviceGetHandleByIndex_v2_fn)(unsigned int index, nvmlDevice_t *device);
typedef nvmlReturn_t (*nvmlDeviceGetHandleByIndex_fn)(unsigned int index, nvmlDevice_t *device);
typedef nvmlReturn_t (*nvmlDeviceGetName_fn)(nvmlDevice_t device, char *name, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetUUID_fn)(nvmlDevice_t device, char *uuid, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetSerial_fn)(nvmlDevice_t device, char *serial, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetMinorNumber_fn)(nvmlDevice_t device, unsigned int *minorNumber);
typedef nvmlReturn_t (*nvmlDeviceGetVbiosVersion_fn)(nvmlDevice_t device, char *version, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetAddressingMode_fn)(nvmlDevice_t device, nvmlDeviceAddressingMode_v1_t *mode); /* @since >11.8 @with nvmlDeviceAddressingMode_v1 */
typedef nvmlReturn_t (*nvmlDeviceGetBrand_fn)(nvmlDevice_t device, nvmlBrandType_t *type);
typedef nvmlReturn_t (*nvmlDeviceGetArchitecture_fn)(nvmlDevice_t device, nvmlDeviceArchitecture_t *arch);
typedef nvmlReturn_t (*nvmlDeviceGetCudaComputeCapability_fn)(nvmlDevice_t device, int *major, int *minor);
typedef nvmlReturn_t (*nvmlDeviceGetPciInfo_v3_fn)(nvmlDevice_t device, nvmlPciInfo_t *pci);
typedef nvmlReturn_t (*nvmlDeviceGetPciInfo_v2_fn)(nvmlDevice_t device, nvmlPciInfo_t *pci);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_v2_fn)(nvmlDevice_t device, nvmlMemory_v2_t *memory);
typedef nvmlReturn_t (*nvmlDeviceGetMemoryInfo_fn)(nvmlDevice_t device, nvmlMemory_t *memory);
typedef nvmlReturn_t (*nvmlDeviceGetEnforcedPowerLimit_fn)(nvmlDevice_t device, unsigned int *limit);
typedef nvmlReturn_t (*nvmlDeviceGetAttributes_v2_fn)(nvmlDevice_t device, nvmlDeviceAttributes_t *attributes);
typedef nvmlReturn_t (*nvmlDeviceGetAttributes_fn)(nvmlDevice_t device, nvmlDeviceAttributes_t *attributes);
typedef nvmlReturn_t (*nvmlDeviceGetUtilizationRates_fn)(nvmlDevice_t device, nvmlUtilization_t *utilization);
typedef nvmlReturn_t (*nvmlDeviceGetEncoderUtilization_fn)(nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs);
typedef nvmlReturn_t (*nvmlDeviceGetDecoderUtilization_fn)(nvmlDevice_t device, unsigned int *utilization, unsigned int *samplingPeriodUs);
typedef nvmlReturn_t (*nvmlDeviceGetTemperature_fn)(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType, unsigned int *temp);
typedef nvmlReturn_t (*nvmlDeviceGetPowerUsage_fn)(nvmlDevice_t device, unsigned int *power);
typedef nvmlReturn_t (*nvmlDeviceGetTotalEnergyConsumption_fn)(nvmlDevice_t device, unsigned long long *energy);
typedef nvmlReturn_t (*nvmlDeviceGetClockInfo_fn)(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock);
typedef nvmlReturn_t (*nvmlDeviceGetCurrentClocksEventReasons_fn)(nvmlDevice_t device, unsigned long long *clocksEventReasons); /* @since 12.2 @same-as nvmlDeviceGetCurrentClocksThrottleReasons */
typedef nvmlReturn_t (*nvmlDeviceGetCurrentClocksThrottleReasons_fn)(nvmlDevice_t device, unsigned long long *clocksThrottleReasons);
typedef nvmlReturn_t (*nvmlDeviceGetTotalEccErrors_fn)(nvmlDevice_t device, nvmlMemoryErrorType_t errorType, nvmlEccCounterType_t counterType, unsigned long long *eccCounts);
typedef nvmlReturn_t (*nvmlDeviceGetRemappedRows_fn)(nvmlDevice_t device, unsigned int *corrRows, unsigned int *uncRows, unsigned int *isPending, unsigned int *failureOccurred);
typedef nvmlReturn_t (*nvmlDeviceGetPcieReplayCounter_fn)(nvmlDevice_t device, unsigned int *value);
typedef nvmlReturn_t (*nvmlDeviceGetPcieThroughput_fn)(nvmlDevice_t device, nvmlPcieUtilCounter_t counter, unsigned int *value);
typedef nvmlReturn_t (*nvmlDeviceGetFieldValues_fn)(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t *values);
typedef nvmlReturn_t (*nvmlDeviceGetMigMode_fn)(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode);
typedef nvmlReturn_t (*nvmlDeviceGetMaxMigDeviceCount_fn)(nvmlDevice_t device, unsigned int *count);
typedef nvmlReturn_t (*nvmlDeviceGetMigDeviceHandleByIndex_fn)(nvmlDevice_t device, unsigned int index, nvmlDevice_t *migDevice);
typedef nvmlReturn_t (*nvmlDeviceGetDeviceHandleFromMigDeviceHandle_fn)(nvmlDevice_t migDevice, nvmlDevice_t *device);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceId_fn)(nvmlDevice_t device, unsigned int *id);
typedef nvmlReturn_t (*nvmlDeviceGetComputeInstanceId_fn)(nvmlDevice_t device, unsigned int *id);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstances_fn)(nvmlDevice_t device, unsigned int profileId, nvmlGpuInstance_t *gpuInstances, unsigned int *count);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceById_fn)(nvmlDevice_t device, unsigned int id, nvmlGpuInstance_t *gpuInstance);
typedef nvmlReturn_t (*nvmlGpuInstanceGetInfo_fn)(nvmlGpuInstance_t gpuInstance, nvmlGpuInstanceInfo_t *info);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceProfileInfoV_fn)(nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_v2_t *info);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstanceProfileInfo_fn)(nvmlDevice_t device, unsigned int profile, nvmlGpuInstanceProfileInfo_t *info);
typedef nvmlReturn_t (*nvmlDeviceSetMigMode_fn)(nvmlDevice_t device, unsigned int mode, nvmlReturn_t *activationStatus);
typedef nvmlReturn_t (*nvmlDeviceGetGpuInstancePossiblePlacements_v2_fn)(nvmlDevice_t device, unsigned int profileId, nvmlGpuInstancePlacement_t *placements, unsigned int *count);
typedef nvmlReturn_t (*nvmlDeviceCreateGpuInstanceWithPlacement_fn)(nvmlDevice_t device, unsigned int profileId, const nvmlGpuInstancePlacement_t *placement, nvmlGpuInstance_t *gpuInstance);
typedef nvmlReturn_t (*nvmlGpuInstanceDestroy_fn)(nvmlGpuInstance_t gpuInstance);
typedef nvmlReturn_t (*nvmlGpuInstanceGetComputeInstanceProfileInfoV_fn)(nvmlGpuInstance_t gpuInstance, unsigned int profile, unsigned int engProfile, nvmlComputeInstanceProfileInfo_v2_t *info);
typedef nvmlReturn_t (*nvmlGpuInstanceCreateComputeInstance_fn)(nvmlGpuInstance_t gpuInstance, unsigned int profileId, nvmlComputeInstance_t *computeInstance);
typedef nvmlReturn_t (*nvmlGpuInstanceGetComputeInstances_fn)(nvmlGpuInstance_t gpuInstance, unsigned int profileId, nvmlComputeInstance_t *computeInstances, unsigned int *count);
typedef nvmlReturn_t (*nvmlComputeInstanceDestroy_fn)(nvmlComputeInstance_t computeInstance);
typedef nvmlReturn_t (*nvmlDeviceGetSupportedEventTypes_fn)(nvmlDevice_t device, unsigned long long *eventTypes);
typedef nvmlReturn_t (*nvmlEventSetCreate_fn)(nvmlEventSet_t *set);
typedef nvmlReturn_t (*nvmlDeviceRegisterEvents_fn)(nvmlDevice_t device, unsigned long long eventTypes, nvmlEventSet_t set);
typedef nvmlReturn_t (*nvmlEventSetWait_v2_fn)(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms);
typedef nvmlReturn_t (*nvmlEventSetWait_fn)(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms);
typedef nvmlReturn_t (*nvmlEventSetFree_fn)(nvmlEventSet_t set);
typedef nvmlReturn_t (*nvmlGpmQueryDeviceSupport_fn)(nvmlDevice_t device, nvmlGpmSupport_t *gpmSupport);
typedef nvmlReturn_t (*nvmlGpmSampleAlloc_fn)(nvmlGpmSample_t *gpmSample);
typedef nvmlReturn_t (*nvmlGpmSampleFree_fn)(nvmlGpmSample_t gpmSample);
typedef nvmlReturn_t (*nvmlGpmSampleGet_fn)(nvmlDevice_t device, nvmlGpmSample_t gpmSample);
typedef nvmlReturn_t (*nvmlGpmMigSampleGet_fn)(nvmlDevice_t device, unsigned int gpuInstanceId, nvmlGpmSample_t gpmSample); /* @since 12.0 @with GPULET_REFERENCE_NVML_GPM_MIG_SAMPLE_GET */
typedef nvmlReturn_t (*nvmlGpmMetricsGet_fn)(nvmlGpmMetricsGet_t *metricsGet);

/* ---------------------------------------------------------------------------------------------------
 * The symbol table gpulet resolves, as an X-macro: X(preferred, fallback).
 * `fallback` is the unversioned/older symbol tried when `preferred` is missing (same token when there is
 * none). Every pair has the same C signature EXCEPT nvmlDeviceGetMemoryInfo_v2 → nvmlDeviceGetMemoryInfo
 * (nvmlMemory_v2_t vs nvmlMemory_t) and nvmlDeviceGetGpuInstanceProfileInfoV →
 * nvmlDeviceGetGpuInstanceProfileInfo (v2 vs v1 struct): callers must keep the two pointers apart.
 * nvmlDeviceGetCurrentClocksEventReasons (NVML 12.2+) falls back to the same-signature ThrottleReasons name.
 * The MIG management calls (nvmlDeviceSetMigMode .. nvmlComputeInstanceDestroy, NVML 11.0+) have no fallback:
 * where one is missing, `GpuBackend.mig` rejects with NOT_SUPPORTED naming it. The unversioned
 * nvmlDeviceGetGpuInstancePossiblePlacements (R450) is not used: nvml.h maps the name to _v2.
 * nvmlDeviceGetAddressingMode is newer than Debian's 535 library and has no fallback: where it is missing the
 * reading is absent (resolved optionally, like every symbol not in nvml_lib.cc's required list).
 * The GPM calls (nvmlGpm*, NVML 11.8+; nvmlGpmMigSampleGet 12.0+) have no fallback either: where one is missing,
 * the GPM metrics of the devices it serves are absent.
 * ------------------------------------------------------------------------------------------------- */

#define GPULET_NVML_FUNCTIONS(X) \
  X(nvmlInit_v2, nvmlInit) \
  X(nvmlShutdown, nvmlShutdown) \
  X(nvmlErrorString, nvmlErrorString) \
  X(nvmlSystemGetDriverVersion, nvmlSystemGetDriverVersion) \
  X(nvmlSystemGetNVMLVersion, nvmlSystemGetNVMLVersion) \
  X(nvmlSystemGetCudaDriverVersion_v2, nvmlSystemGetCudaDriverVersion) \
  X(nvmlDeviceGetCount_v2, nvmlDeviceGetCount) \
  X(nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetHandleByIndex) \
  X(nvmlDeviceGetName, nvmlDeviceGetName) \
  X(nvmlDeviceGetUUID, nvmlDeviceGetUUID) \
  X(nvmlDeviceGetSerial, nvmlDeviceGetSerial) \
  X(nvmlDeviceGetMinorNumber, nvmlDeviceGetMinorNumber) \
  X(nvmlDeviceGetVbiosVersion, nvmlDeviceGetVbiosVersion) \
  X(nvmlDeviceGetAddressingMode, nvmlDeviceGetAddressingMode) \
  X(nvmlDeviceGetBrand, nvmlDeviceGetBrand) \
  X(nvmlDeviceGetArchitecture, nvmlDeviceGetArchitecture) \
  X(nvmlDeviceGetCudaComputeCapability, nvmlDeviceGetCudaComputeCapability) \
  X(nvmlDeviceGetPciInfo_v3, nvmlDeviceGetPciInfo_v2) \
  X(nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetMemoryInfo) \
  X(nvmlDeviceGetEnforcedPowerLimit, nvmlDeviceGetEnforcedPowerLimit) \
  X(nvmlDeviceGetAttributes_v2, nvmlDeviceGetAttributes) \
  X(nvmlDeviceGetUtilizationRates, nvmlDeviceGetUtilizationRates) \
  X(nvmlDeviceGetEncoderUtilization, nvmlDeviceGetEncoderUtilization) \
  X(nvmlDeviceGetDecoderUtilization, nvmlDeviceGetDecoderUtilization) \
  X(nvmlDeviceGetTemperature, nvmlDeviceGetTemperature) \
  X(nvmlDeviceGetPowerUsage, nvmlDeviceGetPowerUsage) \
  X(nvmlDeviceGetTotalEnergyConsumption, nvmlDeviceGetTotalEnergyConsumption) \
  X(nvmlDeviceGetClockInfo, nvmlDeviceGetClockInfo) \
  X(nvmlDeviceGetCurrentClocksEventReasons, nvmlDeviceGetCurrentClocksThrottleReasons) \
  X(nvmlDeviceGetTotalEccErrors, nvmlDeviceGetTotalEccErrors) \
  X(nvmlDeviceGetRemappedRows, nvmlDeviceGetRemappedRows) \
  X(nvmlDeviceGetPcieReplayCounter, nvmlDeviceGetPcieReplayCounter) \
  X(nvmlDeviceGetPcieThroughput, nvmlDeviceGetPcieThroughput) \
  X(nvmlDeviceGetFieldValues, nvmlDeviceGetFieldValues) \
  X(nvmlDeviceGetMigMode, nvmlDeviceGetMigMode) \
  X(nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMaxMigDeviceCount) \
  X(nvmlDeviceGetMigDeviceHandleByIndex, nvmlDeviceGetMigDeviceHandleByIndex) \
  X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, nvmlDeviceGetDeviceHandleFromMigDeviceHandle) \
  X(nvmlDeviceGetGpuInstanceId, nvmlDeviceGetGpuInstanceId) \
  X(nvmlDeviceGetComputeInstanceId, nvmlDeviceGetComputeInstanceId) \
  X(nvmlDeviceGetGpuInstanceById, nvmlDeviceGetGpuInstanceById) \
  X(nvmlDeviceGetGpuInstances, nvmlDeviceGetGpuInstances) \
  X(nvmlGpuInstanceGetInfo, nvmlGpuInstanceGetInfo) \
  X(nvmlDeviceGetGpuInstanceProfileInfoV, nvmlDeviceGetGpuInstanceProfileInfo) \
  X(nvmlDeviceSetMigMode, nvmlDeviceSetMigMode) \
  X(nvmlDeviceGetGpuInstancePossiblePlacements_v2, nvmlDeviceGetGpuInstancePossiblePlacements_v2) \
  X(nvmlDeviceCreateGpuInstanceWithPlacement, nvmlDeviceCreateGpuInstanceWithPlacement) \
  X(nvmlGpuInstanceDestroy, nvmlGpuInstanceDestroy) \
  X(nvmlGpuInstanceGetComputeInstanceProfileInfoV, nvmlGpuInstanceGetComputeInstanceProfileInfoV) \
  X(nvmlGpuInstanceCreateComputeInstance, nvmlGpuInstanceCreateComputeInstance) \
  X(nvmlGpuInstanceGetComputeInstances, nvmlGpuInstanceGetComputeInstances) \
  X(nvmlComputeInstanceDestroy, nvmlComputeInstanceDestroy) \
  X(nvmlDeviceGetSupportedEventTypes, nvmlDeviceGetSupportedEventTypes) \
  X(nvmlEventSetCreate, nvmlEventSetCreate) \
  X(nvmlDeviceRegisterEvents, nvmlDeviceRegisterEvents) \
  X(nvmlEventSetWait_v2, nvmlEventSetWait) \
  X(nvmlEventSetFree, nvmlEventSetFree) \
  X(nvmlGpmQueryDeviceSupport, nvmlGpmQueryDeviceSupport) \
  X(nvmlGpmSampleAlloc, nvmlGpmSampleAlloc) \
  X(nvmlGpmSampleFree, nvmlGpmSampleFree) \
  X(nvmlGpmSampleGet, nvmlGpmSampleGet) \
  X(nvmlGpmMigSampleGet, nvmlGpmMigSampleGet) \
  X(nvmlGpmMetricsGet, nvmlGpmMetricsGet)
/* gpulet-abi-calls-end */

#ifdef __cplusplus
}
#endif

#endif /* GPULET_NVML_ABI_CALLS_H */
