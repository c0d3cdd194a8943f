// The dlopen()ed NVML library and its table of dlsym()ed functions. No N-API here.
//
// Every function gpulet calls is resolved by name at Open(): the preferred (versioned) symbol first, then its
// fallback (GPULET_NVML_FUNCTIONS in nvml_abi.h). A missing REQUIRED symbol fails the open naming the symbol;
// a missing optional symbol leaves its pointer null and the reading it serves absent. Two fallbacks take a
// different struct and keep their own pointers (memory_info_v1, gi_profile_info_v1).
// A Library is shared (std::shared_ptr) by its session, the session's in-flight workers and its event thread;
// dlclose() runs when the last of them lets go.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nvml_abi.h"

namespace gpulet {

class Library {
 public:
  // Pointers, one per preferred symbol (same signature as its fallback except the two noted above).
#define GPULET_NVML_DECLARE_POINTER(preferred, fallback) preferred##_fn preferred = nullptr;
  GPULET_NVML_FUNCTIONS(GPULET_NVML_DECLARE_POINTER)
#undef GPULET_NVML_DECLARE_POINTER
  // Fallbacks whose struct differs from the preferred symbol's.
  nvmlDeviceGetMemoryInfo_fn memory_info_v1 = nullptr;
  nvmlDeviceGetGpuInstanceProfileInfo_fn gi_profile_info_v1 = nullptr;

  // Outcome of Open(). On failure `library` is null, `error` is the dlerror() text (or names the missing
  // symbol) and `missing_symbol` is set when the library opened but a required symbol is absent.
  struct OpenResult {
    std::shared_ptr<Library> library;
    std::string error;
    std::string missing_symbol;
  };

  // dlopen(path, RTLD_NOW | RTLD_LOCAL) and resolve the table. Never throws.
  static OpenResult Open(const std::string& path);

  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const std::string& path() const { return path_; }
  // (preferred name, resolved name or "" when missing), in table order, for diagnostics.
  const std::vector<std::pair<std::string, std::string>>& resolved() const { return resolved_; }
  // nvmlErrorString(code) when available, else "".
  std::string ErrorString(nvmlReturn_t code) const;

 private:
  Library() = default;
  void* handle_ = nullptr;
  std::string path_;
  std::vector<std::pair<std::string, std::string>> resolved_;
};

// Symbolic name of an nvmlReturn_t, e.g. "NVML_ERROR_GPU_IS_LOST"; "NVML_ERROR_UNKNOWN_CODE_<n>" otherwise.
std::string ReturnName(nvmlReturn_t code);

}  // namespace gpulet
