#include "probe.h"

#include <dlfcn.h>

namespace gpulet {

ProbeResult ProbeLibrary(const std::string& path) {
  ProbeResult result;
  dlerror();  // clear any stale error
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    result.error = err != nullptr ? err : "dlopen failed with no dlerror() text";
    return result;
  }
  result.loaded = true;
  dlerror();
  void* sym = dlsym(handle, "nvmlInit_v2");
  result.nvml_init_v2 = sym != nullptr && dlerror() == nullptr;
  dlclose(handle);
  return result;
}

}  // namespace gpulet
