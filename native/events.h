// NVML event watching: one event set per session, registered for XID critical errors, single/double-bit ECC
// and GPU-unavailable on each GPU (only the types nvmlDeviceGetSupportedEventTypes reports), waited on in a
// dedicated std::thread with nvmlEventSetWait_v2 (500 ms timeout, so Stop() returns within ~0.5 s), and
// delivered to JS through a Napi::ThreadSafeFunction as plain objects:
//   { gpu, eventType, eventData, gpuInstanceId, computeInstanceId, timestampMs, error? }
// A wait that fails (e.g. NVML_ERROR_GPU_IS_LOST) is delivered with eventType 0 and `error`, then the thread
// pauses 500 ms before waiting again. No policy: TypeScript decides what an event means.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "nvml_lib.h"
#include "nvml_read.h"

namespace gpulet {

class EventWatcher {
 public:
  // Worker thread: nvmlEventSetCreate + per-GPU nvmlDeviceRegisterEvents. Returns null with `fatal` set
  // when the set cannot be created (or the event symbols are missing: NVML_ERROR_FUNCTION_NOT_FOUND).
  // `registered[i]` is the mask registered on gpus[i]; non-NOT_SUPPORTED failures land in `errors`.
  static std::shared_ptr<EventWatcher> Create(std::shared_ptr<Library> lib, const std::vector<nvmlDevice_t>& gpus,
                                              std::vector<unsigned long long>* registered,
                                              std::vector<Failure>* errors, Failure* fatal);

  // JS thread: start the waiting thread, delivering to `tsfn` (which it then owns). No-op after Stop().
  void Start(Napi::ThreadSafeFunction tsfn);

  // Any thread: stop and join the thread, free the set, release the TSFN. Idempotent.
  void Stop();

  ~EventWatcher();

 private:
  EventWatcher() = default;
  void Run();
  int GpuIndex(nvmlDevice_t dev) const;

  std::shared_ptr<Library> lib_;
  nvmlEventSet_t set_ = nullptr;
  std::vector<nvmlDevice_t> gpus_;
  std::mutex mu_;  // guards stopping_/started_ (and the pause after a failed wait); never held during the wait
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace gpulet
