// gpulet_nvml: N-API entry point of gpulet's native NVML binding. Exports (typed in src/gpu/nvml/addon.ts):
//   addonVersion: string              package.json's version (GPULET_ADDON_VERSION, defined by binding.gyp)
//   probeLibrary(path: string): { loaded: boolean, path: string, error?: string, nvmlInitV2?: boolean }
//   setErrorClass(ctor: new (message, code, name, nvmlFunction) => Error): void
//       the JS class every NVML failure becomes (per environment; call once after loading)
//   open(path: string): { ok: true, session: NvmlSession }
//                     | { ok: false, error: string, missingSymbol?: string }
//       dlopen(path, RTLD_NOW | RTLD_LOCAL) + dlsym table (nvml_lib.h); makes no NVML call. See session.h.
// Per-environment state lives in napi instance data (AddonData), so the addon loads and unloads cleanly in
// worker threads. C++ exceptions are on (NAPI_CPP_EXCEPTIONS): a Napi::Error thrown here becomes a JS exception.
#include <napi.h>

#include <string>

#include "js_convert.h"
#include "nvml_lib.h"
#include "probe.h"
#include "session.h"

// The package version, defined by binding.gyp from package.json: no second copy of it here.
#ifndef GPULET_ADDON_VERSION
#error "GPULET_ADDON_VERSION is not defined: build the addon with node-gyp (binding.gyp defines it from package.json)"
#endif

namespace {

Napi::Value ProbeLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "probeLibrary(path): path must be a string");
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const gpulet::ProbeResult probe = gpulet::ProbeLibrary(path);

  Napi::Object out = Napi::Object::New(env);
  out.Set("loaded", Napi::Boolean::New(env, probe.loaded));
  out.Set("path", Napi::String::New(env, path));
  if (probe.loaded) {
    out.Set("nvmlInitV2", Napi::Boolean::New(env, probe.nvml_init_v2));
  } else {
    out.Set("error", Napi::String::New(env, probe.error));
  }
  return out;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "setErrorClass(ctor): ctor must be a class");
  }
  gpulet::AddonData* data = env.GetInstanceData<gpulet::AddonData>();
  data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "open(path): path must be a string");
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  gpulet::Library::OpenResult r = gpulet::Library::Open(path);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ok", Napi::Boolean::New(env, r.library != nullptr));
  if (r.library) {
    out.Set("session", gpulet::Session::NewInstance(env, r.library));
  } else {
    out.Set("error", Napi::String::New(env, r.error));
    if (!r.missing_symbol.empty()) out.Set("missingSymbol", Napi::String::New(env, r.missing_symbol));
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new gpulet::AddonData();
  data->session_ctor = Napi::Persistent(gpulet::Session::Define(env));
  env.SetInstanceData<gpulet::AddonData>(data);
  exports.Set("addonVersion", Napi::String::New(env, GPULET_ADDON_VERSION));
  exports.Set("probeLibrary", Napi::Function::New(env, ProbeLibrary, "probeLibrary"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  return exports;
}

}  // namespace

NODE_API_MODULE(gpulet_nvml, Init)
