#include "session.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "js_convert.h"

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
    gpulet::Sample(*st_->lib, st_->handles, skip_, &readings_);
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

}  // namespace

nvmlReturn_t SessionState::CloseLocked() {
  if (events) {
    events->Stop();
    events.reset();
  }
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
                      InstanceMethod<&Session::Shutdown>("shutdown")});
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

}  // namespace gpulet
