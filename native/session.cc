#include "session.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "js_convert.h"
#include "nvml_mig.h"

namespace gpulet {

namespace {

// Base of every session worker: runs Run() under the session mutex on a libuv worker thread, then resolves
// the promise with Result(), or rejects it with the NVML error class when Run() recorded a failure.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::shared_ptr<SessionState> st, bool allow_closed = false)
      : Napi::AsyncWorker(env, "gpulet-nvml"),
        deferred_(Napi::Promise::Deferred::New(env)),
        st_(std::move(st)),
        allow_closed_(allow_closed) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() final {
    std::lock_guard<std::mutex> lock(st_->mu);
    if (st_->closed && !allow_closed_) {
      SetError("NVML session of " + st_->lib->path() + " is shut down: create a new one");
      return;
    }
    Run();
  }
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      if (failure_) {
        deferred_.Reject(MakeNvmlError(env, *st_->lib, *failure_));
      } else {
        deferred_.Resolve(Result(env));
      }
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SessionState> st_;
  std::optional<Failure> failure_;
  bool allow_closed_;
};

class InitWorker : public PromiseWorker {
 public:
  using PromiseWorker::PromiseWorker;
  void Run() override {
    if (st_->initialized) return;
    const nvmlReturn_t r = st_->lib->nvmlInit_v2();
    if (r != NVML_SUCCESS) {
      failure_ = Failure{r, "nvmlInit_v2"};
      return;
    }
    st_->initialized = true;
  }
};

class DiscoverWorker : public PromiseWorker {
 public:
  using PromiseWorker::PromiseWorker;
  void Run() override {
    if (!st_->initialized) {
      SetError("NVML session: discover() before init()");
      return;
    }
    std::vector<GpuHandles> handles;
    Failure fatal{NVML_SUCCESS, ""};
    if (!gpulet::Discover(*st_->lib, &data_, &handles, &fatal)) {
      failure_ = fatal;
      return;
    }
    st_->gpm.Clear(*st_->lib);  // positions may have changed: GPM pairs start again
    st_->handles = std::move(handles);
  }
  Napi::Value Result(Napi::Env env) override { return DiscoveryToJs(env, *st_->lib, data_); }

 private:
  Discovery data_;
};

class SampleWorker : public PromiseWorker {
 public:
  SampleWorker(Napi::Env env, std::shared_ptr<SessionState> st, std::vector<int> skip)
      : PromiseWorker(env, std::move(st)), skip_(std::move(skip)) {}
  void Run() override {
    using namespace std::chrono;
    timestamp_ms_ = static_cast<double>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
    gpulet::Sample(*st_->lib, st_->handles, skip_, &readings_, &st_->gpm);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("timestampMs", Napi::Number::New(env, timestamp_ms_));
    Napi::Array devices = Napi::Array::New(env, readings_.size());
    for (size_t i = 0; i < readings_.size(); i++) {
      devices.Set(static_cast<uint32_t>(i), ReadingToJs(env, *st_->lib, readings_[i]));
    }
    o.Set("devices", devices);
    return o;
  }

 private:
  std::vector<int> skip_;
  double timestamp_ms_ = 0;
  std::vector<Reading> readings_;
};

class StartEventsWorker : public PromiseWorker {
 public:
  StartEventsWorker(Napi::Env env, std::shared_ptr<SessionState> st, Napi::Function cb)
      : PromiseWorker(env, std::move(st)), cb_(Napi::Persistent(cb)) {}
  void Run() override {
    if (st_->events) {
      SetError("NVML session: events already started; call stopEvents() first");
      return;
    }
    std::vector<nvmlDevice_t> gpus;
    for (const auto& h : st_->handles) gpus.push_back(h.gpu);
    Failure fatal{NVML_SUCCESS, ""};
    watcher_ = EventWatcher::Create(st_->lib, gpus, &registered_, &errors_, &fatal);
    if (!watcher_) {
      failure_ = fatal;
      return;
    }
    st_->events = watcher_;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(env, cb_.Value(), "gpulet-nvml-events", 0, 1);
    tsfn.Unref(env);  // the event thread must not keep the process (or a worker thread) alive
    watcher_->Start(tsfn);
    // At environment teardown (a worker thread ending), stop the thread and release the TSFN before Node
    // closes the TSFN itself: cleanup hooks run in reverse order of registration, so this one runs first.
    std::weak_ptr<EventWatcher> weak = watcher_;
    env.AddCleanupHook([weak]() {
      if (std::shared_ptr<EventWatcher> w = weak.lock()) w->Stop();
    });
    Napi::Object o = Napi::Object::New(env);
    Napi::Array reg = Napi::Array::New(env, registered_.size());
    for (size_t i = 0; i < registered_.size(); i++) {
      reg.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(registered_[i])));
    }
    o.Set("registered", reg);
    Napi::Array errs = Napi::Array::New(env, errors_.size());
    for (size_t i = 0; i < errors_.size(); i++) errs.Set(static_cast<uint32_t>(i), MakeNvmlError(env, *st_->lib, errors_[i]));
    o.Set("errors", errs);
    return o;
  }

 private:
  Napi::FunctionReference cb_;
  std::shared_ptr<EventWatcher> watcher_;
  std::vector<unsigned long long> registered_;
  std::vector<Failure> errors_;
};

class StopEventsWorker : public PromiseWorker {
 public:
  StopEventsWorker(Napi::Env env, std::shared_ptr<SessionState> st) : PromiseWorker(env, std::move(st), true) {}
  void Run() override {
    std::shared_ptr<EventWatcher> w = std::move(st_->events);
    st_->events.reset();
    if (w) w->Stop();
  }
};

class ShutdownWorker : public PromiseWorker {
 public:
  ShutdownWorker(Napi::Env env, std::shared_ptr<SessionState> st) : PromiseWorker(env, std::move(st), true) {}
  void Run() override {
    if (st_->closed) return;
    const nvmlReturn_t r = st_->CloseLocked();
    if (r != NVML_SUCCESS) failure_ = Failure{r, "nvmlShutdown"};
  }
};

// Base of the MIG workers: one GPU (discovery index) of an initialized session. Op() makes the NVML calls; when
// `reread` is set, the GPU is then read again (facts, MIG devices, handles: created or destroyed MIG devices change
// them) whatever Op() returned, and the result carries the new facts as `gpu`. Serialised with every other call
// of the session by SessionState::mu (so MIG calls on one GPU never overlap, and never overlap a sample).
class MigWorker : public PromiseWorker {
 public:
  MigWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu, bool reread)
      : PromiseWorker(env, std::move(st)), gpu_(gpu), reread_(reread) {}

 protected:
  void Run() final {
    if (!st_->initialized) {
      SetError("NVML session: MIG call before init()");
      return;
    }
    if (gpu_ >= st_->handles.size() || st_->handles[gpu_].gpu == nullptr) {
      SetError("NVML session: no readable GPU at discovery index " + std::to_string(gpu_) + ": call discover() again");
      return;
    }
    Op(st_->handles[gpu_].gpu);
    if (!reread_) return;
    GpuHandles h;
    DiscoverGpu(*st_->lib, gpu_, &facts_, &h);
    st_->gpm.ClearGpu(*st_->lib, static_cast<int>(gpu_));  // its MIG devices may be other GPU instances now
    st_->handles[gpu_] = std::move(h);
  }
  virtual void Op(nvmlDevice_t dev) = 0;
  virtual void Extra(Napi::Env env, Napi::Object o) {}
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    if (reread_) o.Set("gpu", GpuFactsToJs(env, *st_->lib, facts_));
    Extra(env, o);
    return o;
  }
  unsigned int gpu_;
  bool reread_;
  GpuFacts facts_;
};

class MigModeWorker : public MigWorker {
 public:
  MigModeWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu) : MigWorker(env, std::move(st), gpu, false) {}
  void Op(nvmlDevice_t dev) override { failure_ = MigModeOf(*st_->lib, dev, &current_, &pending_); }
  void Extra(Napi::Env env, Napi::Object o) override {
    o.Set("current", Napi::Number::New(env, current_));
    o.Set("pending", Napi::Number::New(env, pending_));
  }

 private:
  unsigned int current_ = 0, pending_ = 0;
};

class SetMigModeWorker : public MigWorker {
 public:
  SetMigModeWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu, bool enable)
      : MigWorker(env, std::move(st), gpu, true), enable_(enable) {}
  void Op(nvmlDevice_t dev) override {
    failure_ = SetMigModeOf(*st_->lib, dev, enable_, &activation_);
    if (!failure_) failure_ = MigModeOf(*st_->lib, dev, &current_, &pending_);
  }
  void Extra(Napi::Env env, Napi::Object o) override {
    o.Set("activationStatus", Napi::Number::New(env, static_cast<double>(activation_)));
    o.Set("activationStatusName", Napi::String::New(env, ReturnName(activation_)));
    o.Set("current", Napi::Number::New(env, current_));
    o.Set("pending", Napi::Number::New(env, pending_));
  }

 private:
  bool enable_;
  nvmlReturn_t activation_ = NVML_SUCCESS;
  unsigned int current_ = 0, pending_ = 0;
};

class CreateMigWorker : public MigWorker {
 public:
  CreateMigWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu, unsigned int profile,
                  unsigned int start, unsigned int size)
      : MigWorker(env, std::move(st), gpu, true), profile_(profile), start_(start), size_(size) {}
  void Op(nvmlDevice_t dev) override { failure_ = CreateMigDevice(*st_->lib, dev, profile_, start_, size_, &created_, &rollback_); }
  void Extra(Napi::Env env, Napi::Object o) override {
    o.Set("gpuInstanceId", Napi::Number::New(env, created_.gpu_instance_id));
    o.Set("computeInstanceProfileId", Napi::Number::New(env, created_.compute_instance_profile_id));
  }
  // A failure whose rollback (nvmlGpuInstanceDestroy) failed too carries that as `rollbackError`.
  void OnOK() override {
    if (failure_ && rollback_) {
      Napi::Env env = Env();
      Napi::HandleScope scope(env);
      Napi::Value err = MakeNvmlError(env, *st_->lib, *failure_);
      if (err.IsObject()) err.As<Napi::Object>().Set("rollbackError", MakeNvmlError(env, *st_->lib, *rollback_));
      deferred_.Reject(err);
      return;
    }
    MigWorker::OnOK();
  }

 private:
  unsigned int profile_, start_, size_;
  MigCreated created_;
  std::optional<Failure> rollback_;
};

class DestroyMigWorker : public MigWorker {
 public:
  DestroyMigWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu, unsigned int gi)
      : MigWorker(env, std::move(st), gpu, true), gi_(gi) {}
  void Op(nvmlDevice_t dev) override { failure_ = DestroyMigDevice(*st_->lib, dev, gi_, &found_); }
  void Extra(Napi::Env env, Napi::Object o) override { o.Set("found", Napi::Boolean::New(env, found_)); }

 private:
  unsigned int gi_;
  bool found_ = false;
};

class GpuInstancesWorker : public MigWorker {
 public:
  GpuInstancesWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu)
      : MigWorker(env, std::move(st), gpu, false) {}
  void Op(nvmlDevice_t dev) override { failure_ = ListGpuInstances(*st_->lib, dev, &listed_); }
  void Extra(Napi::Env env, Napi::Object o) override {
    Napi::Array list = Napi::Array::New(env, listed_.size());
    for (size_t i = 0; i < listed_.size(); i++) {
      Napi::Object gi = Napi::Object::New(env);
      gi.Set("gpuInstanceId", Napi::Number::New(env, listed_[i].gpu_instance_id));
      gi.Set("giProfileId", Napi::Number::New(env, listed_[i].gi_profile_id));
      gi.Set("start", Napi::Number::New(env, listed_[i].start));
      gi.Set("size", Napi::Number::New(env, listed_[i].size));
      list.Set(static_cast<uint32_t>(i), gi);
    }
    o.Set("gpuInstances", list);
  }

 private:
  std::vector<GpuInstanceListed> listed_;
};

class ReadGpuWorker : public MigWorker {
 public:
  ReadGpuWorker(Napi::Env env, std::shared_ptr<SessionState> st, unsigned int gpu) : MigWorker(env, std::move(st), gpu, true) {}
  void Op(nvmlDevice_t) override {}
};

// Argument `i` as an unsigned 32-bit integer, or a TypeError naming `what`.
unsigned int UintArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  }
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= 4294967295.0) || v != static_cast<double>(static_cast<unsigned int>(v))) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an unsigned 32-bit integer");
  }
  return static_cast<unsigned int>(v);
}

template <typename W>
Napi::Value QueueWorker(W* w) {
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

nvmlReturn_t SessionState::CloseLocked() {
  if (events) {
    events->Stop();
    events.reset();
  }
  gpm.Clear(*lib);  // nvmlGpmSampleFree needs an initialized library
  nvmlReturn_t r = NVML_SUCCESS;
  if (initialized) r = lib->nvmlShutdown();
  initialized = false;
  closed = true;
  handles.clear();
  return r;
}

Napi::Function Session::Define(Napi::Env env) {
  return DefineClass(env, "NvmlSession",
                     {InstanceMethod<&Session::Init>("init"), InstanceMethod<&Session::Discover>("discover"),
                      InstanceMethod<&Session::Sample>("sample"), InstanceMethod<&Session::StartEvents>("startEvents"),
                      InstanceMethod<&Session::StopEvents>("stopEvents"),
                      InstanceMethod<&Session::Shutdown>("shutdown"), InstanceMethod<&Session::MigMode>("migMode"),
                      InstanceMethod<&Session::SetMigMode>("setMigMode"),
                      InstanceMethod<&Session::CreateMigDevice>("createMigDevice"),
                      InstanceMethod<&Session::DestroyMigDevice>("destroyMigDevice"),
                      InstanceMethod<&Session::GpuInstances>("gpuInstances"),
                      InstanceMethod<&Session::ReadGpu>("readGpu")});
}

Napi::Object Session::NewInstance(Napi::Env env, std::shared_ptr<Library> lib) {
  AddonData* data = env.GetInstanceData<AddonData>();
  auto* holder = new std::shared_ptr<Library>(std::move(lib));
  Napi::External<std::shared_ptr<Library>> ext = Napi::External<std::shared_ptr<Library>>::New(
      env, holder, [](Napi::Env, std::shared_ptr<Library>* p) { delete p; });
  return data->session_ctor.New({ext});
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "NvmlSession objects come from open(path)");
  }
  state_ = std::make_shared<SessionState>();
  state_->lib = *info[0].As<Napi::External<std::shared_ptr<Library>>>().Data();
  Napi::Object self = info.This().As<Napi::Object>();
  self.Set("library", Napi::String::New(env, state_->lib->path()));
  Napi::Object symbols = Napi::Object::New(env);
  for (const auto& entry : state_->lib->resolved()) {
    symbols.Set(entry.first, entry.second.empty() ? env.Null() : Napi::String::New(env, entry.second));
  }
  self.Set("symbols", symbols);
}

Session::~Session() {
  if (!state_) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->closed) state_->CloseLocked();
}

Napi::Value Session::Init(const Napi::CallbackInfo& info) {
  auto* w = new InitWorker(info.Env(), state_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::Discover(const Napi::CallbackInfo& info) {
  auto* w = new DiscoverWorker(info.Env(), state_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::Sample(const Napi::CallbackInfo& info) {
  std::vector<int> skip;
  if (info.Length() > 0 && info[0].IsArray()) {
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (v.IsNumber()) skip.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  auto* w = new SampleWorker(info.Env(), state_, std::move(skip));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::StartEvents(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "startEvents(callback): callback must be a function");
  }
  auto* w = new StartEventsWorker(info.Env(), state_, info[0].As<Napi::Function>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::StopEvents(const Napi::CallbackInfo& info) {
  auto* w = new StopEventsWorker(info.Env(), state_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::Shutdown(const Napi::CallbackInfo& info) {
  auto* w = new ShutdownWorker(info.Env(), state_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Session::MigMode(const Napi::CallbackInfo& info) {
  return QueueWorker(new MigModeWorker(info.Env(), state_, UintArg(info, 0, "migMode(gpu): gpu")));
}

Napi::Value Session::SetMigMode(const Napi::CallbackInfo& info) {
  const unsigned int gpu = UintArg(info, 0, "setMigMode(gpu, enabled): gpu");
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), "setMigMode(gpu, enabled): enabled must be a boolean");
  }
  return QueueWorker(new SetMigModeWorker(info.Env(), state_, gpu, info[1].As<Napi::Boolean>().Value()));
}

Napi::Value Session::CreateMigDevice(const Napi::CallbackInfo& info) {
  const unsigned int gpu = UintArg(info, 0, "createMigDevice(gpu, giProfileId, start, size): gpu");
  const unsigned int profile = UintArg(info, 1, "createMigDevice(gpu, giProfileId, start, size): giProfileId");
  const unsigned int start = UintArg(info, 2, "createMigDevice(gpu, giProfileId, start, size): start");
  const unsigned int size = UintArg(info, 3, "createMigDevice(gpu, giProfileId, start, size): size");
  return QueueWorker(new CreateMigWorker(info.Env(), state_, gpu, profile, start, size));
}

Napi::Value Session::DestroyMigDevice(const Napi::CallbackInfo& info) {
  const unsigned int gpu = UintArg(info, 0, "destroyMigDevice(gpu, gpuInstanceId): gpu");
  const unsigned int gi = UintArg(info, 1, "destroyMigDevice(gpu, gpuInstanceId): gpuInstanceId");
  return QueueWorker(new DestroyMigWorker(info.Env(), state_, gpu, gi));
}

Napi::Value Session::GpuInstances(const Napi::CallbackInfo& info) {
  return QueueWorker(new GpuInstancesWorker(info.Env(), state_, UintArg(info, 0, "gpuInstances(gpu): gpu")));
}

Napi::Value Session::ReadGpu(const Napi::CallbackInfo& info) {
  return QueueWorker(new ReadGpuWorker(info.Env(), state_, UintArg(info, 0, "readGpu(gpu): gpu")));
}

}  // namespace gpulet
