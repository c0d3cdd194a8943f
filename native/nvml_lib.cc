#include "nvml_lib.h"

#include <dlfcn.h>

#include <cstring>

namespace gpulet {

namespace {

// Symbols without which gpulet cannot discover anything: the open fails naming the first one missing.
const char* const kRequired[] = {"nvmlInit_v2", "nvmlShutdown", "nvmlDeviceGetCount_v2",
                                 "nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetUUID",
                                 "nvmlDeviceGetMinorNumber"};

void* Lookup(void* handle, const char* name) {
  dlerror();
  void* sym = dlsym(handle, name);
  return dlerror() == nullptr ? sym : nullptr;
}

}  // namespace

Library::OpenResult Library::Open(const std::string& path) {
  OpenResult out;
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    out.error = err != nullptr ? err : "dlopen failed with no dlerror() text";
    return out;
  }
  std::shared_ptr<Library> lib(new Library());
  lib->handle_ = handle;
  lib->path_ = path;

  // Preferred symbol, then fallback; the two struct-changing fallbacks get their own pointers.
#define GPULET_NVML_RESOLVE(preferred, fallback)                                                     \
  {                                                                                                  \
    const char* used = "";                                                                           \
    void* sym = Lookup(handle, #preferred);                                                          \
    if (sym != nullptr) {                                                                            \
      used = #preferred;                                                                             \
      lib->preferred = reinterpret_cast<preferred##_fn>(sym);                                        \
    } else if (std::strcmp(#preferred, #fallback) != 0) {                                            \
      void* fb = Lookup(handle, #fallback);                                                          \
      if (fb != nullptr) {                                                                           \
        used = #fallback;                                                                            \
        if (std::strcmp(#fallback, "nvmlDeviceGetMemoryInfo") == 0) {                                \
          lib->memory_info_v1 = reinterpret_cast<nvmlDeviceGetMemoryInfo_fn>(fb);                    \
        } else if (std::strcmp(#fallback, "nvmlDeviceGetGpuInstanceProfileInfo") == 0) {            \
          lib->gi_profile_info_v1 = reinterpret_cast<nvmlDeviceGetGpuInstanceProfileInfo_fn>(fb);    \
        } else {                                                                                     \
          lib->preferred = reinterpret_cast<preferred##_fn>(fb);                                     \
        }                                                                                            \
      }                                                                                              \
    }                                                                                                \
    lib->resolved_.emplace_back(#preferred, used);                                                   \
  }
  GPULET_NVML_FUNCTIONS(GPULET_NVML_RESOLVE)
#undef GPULET_NVML_RESOLVE

  for (const char* name : kRequired) {
    for (const auto& entry : lib->resolved_) {
      if (entry.first == name && entry.second.empty()) {
        out.missing_symbol = name;
        out.error = std::string("required NVML symbol ") + name + " not found in " + path;
        return out;  // lib's destructor dlclose()s
      }
    }
  }
  out.library = std::move(lib);
  return out;
}

Library::~Library() {
  if (handle_ != nullptr) dlclose(handle_);
}

std::string Library::ErrorString(nvmlReturn_t code) const {
  if (nvmlErrorString == nullptr) return "";
  const char* s = nvmlErrorString(code);
  return s != nullptr ? s : "";
}

std::string ReturnName(nvmlReturn_t code) {
  switch (code) {
#define GPULET_RET(name) \
  case name:             \
    return #name;
    GPULET_RET(NVML_SUCCESS)
    GPULET_RET(NVML_ERROR_UNINITIALIZED)
    GPULET_RET(NVML_ERROR_INVALID_ARGUMENT)
    GPULET_RET(NVML_ERROR_NOT_SUPPORTED)
    GPULET_RET(NVML_ERROR_NO_PERMISSION)
    GPULET_RET(NVML_ERROR_ALREADY_INITIALIZED)
    GPULET_RET(NVML_ERROR_NOT_FOUND)
    GPULET_RET(NVML_ERROR_INSUFFICIENT_SIZE)
    GPULET_RET(NVML_ERROR_INSUFFICIENT_POWER)
    GPULET_RET(NVML_ERROR_DRIVER_NOT_LOADED)
    GPULET_RET(NVML_ERROR_TIMEOUT)
    GPULET_RET(NVML_ERROR_IRQ_ISSUE)
    GPULET_RET(NVML_ERROR_LIBRARY_NOT_FOUND)
    GPULET_RET(NVML_ERROR_FUNCTION_NOT_FOUND)
    GPULET_RET(NVML_ERROR_CORRUPTED_INFOROM)
    GPULET_RET(NVML_ERROR_GPU_IS_LOST)
    GPULET_RET(NVML_ERROR_RESET_REQUIRED)
    GPULET_RET(NVML_ERROR_OPERATING_SYSTEM)
    GPULET_RET(NVML_ERROR_LIB_RM_VERSION_MISMATCH)
    GPULET_RET(NVML_ERROR_IN_USE)
    GPULET_RET(NVML_ERROR_MEMORY)
    GPULET_RET(NVML_ERROR_NO_DATA)
    GPULET_RET(NVML_ERROR_VGPU_ECC_NOT_SUPPORTED)
    GPULET_RET(NVML_ERROR_INSUFFICIENT_RESOURCES)
    GPULET_RET(NVML_ERROR_FREQ_NOT_SUPPORTED)
    GPULET_RET(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    GPULET_RET(NVML_ERROR_DEPRECATED)
    GPULET_RET(NVML_ERROR_NOT_READY)
    GPULET_RET(NVML_ERROR_GPU_NOT_FOUND)
    GPULET_RET(NVML_ERROR_INVALID_STATE)
    GPULET_RET(NVML_ERROR_UNKNOWN)
#undef GPULET_RET
  }
  return "NVML_ERROR_UNKNOWN_CODE_" + std::to_string(static_cast<int>(code));
}

}  // namespace gpulet
