// Samples: the readings of every device of a discovery (see nvml_read.h). Runs on a libuv worker thread.
#include <algorithm>
#include <cstring>
#include <optional>

#include "nvml_calls.h"
#include "nvml_gpm.h"
#include "nvml_read.h"

namespace gpulet {

namespace {

void ReadMemory(const Library& lib, nvmlDevice_t dev, const Calls& call, Reading* o) {
  if (lib.nvmlDeviceGetMemoryInfo_v2 != nullptr) {
    nvmlMemory_v2_t mem;
    std::memset(&mem, 0, sizeof mem);
    mem.version = nvmlMemory_v2;
    if (call(lib.nvmlDeviceGetMemoryInfo_v2(dev, &mem), "nvmlDeviceGetMemoryInfo_v2")) {
      o->mem_total = mem.total;
      o->mem_reserved = mem.reserved;
      o->mem_free = mem.free;
      o->mem_used = mem.used;
    }
  } else if (lib.memory_info_v1 != nullptr) {
    nvmlMemory_t mem;
    std::memset(&mem, 0, sizeof mem);
    if (call(lib.memory_info_v1(dev, &mem), "nvmlDeviceGetMemoryInfo")) {
      o->mem_total = mem.total;
      o->mem_free = mem.free;
      o->mem_used = mem.used;
    }
  }
}

// Fields read in one nvmlDeviceGetFieldValues batch. Each entry has its own nvmlReturn.
// NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX/RX (138/139): NVLink data bytes in KiB since the driver loaded, scopeId
// UINT_MAX = summed over every link (nvml.h); NOT_SUPPORTED on a GPU without NVLink (the reading is then absent).
void ReadFields(const Library& lib, nvmlDevice_t dev, const Calls& call, Reading* o) {
  if (lib.nvmlDeviceGetFieldValues == nullptr) return;
  nvmlFieldValue_t values[3];
  std::memset(values, 0, sizeof values);
  values[0].fieldId = NVML_FI_DEV_MEMORY_TEMP;
  values[1].fieldId = NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX;
  values[1].scopeId = 0xFFFFFFFFu;
  values[2].fieldId = NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX;
  values[2].scopeId = 0xFFFFFFFFu;
  if (!call(lib.nvmlDeviceGetFieldValues(dev, 3, values), "nvmlDeviceGetFieldValues")) return;
  auto read = [&call](const nvmlFieldValue_t& t) -> std::optional<long long> {
    if (!call(t.nvmlReturn, "nvmlDeviceGetFieldValues")) return std::nullopt;
    switch (t.valueType) {
      case NVML_VALUE_TYPE_DOUBLE: return static_cast<long long>(t.value.dVal);
      case NVML_VALUE_TYPE_UNSIGNED_INT: return t.value.uiVal;
      case NVML_VALUE_TYPE_UNSIGNED_LONG: return static_cast<long long>(t.value.ulVal);
      case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: return static_cast<long long>(t.value.ullVal);
      case NVML_VALUE_TYPE_SIGNED_LONG_LONG: return t.value.sllVal;
      default: return std::nullopt;
    }
  };
  o->mem_temp = read(values[0]);
  const std::optional<long long> tx = read(values[1]), rx = read(values[2]);
  if (tx && *tx >= 0) o->nvlink_tx_kib = static_cast<unsigned long long>(*tx);
  if (rx && *rx >= 0) o->nvlink_rx_kib = static_cast<unsigned long long>(*rx);
}

void ReadGpuReadings(const Library& lib, nvmlDevice_t dev, Reading* o) {
  Calls call{&o->errors, &o->error};
#define GPULET_READ(fn, ...) \
  if (o->error) return;      \
  if (lib.fn != nullptr && call(lib.fn(dev, __VA_ARGS__), #fn))
  nvmlUtilization_t util{};
  GPULET_READ(nvmlDeviceGetUtilizationRates, &util) {
    o->gpu_util = util.gpu;
    o->mem_util = util.memory;
  }
  unsigned int v = 0, period = 0;
  GPULET_READ(nvmlDeviceGetEncoderUtilization, &v, &period) o->enc_util = v;
  GPULET_READ(nvmlDeviceGetDecoderUtilization, &v, &period) o->dec_util = v;
  if (o->error) return;
  ReadMemory(lib, dev, call, o);
  GPULET_READ(nvmlDeviceGetPowerUsage, &v) o->power = v;
  GPULET_READ(nvmlDeviceGetEnforcedPowerLimit, &v) o->power_limit = v;
  unsigned long long ull = 0;
  GPULET_READ(nvmlDeviceGetTotalEnergyConsumption, &ull) o->energy = ull;
  GPULET_READ(nvmlDeviceGetTemperature, NVML_TEMPERATURE_GPU, &v) o->gpu_temp = v;
  if (o->error) return;
  ReadFields(lib, dev, call, o);
  GPULET_READ(nvmlDeviceGetClockInfo, NVML_CLOCK_SM, &v) o->sm_clock = v;
  GPULET_READ(nvmlDeviceGetClockInfo, NVML_CLOCK_MEM, &v) o->mem_clock = v;
  GPULET_READ(nvmlDeviceGetCurrentClocksEventReasons, &ull) o->clock_reasons = ull;
  GPULET_READ(nvmlDeviceGetTotalEccErrors, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, &ull) o->ecc_corrected = ull;
  GPULET_READ(nvmlDeviceGetTotalEccErrors, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &ull) o->ecc_uncorrected = ull;
  unsigned int corr = 0, unc = 0, pending = 0, failed = 0;
  GPULET_READ(nvmlDeviceGetRemappedRows, &corr, &unc, &pending, &failed) {
    o->remapped_correctable = corr;
    o->remapped_uncorrectable = unc;
    o->remapped_failure = failed;
  }
  GPULET_READ(nvmlDeviceGetPcieReplayCounter, &v) o->pcie_replays = v;
  GPULET_READ(nvmlDeviceGetPcieThroughput, NVML_PCIE_UTIL_TX_BYTES, &v) o->pcie_tx_kbs = v;
  GPULET_READ(nvmlDeviceGetPcieThroughput, NVML_PCIE_UTIL_RX_BYTES, &v) o->pcie_rx_kbs = v;
#undef GPULET_READ
}

}  // namespace

void Sample(const Library& lib, const std::vector<GpuHandles>& handles, const std::vector<int>& skip,
            std::vector<Reading>* out, GpmState* gpm) {
  for (size_t i = 0; i < handles.size(); i++) {
    const GpuHandles& h = handles[i];
    if (h.gpu == nullptr || std::find(skip.begin(), skip.end(), static_cast<int>(i)) != skip.end()) continue;
    out->emplace_back();
    Reading& g = out->back();
    g.gpu = static_cast<int>(i);
    ReadGpuReadings(lib, h.gpu, &g);
    if (gpm != nullptr && !g.error) gpm->Read(lib, static_cast<int>(i), h.gpu, -1, &g);
    const bool parent_lost = g.error.has_value() && g.error->code == NVML_ERROR_GPU_IS_LOST;
    for (size_t j = 0; j < h.migs.size() && !parent_lost; j++) {
      if (h.migs[j] == nullptr) continue;
      out->emplace_back();
      Reading& m = out->back();
      m.gpu = static_cast<int>(i);
      m.mig = static_cast<int>(j);
      Calls call{&m.errors, &m.error};
      ReadMemory(lib, h.migs[j], call, &m);
      nvmlUtilization_t util{};
      if (!m.error && lib.nvmlDeviceGetUtilizationRates != nullptr &&
          call(lib.nvmlDeviceGetUtilizationRates(h.migs[j], &util), "nvmlDeviceGetUtilizationRates")) {
        m.gpu_util = util.gpu;  // NVML answers NOT_SUPPORTED on MIG devices today; read in case it stops
        m.mem_util = util.memory;
      }
      unsigned int gi = 0;
      if (gpm != nullptr && !m.error && lib.nvmlDeviceGetGpuInstanceId != nullptr &&
          call(lib.nvmlDeviceGetGpuInstanceId(h.migs[j], &gi), "nvmlDeviceGetGpuInstanceId")) {
        gpm->Read(lib, static_cast<int>(i), h.gpu, static_cast<int>(gi), &m);
      }
    }
  }
}

}  // namespace gpulet
