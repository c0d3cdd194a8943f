// GPM (GPU Performance Monitoring, Hopper and newer) reads of one session: per device a pair of sample buffers
// (nvmlGpmSampleAlloc), one sample per sampling tick (nvmlGpmSampleGet for a GPU, nvmlGpmMigSampleGet for a MIG
// device's GPU instance) and nvmlGpmMetricsGet over the previous and the current one. No N-API here; the state
// lives in SessionState and is used only under its mutex. A library without the GPM symbols, or a device for which
// nvmlGpmQueryDeviceSupport says unsupported (before Hopper), gets no GPM readings: nothing is recorded.
#pragma once

#include <map>
#include <utility>

#include "nvml_lib.h"
#include "nvml_read.h"

namespace gpulet {

// The NVML metric IDs read, in the order of Reading::gpm (nvml.h nvmlGpmMetricId_t).
extern const unsigned int kGpmMetricIds[kGpmMetrics];
// Their JS names (the NVML ID in camel case: graphicsUtil ... nvlinkTotalRxPerSec).
extern const char* const kGpmMetricNames[kGpmMetrics];

class GpmState {
 public:
  GpmState() = default;
  GpmState(const GpmState&) = delete;
  GpmState& operator=(const GpmState&) = delete;

  // Take device's GPM sample and, when a previous one exists, fill `o->gpm` from the two. `gpu` is the discovery
  // index, `gpu_handle` the GPU's handle; `gpu_instance` the MIG device's GPU-instance ID, or -1 for the GPU itself.
  void Read(const Library& lib, int gpu, nvmlDevice_t gpu_handle, int gpu_instance, Reading* o);
  // Free every sample buffer (handles replaced, or before nvmlShutdown).
  void Clear(const Library& lib);
  // Free the buffers of GPU `gpu` and its MIG devices (after a MIG change re-read it).
  void ClearGpu(const Library& lib, int gpu);

 private:
  struct Slot {
    nvmlGpmSample_t prev = nullptr;
    nvmlGpmSample_t cur = nullptr;
    bool have_prev = false;
  };
  static void Free(const Library& lib, Slot* s);
  // Per (GPU index, GPU-instance ID or -1).
  std::map<std::pair<int, int>, Slot> slots_;
  // nvmlGpmQueryDeviceSupport's answer per GPU index, asked once.
  std::map<int, bool> supported_;
};

}  // namespace gpulet
