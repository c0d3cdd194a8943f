// gpulet_nvml: N-API entry point of gpulet's native addon (placeholder for the full NVML binding).
// Exports:
//   addonVersion: string
//   probeLibrary(path: string): { loaded: boolean, path: string, error?: string, nvmlInitV2?: boolean }
// C++ exceptions are on (NAPI_CPP_EXCEPTIONS): a Napi::Error thrown here becomes a JS exception.
#include <napi.h>

#include <string>

#include "probe.h"

#ifndef GPULET_ADDON_VERSION
#define GPULET_ADDON_VERSION "0.1.0"
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("addonVersion", Napi::String::New(env, GPULET_ADDON_VERSION));
  exports.Set("probeLibrary", Napi::Function::New(env, ProbeLibrary, "probeLibrary"));
  return exports;
}

}  // namespace

NODE_API_MODULE(gpulet_nvml, Init)
