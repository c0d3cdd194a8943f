// MIG management through a Library (no N-API; runs on libuv worker threads under the session mutex):
// MIG mode, GPU instance + compute instance creation at an exact placement with rollback, destruction.
// Every call used is in nvml.h 11.8 (NVML 11.0+); a missing symbol is reported as
// NVML_ERROR_FUNCTION_NOT_FOUND from that symbol. nvml.h: these calls "Require privileged user" (root or
// CAP_SYS_ADMIN); NVML answers NVML_ERROR_NO_PERMISSION otherwise.
#pragma once

#include <optional>
#include <vector>

#include "nvml_lib.h"
#include "nvml_read.h"

namespace gpulet {

// nvmlDeviceGetMigMode: current and pending mode (NVML_DEVICE_MIG_ENABLE = 1).
std::optional<Failure> MigModeOf(const Library& lib, nvmlDevice_t dev, unsigned int* current, unsigned int* pending);

// nvmlDeviceSetMigMode; `activation` receives activationStatus (NVML_ERROR_RESET_REQUIRED: pending until a GPU
// reset; NVML_ERROR_IN_USE: the GPU is not idle).
std::optional<Failure> SetMigModeOf(const Library& lib, nvmlDevice_t dev, bool enable, nvmlReturn_t* activation);

// What CreateMigDevice made: the new GPU instance's ID (nvmlGpuInstanceGetInfo).
struct MigCreated {
  unsigned int gpu_instance_id = 0;
  unsigned int compute_instance_profile_id = 0;
};

// nvmlDeviceCreateGpuInstanceWithPlacement(giProfileId, {start, size}), then the GI's full compute instance
// (the supported compute-instance profile with the most slices, nvmlGpuInstanceGetComputeInstanceProfileInfoV)
// with nvmlGpuInstanceCreateComputeInstance. If any step after the GI's creation fails, the GI is destroyed
// (nvmlGpuInstanceDestroy) before returning that step's failure; `rollback` is set when that destroy failed too.
std::optional<Failure> CreateMigDevice(const Library& lib, nvmlDevice_t dev, unsigned int gi_profile_id,
                                       unsigned int start, unsigned int size, MigCreated* out,
                                       std::optional<Failure>* rollback);

// One GPU instance as nvmlGpuInstanceGetInfo reports it: ID, GI profile ID and memory-slice placement.
struct GpuInstanceListed {
  unsigned int gpu_instance_id = 0;
  unsigned int gi_profile_id = 0;
  unsigned int start = 0;
  unsigned int size = 0;
};

// Every GPU instance of the GPU, with or without a compute instance: for each GI profile the GPU answers for
// (nvmlDeviceGetGpuInstanceProfileInfoV over indexes 0 .. GPULET_NVML_GPU_INSTANCE_PROFILE_SCAN-1; an index it
// answers NOT_SUPPORTED / INVALID_ARGUMENT for is skipped), nvmlDeviceGetGpuInstances with the profile's ID, then
// nvmlGpuInstanceGetInfo of each. The first other failure is returned (what was listed so far is in `out`).
std::optional<Failure> ListGpuInstances(const Library& lib, nvmlDevice_t dev, std::vector<GpuInstanceListed>* out);

// nvmlDeviceGetGpuInstanceById; then every compute instance of it (nvmlGpuInstanceGetComputeInstances over the
// compute-instance profiles, nvmlComputeInstanceDestroy) and the GI (nvmlGpuInstanceDestroy). `found` is false
// (and nothing is done) when the GI does not exist (NVML_ERROR_NOT_FOUND).
std::optional<Failure> DestroyMigDevice(const Library& lib, nvmlDevice_t dev, unsigned int gpu_instance_id, bool* found);

}  // namespace gpulet
