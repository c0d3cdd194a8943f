#include "nvml_mig.h"

#include <cstring>

namespace gpulet {

namespace {

// Failure of a missing symbol: NVML_ERROR_FUNCTION_NOT_FOUND from that function.
#define GPULET_REQUIRE(sym)                                                          \
  if (lib.sym == nullptr) return Failure{NVML_ERROR_FUNCTION_NOT_FOUND, #sym};

// An NVML call's failure, or nothing.
std::optional<Failure> Check(nvmlReturn_t r, const char* fn) {
  if (r == NVML_SUCCESS) return std::nullopt;
  return Failure{r, fn};
}

// Compute-instance profile info of index `idx`: false when this GI does not support the index.
bool CiProfile(const Library& lib, nvmlGpuInstance_t gi, unsigned int idx, nvmlComputeInstanceProfileInfo_v2_t* info,
               std::optional<Failure>* failure) {
  std::memset(info, 0, sizeof *info);
  info->version = nvmlComputeInstanceProfileInfo_v2;
  const nvmlReturn_t r =
      lib.nvmlGpuInstanceGetComputeInstanceProfileInfoV(gi, idx, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, info);
  if (r == NVML_SUCCESS) return true;
  // NOT_SUPPORTED / INVALID_ARGUMENT: this profile index does not exist on this GI.
  if (r != NVML_ERROR_NOT_SUPPORTED && r != NVML_ERROR_INVALID_ARGUMENT) {
    *failure = Failure{r, "nvmlGpuInstanceGetComputeInstanceProfileInfoV"};
  }
  return false;
}

// The GI's full compute-instance profile: the supported one with the most slices.
std::optional<Failure> FullCiProfile(const Library& lib, nvmlGpuInstance_t gi, unsigned int* profile_id) {
  bool found = false;
  unsigned int best = 0;
  for (unsigned int idx = 0; idx < GPULET_NVML_COMPUTE_INSTANCE_PROFILE_SCAN; idx++) {
    nvmlComputeInstanceProfileInfo_v2_t info;
    std::optional<Failure> failure;
    if (CiProfile(lib, gi, idx, &info, &failure)) {
      if (!found || info.sliceCount > best) {
        best = info.sliceCount;
        *profile_id = info.id;
        found = true;
      }
    } else if (failure) {
      return failure;
    }
  }
  if (!found) return Failure{NVML_ERROR_NOT_SUPPORTED, "nvmlGpuInstanceGetComputeInstanceProfileInfoV"};
  return std::nullopt;
}

}  // namespace

std::optional<Failure> MigModeOf(const Library& lib, nvmlDevice_t dev, unsigned int* current, unsigned int* pending) {
  GPULET_REQUIRE(nvmlDeviceGetMigMode)
  return Check(lib.nvmlDeviceGetMigMode(dev, current, pending), "nvmlDeviceGetMigMode");
}

std::optional<Failure> SetMigModeOf(const Library& lib, nvmlDevice_t dev, bool enable, nvmlReturn_t* activation) {
  GPULET_REQUIRE(nvmlDeviceSetMigMode)
  *activation = NVML_SUCCESS;
  return Check(lib.nvmlDeviceSetMigMode(dev, enable ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE, activation),
               "nvmlDeviceSetMigMode");
}

std::optional<Failure> CreateMigDevice(const Library& lib, nvmlDevice_t dev, unsigned int gi_profile_id,
                                       unsigned int start, unsigned int size, MigCreated* out,
                                       std::optional<Failure>* rollback) {
  GPULET_REQUIRE(nvmlDeviceCreateGpuInstanceWithPlacement)
  GPULET_REQUIRE(nvmlGpuInstanceGetInfo)
  GPULET_REQUIRE(nvmlGpuInstanceGetComputeInstanceProfileInfoV)
  GPULET_REQUIRE(nvmlGpuInstanceCreateComputeInstance)
  GPULET_REQUIRE(nvmlGpuInstanceDestroy)
  nvmlGpuInstancePlacement_t placement;
  placement.start = start;
  placement.size = size;
  nvmlGpuInstance_t gi = nullptr;
  std::optional<Failure> f = Check(lib.nvmlDeviceCreateGpuInstanceWithPlacement(dev, gi_profile_id, &placement, &gi),
                                   "nvmlDeviceCreateGpuInstanceWithPlacement");
  if (f) return f;
  nvmlGpuInstanceInfo_t info;
  std::memset(&info, 0, sizeof info);
  f = Check(lib.nvmlGpuInstanceGetInfo(gi, &info), "nvmlGpuInstanceGetInfo");
  if (!f) {
    out->gpu_instance_id = info.id;
    f = FullCiProfile(lib, gi, &out->compute_instance_profile_id);
  }
  if (!f) {
    nvmlComputeInstance_t ci = nullptr;
    f = Check(lib.nvmlGpuInstanceCreateComputeInstance(gi, out->compute_instance_profile_id, &ci),
              "nvmlGpuInstanceCreateComputeInstance");
  }
  if (f) *rollback = Check(lib.nvmlGpuInstanceDestroy(gi), "nvmlGpuInstanceDestroy");  // no half-made state
  return f;
}

std::optional<Failure> ListGpuInstances(const Library& lib, nvmlDevice_t dev, std::vector<GpuInstanceListed>* out) {
  if (lib.nvmlDeviceGetGpuInstanceProfileInfoV == nullptr && lib.gi_profile_info_v1 == nullptr) {
    return Failure{NVML_ERROR_FUNCTION_NOT_FOUND, "nvmlDeviceGetGpuInstanceProfileInfoV"};
  }
  GPULET_REQUIRE(nvmlDeviceGetGpuInstances)
  GPULET_REQUIRE(nvmlGpuInstanceGetInfo)
  for (unsigned int idx = 0; idx < GPULET_NVML_GPU_INSTANCE_PROFILE_SCAN; idx++) {
    unsigned int profile_id = 0;
    nvmlReturn_t r;
    if (lib.nvmlDeviceGetGpuInstanceProfileInfoV != nullptr) {
      nvmlGpuInstanceProfileInfo_v2_t profile;
      std::memset(&profile, 0, sizeof profile);
      profile.version = nvmlGpuInstanceProfileInfo_v2;
      r = lib.nvmlDeviceGetGpuInstanceProfileInfoV(dev, idx, &profile);
      profile_id = profile.id;
    } else {  // the v1 call (R450): same ID field, older struct
      nvmlGpuInstanceProfileInfo_t profile;
      std::memset(&profile, 0, sizeof profile);
      r = lib.gi_profile_info_v1(dev, idx, &profile);
      profile_id = profile.id;
    }
    // NOT_SUPPORTED / INVALID_ARGUMENT: this profile index does not exist on this GPU.
    if (r == NVML_ERROR_NOT_SUPPORTED || r == NVML_ERROR_INVALID_ARGUMENT) continue;
    if (r != NVML_SUCCESS) return Failure{r, "nvmlDeviceGetGpuInstanceProfileInfoV"};
    nvmlGpuInstance_t gis[GPULET_NVML_MAX_GPU_INSTANCES];
    unsigned int count = 0;
    std::optional<Failure> f =
        Check(lib.nvmlDeviceGetGpuInstances(dev, profile_id, gis, &count), "nvmlDeviceGetGpuInstances");
    if (f) return f;
    if (count > GPULET_NVML_MAX_GPU_INSTANCES) count = GPULET_NVML_MAX_GPU_INSTANCES;
    for (unsigned int i = 0; i < count; i++) {
      nvmlGpuInstanceInfo_t info;
      std::memset(&info, 0, sizeof info);
      f = Check(lib.nvmlGpuInstanceGetInfo(gis[i], &info), "nvmlGpuInstanceGetInfo");
      if (f) return f;
      out->push_back(GpuInstanceListed{info.id, info.profileId, info.placement.start, info.placement.size});
    }
  }
  return std::nullopt;
}

std::optional<Failure> DestroyMigDevice(const Library& lib, nvmlDevice_t dev, unsigned int gpu_instance_id, bool* found) {
  GPULET_REQUIRE(nvmlDeviceGetGpuInstanceById)
  GPULET_REQUIRE(nvmlGpuInstanceGetComputeInstanceProfileInfoV)
  GPULET_REQUIRE(nvmlGpuInstanceGetComputeInstances)
  GPULET_REQUIRE(nvmlComputeInstanceDestroy)
  GPULET_REQUIRE(nvmlGpuInstanceDestroy)
  *found = false;
  nvmlGpuInstance_t gi = nullptr;
  const nvmlReturn_t r = lib.nvmlDeviceGetGpuInstanceById(dev, gpu_instance_id, &gi);
  if (r == NVML_ERROR_NOT_FOUND) return std::nullopt;
  if (r != NVML_SUCCESS) return Failure{r, "nvmlDeviceGetGpuInstanceById"};
  *found = true;
  for (unsigned int idx = 0; idx < GPULET_NVML_COMPUTE_INSTANCE_PROFILE_SCAN; idx++) {
    nvmlComputeInstanceProfileInfo_v2_t info;
    std::optional<Failure> failure;
    if (!CiProfile(lib, gi, idx, &info, &failure)) {
      if (failure) return failure;
      continue;
    }
    nvmlComputeInstance_t cis[GPULET_NVML_MAX_COMPUTE_INSTANCES];
    unsigned int count = 0;
    std::optional<Failure> f =
        Check(lib.nvmlGpuInstanceGetComputeInstances(gi, info.id, cis, &count), "nvmlGpuInstanceGetComputeInstances");
    if (f) return f;
    if (count > GPULET_NVML_MAX_COMPUTE_INSTANCES) count = GPULET_NVML_MAX_COMPUTE_INSTANCES;
    for (unsigned int i = 0; i < count; i++) {
      f = Check(lib.nvmlComputeInstanceDestroy(cis[i]), "nvmlComputeInstanceDestroy");
      if (f) return f;
    }
  }
  return Check(lib.nvmlGpuInstanceDestroy(gi), "nvmlGpuInstanceDestroy");
}

#undef GPULET_REQUIRE

}  // namespace gpulet
