#include "events.h"

#include <chrono>

#include "js_convert.h"

namespace gpulet {

namespace {

constexpr unsigned int kWaitTimeoutMs = 500;

constexpr unsigned long long kWanted = static_cast<unsigned long long>(nvmlEventTypeXidCriticalError) |
                                       static_cast<unsigned long long>(nvmlEventTypeSingleBitEccError) |
                                       static_cast<unsigned long long>(nvmlEventTypeDoubleBitEccError) |
                                       static_cast<unsigned long long>(nvmlEventTypeGpuUnavailableError);

struct EventRecord {
  int gpu = -1;
  unsigned long long type = 0, data = 0;
  unsigned int gpu_instance_id = 0xFFFFFFFFu, compute_instance_id = 0xFFFFFFFFu;
  double timestamp_ms = 0;
  std::optional<Failure> error;
};

double NowMs() {
  using namespace std::chrono;
  return static_cast<double>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace

std::shared_ptr<EventWatcher> EventWatcher::Create(std::shared_ptr<Library> lib, const std::vector<nvmlDevice_t>& gpus,
                                                   std::vector<unsigned long long>* registered,
                                                   std::vector<Failure>* errors, Failure* fatal) {
  registered->assign(gpus.size(), 0);
  if (lib->nvmlEventSetCreate == nullptr || lib->nvmlDeviceRegisterEvents == nullptr ||
      lib->nvmlEventSetWait_v2 == nullptr || lib->nvmlEventSetFree == nullptr) {
    *fatal = Failure{NVML_ERROR_FUNCTION_NOT_FOUND, "nvmlEventSetCreate"};
    return nullptr;
  }
  std::shared_ptr<EventWatcher> w(new EventWatcher());
  w->lib_ = std::move(lib);
  w->gpus_ = gpus;
  nvmlReturn_t r = w->lib_->nvmlEventSetCreate(&w->set_);
  if (r != NVML_SUCCESS) {
    *fatal = Failure{r, "nvmlEventSetCreate"};
    w->set_ = nullptr;
    return nullptr;
  }
  for (size_t i = 0; i < gpus.size(); i++) {
    if (gpus[i] == nullptr) continue;
    unsigned long long supported = kWanted;
    if (w->lib_->nvmlDeviceGetSupportedEventTypes != nullptr) {
      r = w->lib_->nvmlDeviceGetSupportedEventTypes(gpus[i], &supported);
      if (r != NVML_SUCCESS) {
        if (r != NVML_ERROR_NOT_SUPPORTED) errors->push_back({r, "nvmlDeviceGetSupportedEventTypes"});
        continue;
      }
    }
    const unsigned long long mask = supported & kWanted;
    if (mask == 0) continue;
    r = w->lib_->nvmlDeviceRegisterEvents(gpus[i], mask, w->set_);
    if (r == NVML_SUCCESS) {
      (*registered)[i] = mask;
    } else if (r != NVML_ERROR_NOT_SUPPORTED) {
      errors->push_back({r, "nvmlDeviceRegisterEvents"});
    }
  }
  return w;
}

void EventWatcher::Start(Napi::ThreadSafeFunction tsfn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || started_) {
    tsfn.Release();
    return;
  }
  tsfn_ = tsfn;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

int EventWatcher::GpuIndex(nvmlDevice_t dev) const {
  if (dev == nullptr) return -1;
  for (size_t i = 0; i < gpus_.size(); i++) {
    if (gpus_[i] == dev) return static_cast<int>(i);
  }
  return -1;
}

void EventWatcher::Run() {
  std::shared_ptr<Library> lib = lib_;
  auto deliver = [lib](Napi::Env env, Napi::Function cb, EventRecord* rec) {
    if (env != nullptr && !cb.IsEmpty()) {
      try {
        Napi::HandleScope scope(env);
        Napi::Object o = Napi::Object::New(env);
        o.Set("gpu", rec->gpu);
        o.Set("eventType", Napi::Number::New(env, static_cast<double>(rec->type)));
        o.Set("eventData", Napi::Number::New(env, static_cast<double>(rec->data)));
        o.Set("gpuInstanceId", Napi::Number::New(env, rec->gpu_instance_id));
        o.Set("computeInstanceId", Napi::Number::New(env, rec->compute_instance_id));
        o.Set("timestampMs", Napi::Number::New(env, rec->timestamp_ms));
        if (rec->error) o.Set("error", MakeNvmlError(env, *lib, *rec->error));
        cb.Call({o});
      } catch (const Napi::Error&) {
        // A throwing JS listener must not take the process down: the TS facade catches its own errors.
      }
    }
    delete rec;
  };
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    nvmlEventData_t data{};
    const nvmlReturn_t r = lib->nvmlEventSetWait_v2(set_, &data, kWaitTimeoutMs);
    if (r == NVML_ERROR_TIMEOUT) continue;
    auto* rec = new EventRecord();
    rec->timestamp_ms = NowMs();
    rec->gpu = GpuIndex(data.device);
    if (r == NVML_SUCCESS) {
      rec->type = data.eventType;
      rec->data = data.eventData;
      rec->gpu_instance_id = data.gpuInstanceId;
      rec->compute_instance_id = data.computeInstanceId;
    } else {
      rec->error = Failure{r, "nvmlEventSetWait_v2"};
    }
    if (tsfn_.BlockingCall(rec, deliver) != napi_ok) delete rec;
    if (r != NVML_SUCCESS) {
      // Back off before waiting again, so a persistent failure cannot spin; Stop() interrupts the pause.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(kWaitTimeoutMs), [this] { return stopping_; });
    }
  }
}

void EventWatcher::Stop() {
  bool join = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    join = started_;
  }
  cv_.notify_all();
  if (join && thread_.joinable()) thread_.join();
  if (set_ != nullptr) {
    lib_->nvmlEventSetFree(set_);
    set_ = nullptr;
  }
  if (join) tsfn_.Release();
}

EventWatcher::~EventWatcher() { Stop(); }

}  // namespace gpulet
