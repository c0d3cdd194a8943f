// Probe of a shared library with dlopen/dlsym: the only foreign calls of the placeholder addon.
// No N-API here, no NVML calls: the library is opened, one symbol is looked up, and it is closed again.
#pragma once

#include <string>

namespace gpulet {

// Result of ProbeLibrary(). `error` is dlerror()'s text when `loaded` is false, empty otherwise.
struct ProbeResult {
  bool loaded = false;
  std::string error;
  // True when dlsym(handle, "nvmlInit_v2") resolved. Meaningful only when `loaded`.
  bool nvml_init_v2 = false;
};

// dlopen(path, RTLD_NOW | RTLD_LOCAL), dlsym("nvmlInit_v2"), dlclose(). Never throws.
ProbeResult ProbeLibrary(const std::string& path);

}  // namespace gpulet
