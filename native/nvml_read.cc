#include "nvml_read.h"

#include "nvml_calls.h"

#include <algorithm>
#include <cstring>

namespace gpulet {

namespace {

std::string CString(const char* buf, size_t size) { return std::string(buf, strnlen(buf, size)); }

void ReadSystem(const Library& lib, SystemFacts* s) {
  char buf[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  nvmlReturn_t r;
  if (lib.nvmlSystemGetDriverVersion != nullptr) {
    r = lib.nvmlSystemGetDriverVersion(buf, sizeof buf);
    if (r == NVML_SUCCESS) s->driver_version = CString(buf, sizeof buf);
    else if (r != NVML_ERROR_NOT_SUPPORTED) s->errors.push_back({r, "nvmlSystemGetDriverVersion"});
  }
  if (lib.nvmlSystemGetNVMLVersion != nullptr) {
    char nv[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
    r = lib.nvmlSystemGetNVMLVersion(nv, sizeof nv);
    if (r == NVML_SUCCESS) s->nvml_version = CString(nv, sizeof nv);
    else if (r != NVML_ERROR_NOT_SUPPORTED) s->errors.push_back({r, "nvmlSystemGetNVMLVersion"});
  }
  if (lib.nvmlSystemGetCudaDriverVersion_v2 != nullptr) {
    int v = 0;
    r = lib.nvmlSystemGetCudaDriverVersion_v2(&v);
    if (r == NVML_SUCCESS) s->cuda_driver_version = v;
    else if (r != NVML_ERROR_NOT_SUPPORTED) s->errors.push_back({r, "nvmlSystemGetCudaDriverVersion_v2"});
  }
}

// The fields nvmlGpuInstanceProfileInfo_t and its _v2 share (v2 adds `version` and `name`).
template <typename Info>
void CopyProfileCounts(const Info& info, GiProfileFacts* p) {
  p->id = info.id;
  p->slice_count = info.sliceCount;
  p->instance_count = info.instanceCount;
  p->multiprocessor_count = info.multiprocessorCount;
  p->copy_engine_count = info.copyEngineCount;
  p->decoder_count = info.decoderCount;
  p->encoder_count = info.encoderCount;
  p->jpeg_count = info.jpegCount;
  p->ofa_count = info.ofaCount;
  p->memory_size_mb = info.memorySizeMB;
}

// Possible placements of profile `p` (nvmlDeviceGetGpuInstancePossiblePlacements_v2); left empty on failure.
void ReadPlacements(const Library& lib, nvmlDevice_t dev, GiProfileFacts* p) {
  if (lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2 == nullptr) return;
  nvmlGpuInstancePlacement_t buf[GPULET_NVML_MAX_PLACEMENTS];
  std::memset(buf, 0, sizeof buf);
  unsigned int count = 0;
  // First the count (placements NULL), then the list, as nvml.h documents; more than the buffer is a failure.
  if (lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2(dev, p->id, nullptr, &count) != NVML_SUCCESS) return;
  if (count > GPULET_NVML_MAX_PLACEMENTS) return;
  unsigned int got = count;
  if (lib.nvmlDeviceGetGpuInstancePossiblePlacements_v2(dev, p->id, buf, &got) != NVML_SUCCESS) return;
  if (got > count) return;
  p->placements.assign(buf, buf + got);
}

// Every GPU-instance profile the GPU answers for (indexes 0 .. SCAN-1); unsupported indexes are skipped.
std::vector<GiProfileFacts> ReadProfiles(const Library& lib, nvmlDevice_t dev, const Calls& call) {
  std::vector<GiProfileFacts> out;
  for (unsigned int idx = 0; idx < GPULET_NVML_GPU_INSTANCE_PROFILE_SCAN; idx++) {
    GiProfileFacts p;
    p.index = idx;
    nvmlReturn_t r;
    if (lib.nvmlDeviceGetGpuInstanceProfileInfoV != nullptr) {
      nvmlGpuInstanceProfileInfo_v2_t info;
      std::memset(&info, 0, sizeof info);
      info.version = nvmlGpuInstanceProfileInfo_v2;
      r = lib.nvmlDeviceGetGpuInstanceProfileInfoV(dev, idx, &info);
      if (r == NVML_SUCCESS) {
        CopyProfileCounts(info, &p);
        p.name = CString(info.name, sizeof info.name);
      }
    } else if (lib.gi_profile_info_v1 != nullptr) {
      nvmlGpuInstanceProfileInfo_t info;
      std::memset(&info, 0, sizeof info);
      r = lib.gi_profile_info_v1(dev, idx, &info);
      if (r == NVML_SUCCESS) CopyProfileCounts(info, &p);
    } else {
      return out;
    }
    if (r == NVML_SUCCESS) {
      ReadPlacements(lib, dev, &p);
      out.push_back(p);
    } else if (r == NVML_ERROR_GPU_IS_LOST) {
      call(r, "nvmlDeviceGetGpuInstanceProfileInfoV");
      return out;
    }
    // NOT_SUPPORTED / INVALID_ARGUMENT: this profile index does not exist on this GPU.
  }
  return out;
}

void ReadMig(const Library& lib, nvmlDevice_t parent, unsigned int j, nvmlDevice_t mig,
             const std::vector<GiProfileFacts>& profiles, MigFacts* m) {
  Calls call{&m->errors, &m->error};
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  m->index = j;
  nvmlReturn_t r = lib.nvmlDeviceGetUUID(mig, uuid, sizeof uuid);
  if (r != NVML_SUCCESS) {
    m->error = Failure{r, "nvmlDeviceGetUUID"};
    return;
  }
  m->uuid = CString(uuid, sizeof uuid);
  unsigned int v = 0;
  if (lib.nvmlDeviceGetGpuInstanceId != nullptr && call(lib.nvmlDeviceGetGpuInstanceId(mig, &v), "nvmlDeviceGetGpuInstanceId")) {
    m->gpu_instance_id = v;
  }
  if (m->error) return;
  if (lib.nvmlDeviceGetComputeInstanceId != nullptr &&
      call(lib.nvmlDeviceGetComputeInstanceId(mig, &v), "nvmlDeviceGetComputeInstanceId")) {
    m->compute_instance_id = v;
  }
  if (m->error || !m->gpu_instance_id) return;
  if (lib.nvmlDeviceGetGpuInstanceById == nullptr || lib.nvmlGpuInstanceGetInfo == nullptr) return;
  nvmlGpuInstance_t gi = nullptr;
  if (!call(lib.nvmlDeviceGetGpuInstanceById(parent, *m->gpu_instance_id, &gi), "nvmlDeviceGetGpuInstanceById")) return;
  nvmlGpuInstanceInfo_t info;
  std::memset(&info, 0, sizeof info);
  if (!call(lib.nvmlGpuInstanceGetInfo(gi, &info), "nvmlGpuInstanceGetInfo")) return;
  m->profile_id = info.profileId;
  m->placement_start = info.placement.start;
  m->placement_size = info.placement.size;
  for (const auto& p : profiles) {
    if (p.id == info.profileId) {
      m->profile = p;
      break;
    }
  }
}

void ReadGpu(const Library& lib, unsigned int i, GpuFacts* g, GpuHandles* h) {
  Calls call{&g->errors, &g->error};
  g->index = i;
  nvmlDevice_t dev = nullptr;
  nvmlReturn_t r = lib.nvmlDeviceGetHandleByIndex_v2(i, &dev);
  if (r != NVML_SUCCESS) {
    g->error = Failure{r, "nvmlDeviceGetHandleByIndex_v2"};
    return;
  }
  h->gpu = dev;
  char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  r = lib.nvmlDeviceGetUUID(dev, buf, sizeof buf);
  if (r != NVML_SUCCESS) {
    g->error = Failure{r, "nvmlDeviceGetUUID"};
    return;
  }
  g->uuid = CString(buf, sizeof buf);
#define GPULET_STEP(cond) \
  if (g->error) return;   \
  if (cond)
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
  GPULET_STEP(lib.nvmlDeviceGetName != nullptr && call(lib.nvmlDeviceGetName(dev, name, sizeof name), "nvmlDeviceGetName")) {
    g->name = CString(name, sizeof name);
  }
  char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE];
  GPULET_STEP(lib.nvmlDeviceGetSerial != nullptr && call(lib.nvmlDeviceGetSerial(dev, serial, sizeof serial), "nvmlDeviceGetSerial")) {
    g->serial = CString(serial, sizeof serial);
  }
  char vbios[NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE];
  GPULET_STEP(lib.nvmlDeviceGetVbiosVersion != nullptr &&
              call(lib.nvmlDeviceGetVbiosVersion(dev, vbios, sizeof vbios), "nvmlDeviceGetVbiosVersion")) {
    g->vbios_version = CString(vbios, sizeof vbios);
  }
  // Optional symbol (NVML newer than 11.8): resolved at Open() when present, so older drivers still work.
  nvmlDeviceAddressingMode_v1_t mode;
  std::memset(&mode, 0, sizeof mode);
  mode.version = nvmlDeviceAddressingMode_v1;
  GPULET_STEP(lib.nvmlDeviceGetAddressingMode != nullptr &&
              call(lib.nvmlDeviceGetAddressingMode(dev, &mode), "nvmlDeviceGetAddressingMode")) {
    g->addressing_mode = mode.value;
  }
  unsigned int u = 0;
  GPULET_STEP(call(lib.nvmlDeviceGetMinorNumber(dev, &u), "nvmlDeviceGetMinorNumber")) g->minor = u;
  nvmlBrandType_t brand = NVML_BRAND_UNKNOWN;
  GPULET_STEP(lib.nvmlDeviceGetBrand != nullptr && call(lib.nvmlDeviceGetBrand(dev, &brand), "nvmlDeviceGetBrand")) {
    g->brand = static_cast<unsigned int>(brand);
  }
  nvmlDeviceArchitecture_t arch = 0;
  GPULET_STEP(lib.nvmlDeviceGetArchitecture != nullptr && call(lib.nvmlDeviceGetArchitecture(dev, &arch), "nvmlDeviceGetArchitecture")) {
    g->architecture = arch;
  }
  int major = 0, minor = 0;
  GPULET_STEP(lib.nvmlDeviceGetCudaComputeCapability != nullptr &&
              call(lib.nvmlDeviceGetCudaComputeCapability(dev, &major, &minor), "nvmlDeviceGetCudaComputeCapability")) {
    g->cc_major = major;
    g->cc_minor = minor;
  }
  nvmlPciInfo_t pci;
  std::memset(&pci, 0, sizeof pci);
  GPULET_STEP(lib.nvmlDeviceGetPciInfo_v3 != nullptr && call(lib.nvmlDeviceGetPciInfo_v3(dev, &pci), "nvmlDeviceGetPciInfo_v3")) {
    g->pci = PciFacts{CString(pci.busId, sizeof pci.busId), pci.domain, pci.bus, pci.device, pci.pciDeviceId, pci.pciSubSystemId};
  }
  if (lib.nvmlDeviceGetMemoryInfo_v2 != nullptr) {
    nvmlMemory_v2_t mem;
    std::memset(&mem, 0, sizeof mem);
    mem.version = nvmlMemory_v2;
    GPULET_STEP(call(lib.nvmlDeviceGetMemoryInfo_v2(dev, &mem), "nvmlDeviceGetMemoryInfo_v2")) g->memory_total = mem.total;
  } else if (lib.memory_info_v1 != nullptr) {
    nvmlMemory_t mem;
    std::memset(&mem, 0, sizeof mem);
    GPULET_STEP(call(lib.memory_info_v1(dev, &mem), "nvmlDeviceGetMemoryInfo")) g->memory_total = mem.total;
  }
  nvmlDeviceAttributes_t attrs;
  std::memset(&attrs, 0, sizeof attrs);
  GPULET_STEP(lib.nvmlDeviceGetAttributes_v2 != nullptr && call(lib.nvmlDeviceGetAttributes_v2(dev, &attrs), "nvmlDeviceGetAttributes_v2")) {
    g->multiprocessors = attrs.multiprocessorCount;
  }
  GPULET_STEP(lib.nvmlDeviceGetEnforcedPowerLimit != nullptr &&
              call(lib.nvmlDeviceGetEnforcedPowerLimit(dev, &u), "nvmlDeviceGetEnforcedPowerLimit")) {
    g->power_limit = u;
  }
  unsigned int current = 0, pending = 0;
  GPULET_STEP(lib.nvmlDeviceGetMigMode != nullptr && call(lib.nvmlDeviceGetMigMode(dev, &current, &pending), "nvmlDeviceGetMigMode")) {
    g->mig_current = current;
    g->mig_pending = pending;
  }
  if (g->error || current != NVML_DEVICE_MIG_ENABLE || lib.nvmlDeviceGetMaxMigDeviceCount == nullptr ||
      lib.nvmlDeviceGetMigDeviceHandleByIndex == nullptr) {
    return;
  }
  unsigned int max = 0;
  if (!call(lib.nvmlDeviceGetMaxMigDeviceCount(dev, &max), "nvmlDeviceGetMaxMigDeviceCount")) return;
  g->profiles = ReadProfiles(lib, dev, call);
  const std::vector<GiProfileFacts>& profiles = g->profiles;
  for (unsigned int j = 0; j < max && !g->error; j++) {
    nvmlDevice_t mig = nullptr;
    r = lib.nvmlDeviceGetMigDeviceHandleByIndex(dev, j, &mig);
    if (r == NVML_ERROR_NOT_FOUND || r == NVML_ERROR_INVALID_ARGUMENT) continue;  // no MIG device at j
    MigFacts m;
    m.index = j;
    if (r != NVML_SUCCESS) {
      m.error = Failure{r, "nvmlDeviceGetMigDeviceHandleByIndex"};
      mig = nullptr;
    } else {
      ReadMig(lib, dev, j, mig, profiles, &m);
    }
    g->migs.push_back(std::move(m));
    h->migs.push_back(mig);
  }
#undef GPULET_STEP
}

}  // namespace

void DiscoverGpu(const Library& lib, unsigned int index, GpuFacts* out, GpuHandles* handles) {
  *out = GpuFacts{};
  *handles = GpuHandles{};
  ReadGpu(lib, index, out, handles);
}

bool Discover(const Library& lib, Discovery* out, std::vector<GpuHandles>* handles, Failure* fatal) {
  ReadSystem(lib, &out->system);
  unsigned int count = 0;
  nvmlReturn_t r = lib.nvmlDeviceGetCount_v2(&count);
  if (r != NVML_SUCCESS) {
    *fatal = Failure{r, "nvmlDeviceGetCount_v2"};
    return false;
  }
  out->gpus.resize(count);
  handles->assign(count, GpuHandles{});
  for (unsigned int i = 0; i < count; i++) ReadGpu(lib, i, &out->gpus[i], &(*handles)[i]);
  return true;
}

}  // namespace gpulet
