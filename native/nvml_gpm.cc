#include "nvml_gpm.h"

#include <cstring>

#include "nvml_calls.h"

namespace gpulet {

const unsigned int kGpmMetricIds[kGpmMetrics] = {
    NVML_GPM_METRIC_GRAPHICS_UTIL,   NVML_GPM_METRIC_SM_UTIL,         NVML_GPM_METRIC_SM_OCCUPANCY,
    NVML_GPM_METRIC_ANY_TENSOR_UTIL, NVML_GPM_METRIC_DRAM_BW_UTIL,    NVML_GPM_METRIC_FP64_UTIL,
    NVML_GPM_METRIC_FP32_UTIL,       NVML_GPM_METRIC_FP16_UTIL,       NVML_GPM_METRIC_PCIE_TX_PER_SEC,
    NVML_GPM_METRIC_PCIE_RX_PER_SEC, NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC, NVML_GPM_METRIC_NVLINK_TOTAL_RX_PER_SEC};

const char* const kGpmMetricNames[kGpmMetrics] = {
    "graphicsUtil", "smUtil",      "smOccupancy", "anyTensorUtil", "dramBwUtil",          "fp64Util",
    "fp32Util",     "fp16Util",    "pcieTxPerSec", "pcieRxPerSec",  "nvlinkTotalTxPerSec", "nvlinkTotalRxPerSec"};

void GpmState::Free(const Library& lib, Slot* s) {
  if (lib.nvmlGpmSampleFree != nullptr) {
    if (s->prev != nullptr) lib.nvmlGpmSampleFree(s->prev);
    if (s->cur != nullptr) lib.nvmlGpmSampleFree(s->cur);
  }
  s->prev = s->cur = nullptr;
  s->have_prev = false;
}

void GpmState::Clear(const Library& lib) {
  for (auto& entry : slots_) Free(lib, &entry.second);
  slots_.clear();
  supported_.clear();
}

void GpmState::ClearGpu(const Library& lib, int gpu) {
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (it->first.first == gpu) {
      Free(lib, &it->second);
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
  supported_.erase(gpu);
}

void GpmState::Read(const Library& lib, int gpu, nvmlDevice_t gpu_handle, int gpu_instance, Reading* o) {
  const bool mig = gpu_instance >= 0;
  if (lib.nvmlGpmQueryDeviceSupport == nullptr || lib.nvmlGpmSampleAlloc == nullptr || lib.nvmlGpmSampleFree == nullptr ||
      lib.nvmlGpmMetricsGet == nullptr || (mig ? lib.nvmlGpmMigSampleGet == nullptr : lib.nvmlGpmSampleGet == nullptr)) {
    return;  // a library older than GPM (or than nvmlGpmMigSampleGet): no GPM readings
  }
  Calls call{&o->errors, &o->error};
  auto known = supported_.find(gpu);
  if (known == supported_.end()) {
    nvmlGpmSupport_t support;
    std::memset(&support, 0, sizeof support);
    support.version = NVML_GPM_SUPPORT_VERSION;
    const nvmlReturn_t r = lib.nvmlGpmQueryDeviceSupport(gpu_handle, &support);
    if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED) {
      call(r, "nvmlGpmQueryDeviceSupport");  // asked again at the next sample
      return;
    }
    known = supported_.emplace(gpu, r == NVML_SUCCESS && support.isSupportedDevice != 0).first;
  }
  if (!known->second) return;
  Slot& s = slots_[{gpu, gpu_instance}];
  for (nvmlGpmSample_t* buf : {&s.prev, &s.cur}) {
    if (*buf == nullptr && !call(lib.nvmlGpmSampleAlloc(buf), "nvmlGpmSampleAlloc")) {
      *buf = nullptr;
      return;
    }
  }
  const nvmlReturn_t got = mig ? lib.nvmlGpmMigSampleGet(gpu_handle, static_cast<unsigned int>(gpu_instance), s.cur)
                               : lib.nvmlGpmSampleGet(gpu_handle, s.cur);
  if (!call(got, mig ? "nvmlGpmMigSampleGet" : "nvmlGpmSampleGet")) {
    s.have_prev = false;  // the next sample starts a new pair
    return;
  }
  if (s.have_prev) {
    nvmlGpmMetricsGet_t mg;
    std::memset(&mg, 0, sizeof mg);
    mg.version = NVML_GPM_METRICS_GET_VERSION;
    mg.numMetrics = kGpmMetrics;
    mg.sample1 = s.prev;
    mg.sample2 = s.cur;
    for (size_t i = 0; i < kGpmMetrics; i++) mg.metrics[i].metricId = kGpmMetricIds[i];
    if (call(lib.nvmlGpmMetricsGet(&mg), "nvmlGpmMetricsGet")) {
      for (size_t i = 0; i < kGpmMetrics; i++) {
        // A metric the device does not have (e.g. NVLink of a GPU instance) answers its own error: absent.
        if (mg.metrics[i].nvmlReturn == NVML_SUCCESS) {
          o->gpm[i] = mg.metrics[i].value;
          o->has_gpm = true;
        }
      }
    }
  }
  std::swap(s.prev, s.cur);
  s.have_prev = true;
}

}  // namespace gpulet
