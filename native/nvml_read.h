// Plain C++ reads of NVML through a Library: discovery (static facts + handles) and samples (readings).
// No N-API here: these run on libuv worker threads (AsyncWorker::Execute) and fill plain structs that
// js_convert.cc turns into JS objects on the JS thread. No policy: a reading that answers
// NVML_ERROR_NOT_SUPPORTED (or whose symbol is missing) is left empty; any other failure is recorded; a
// device that answers NVML_ERROR_GPU_IS_LOST stops being read for this call and carries that failure.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nvml_abi.h"
#include "nvml_lib.h"

namespace gpulet {

// One failed NVML call: its return code and the function name (a string literal).
struct Failure {
  nvmlReturn_t code;
  const char* function;
};

struct SystemFacts {
  std::optional<std::string> driver_version, nvml_version;
  std::optional<int> cuda_driver_version;
  std::vector<Failure> errors;
};

struct PciFacts {
  std::string bus_id;
  unsigned int domain = 0, bus = 0, device = 0, pci_device_id = 0, pci_sub_system_id = 0;
};

struct GiProfileFacts {
  unsigned int index = 0, id = 0, slice_count = 0, instance_count = 0, multiprocessor_count = 0,
               copy_engine_count = 0, decoder_count = 0, encoder_count = 0, jpeg_count = 0, ofa_count = 0;
  unsigned long long memory_size_mb = 0;
  std::string name;
  // nvmlDeviceGetGpuInstancePossiblePlacements_v2 (start, size); empty when the call is missing or failed.
  std::vector<nvmlGpuInstancePlacement_t> placements;
};

struct MigFacts {
  unsigned int index = 0;
  std::optional<Failure> error;
  std::optional<std::string> uuid;
  std::optional<unsigned int> gpu_instance_id, compute_instance_id, profile_id, placement_start, placement_size;
  std::optional<GiProfileFacts> profile;
  std::vector<Failure> errors;
};

struct GpuFacts {
  unsigned int index = 0;
  std::optional<Failure> error;
  std::optional<std::string> uuid, serial, name, vbios_version;
  // nvmlDeviceAddressingMode_v1_t.value (nvmlDeviceAddressingModeType_t); empty when the symbol is missing
  // (NVML older than the call, e.g. R535) or the call answers NOT_SUPPORTED / fails.
  std::optional<unsigned int> addressing_mode;
  std::optional<unsigned int> minor, brand, architecture, multiprocessors, power_limit, mig_current, mig_pending;
  std::optional<int> cc_major, cc_minor;
  std::optional<PciFacts> pci;
  std::optional<unsigned long long> memory_total;
  std::vector<MigFacts> migs;
  // GPU-instance profiles with their possible placements; read only while MIG mode is on (current).
  std::vector<GiProfileFacts> profiles;
  std::vector<Failure> errors;
};

struct Discovery {
  SystemFacts system;
  std::vector<GpuFacts> gpus;
};

// Handles fetched at discovery, positions matching Discovery::gpus / GpuFacts::migs (null when unreadable).
struct GpuHandles {
  nvmlDevice_t gpu = nullptr;
  std::vector<nvmlDevice_t> migs;
};

// Read GPU `index` again (its facts, MIG devices and profiles) and its handles: after a MIG change.
void DiscoverGpu(const Library& lib, unsigned int index, GpuFacts* out, GpuHandles* handles);

// Discover every GPU and MIG device. Returns false (with `fatal`) only when the device count itself fails.
bool Discover(const Library& lib, Discovery* out, std::vector<GpuHandles>* handles, Failure* fatal);

// GPM metrics read per device (native/nvml_gpm.cc kGpmMetricIds).
constexpr size_t kGpmMetrics = 12;

// Readings of one device, NVML units. Empty optionals are absent readings.
struct Reading {
  int gpu = 0;
  int mig = -1;
  std::optional<Failure> error;
  std::vector<Failure> errors;
  std::optional<unsigned int> gpu_util, mem_util, enc_util, dec_util, power, power_limit, gpu_temp, sm_clock,
      mem_clock, remapped_correctable, remapped_uncorrectable, remapped_failure, pcie_replays, pcie_tx_kbs, pcie_rx_kbs;
  std::optional<long long> mem_temp;
  std::optional<unsigned long long> mem_total, mem_reserved, mem_free, mem_used, energy, clock_reasons,
      ecc_corrected, ecc_uncorrected, nvlink_tx_kib, nvlink_rx_kib;
  // GPM metrics over the last interval (percent, or MiB/s for the _PER_SEC ones), kGpmMetricIds order; `has_gpm`
  // when at least one is set.
  std::array<std::optional<double>, kGpmMetrics> gpm;
  bool has_gpm = false;
};

class GpmState;

// Read every device in `handles`, except the GPUs whose index is in `skip` (and their MIG devices). With `gpm`,
// each device's GPM sample is taken too and its metrics computed from the previous one (nvml_gpm.h).
void Sample(const Library& lib, const std::vector<GpuHandles>& handles, const std::vector<int>& skip,
            std::vector<Reading>* out, GpmState* gpm = nullptr);

}  // namespace gpulet
