// Session: the JS object (Napi::ObjectWrap) of one opened NVML library. Every blocking NVML call runs in a
// Napi::AsyncWorker and returns a Promise; Execute() never touches JS. The workers of one session are
// serialized by SessionState::mu (a handle refresh can never race a sample); the event thread is not (see
// "Locking" below). JS API (validated by src/gpu/nvml/validate.ts):
//   library: string                 path or soname that was dlopen()ed
//   symbols: { [preferred]: resolved name | null }
//   init(): Promise<void>           nvmlInit_v2 (or nvmlInit); rejects with the NVML error class
//   discover(): Promise<Discovery>  static facts + (re)fetches and keeps the device handles
//   sample(skip?: number[]): Promise<{ timestampMs, devices: Reading[] }>   each reading with `gpm` (NVML units)
//                                   from this sample's GPM buffer and the previous sample's (nvml_gpm.h)
//   startEvents(cb): Promise<{ registered: number[], errors }>   cb(event) from the event thread
//   stopEvents(): Promise<void>
//   shutdown(): Promise<void>       stop events, nvmlShutdown, drop handles; idempotent
//   migMode(gpu): Promise<{ current, pending }>                      nvmlDeviceGetMigMode (gpu: discovery index)
//   setMigMode(gpu, enabled): Promise<{ activationStatus, activationStatusName, current, pending, gpu }>
//   createMigDevice(gpu, giProfileId, start, size): Promise<{ gpuInstanceId, computeInstanceProfileId, gpu }>
//                                   GI at the placement + its full CI; GI destroyed again if a later step fails
//                                   (the rejection then carries `rollbackError` when that destroy failed too)
//   destroyMigDevice(gpu, gpuInstanceId): Promise<{ found, gpu }>   CIs then GI; found false: no such GI
//   gpuInstances(gpu): Promise<{ gpuInstances: [{ gpuInstanceId, giProfileId, start, size }] }>  every GI, with or
//     without a compute instance (nvmlDeviceGetGpuInstances per GI profile, nvmlGpuInstanceGetInfo); no re-read
//   readGpu(gpu): Promise<{ gpu }>  read one GPU again (facts, MIG devices, profiles with placements)
// The MIG calls that change something (and readGpu) read the GPU again afterwards and replace its handles, so
// later samples use the MIG devices as they now are; `gpu` is that GPU's facts, as in discover().gpus.
// The session state is shared (std::shared_ptr) with in-flight workers; the finalizer shuts down a session
// that JS forgot (or a worker thread that was terminated), so nvmlInit/nvmlShutdown stay balanced.
//
// Locking. SessionState::mu is held
//   - by every worker for the whole of its Execute() on a libuv thread: init (nvmlInit_v2), discover (handles
//     fetched and replaced), sample, the MIG calls (one GPU's handles replaced), startEvents (nvmlEventSetCreate + nvmlDeviceRegisterEvents),
//     stopEvents and shutdown (EventWatcher::Stop(), then nvmlShutdown);
//   - by the finalizer (~Session, on the JS thread) around CloseLocked().
// It is NOT held by the event thread (events.h): its nvmlEventSetWait_v2 (up to 500 ms) runs concurrently with
// the workers' NVML calls, which NVML allows (its API is thread-safe). That thread takes only the watcher's own
// mutex (EventWatcher::mu_), to read the stop flag and for its pause after a failed wait, never around the wait
// itself, and it maps events with its own copy of the GPU handles, taken at startEvents. It must never take
// SessionState::mu: stopEvents, shutdown and the finalizer call EventWatcher::Stop() while holding mu, and
// Stop() joins the thread before freeing the event set, so on those paths the set is freed, and nvmlShutdown
// called, only after the last wait has returned. One Stop() runs without mu: the environment cleanup hook
// (registered by startEvents, for a worker thread that ends) calls it on the JS thread; Stop() is idempotent,
// so a later call under mu returns at once, without waiting for that one to finish joining.
#pragma once

#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

#include "events.h"
#include "nvml_gpm.h"
#include "nvml_lib.h"
#include "nvml_read.h"

namespace gpulet {

struct SessionState {
  std::shared_ptr<Library> lib;
  std::mutex mu;  // held by each worker's Execute() and the finalizer, never by the event thread ("Locking")
  bool initialized = false;
  bool closed = false;
  std::vector<GpuHandles> handles;
  // GPM sample buffers per device (nvml_gpm.h): cleared when the handles are replaced, freed before nvmlShutdown.
  GpmState gpm;
  std::shared_ptr<EventWatcher> events;

  // Stop events, nvmlShutdown when initialized, drop handles. Caller holds `mu`. Returns the shutdown result.
  nvmlReturn_t CloseLocked();
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  // The constructor function (not exported: sessions come from open()).
  static Napi::Function Define(Napi::Env env);
  // A new session object for `lib`.
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<Library> lib);

  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

 private:
  Napi::Value Init(const Napi::CallbackInfo& info);
  Napi::Value Discover(const Napi::CallbackInfo& info);
  Napi::Value Sample(const Napi::CallbackInfo& info);
  Napi::Value StartEvents(const Napi::CallbackInfo& info);
  Napi::Value StopEvents(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value MigMode(const Napi::CallbackInfo& info);
  Napi::Value SetMigMode(const Napi::CallbackInfo& info);
  Napi::Value CreateMigDevice(const Napi::CallbackInfo& info);
  Napi::Value DestroyMigDevice(const Napi::CallbackInfo& info);
  Napi::Value GpuInstances(const Napi::CallbackInfo& info);
  Napi::Value ReadGpu(const Napi::CallbackInfo& info);

  std::shared_ptr<SessionState> state_;
};

}  // namespace gpulet
