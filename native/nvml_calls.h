// Outcome bookkeeping shared by the discovery (nvml_read.cc) and sample (nvml_sample.cc) reads.
#pragma once

#include <optional>
#include <vector>

#include "nvml_read.h"

namespace gpulet {

// Outcome bookkeeping of one device's calls: success → true; NOT_SUPPORTED → false, nothing recorded;
// GPU_IS_LOST → false and `lost` set (the caller stops reading the device); anything else → recorded.
struct Calls {
  std::vector<Failure>* errors;
  std::optional<Failure>* lost;
  bool operator()(nvmlReturn_t r, const char* fn) const {
    if (r == NVML_SUCCESS) return true;
    if (r == NVML_ERROR_NOT_SUPPORTED) return false;
    if (r == NVML_ERROR_GPU_IS_LOST) {
      *lost = Failure{r, fn};
      return false;
    }
    errors->push_back(Failure{r, fn});
    return false;
  }
};

}  // namespace gpulet
