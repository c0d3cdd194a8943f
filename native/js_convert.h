// Conversion of the plain structs of nvml_read.h to JS values, on the JS thread. NVML failures become
// instances of the JS error class TypeScript handed over with setErrorClass() (per environment, in the
// addon's instance data): new ErrorClass(message, code, name, nvmlFunction).
#pragma once

#include <napi.h>

#include "nvml_lib.h"
#include "nvml_read.h"

namespace gpulet {

// Per-environment state of the addon (napi instance data): the JS error class and the Session constructor.
struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference session_ctor;
};

// An instance of the registered error class (a plain Error with code/name/nvmlFunction when none is set).
Napi::Value MakeNvmlError(Napi::Env env, const Library& lib, const Failure& failure);

// One GPU's facts, as in DiscoveryToJs's `gpus` (after a MIG change).
Napi::Object GpuFactsToJs(Napi::Env env, const Library& lib, const GpuFacts& g);

Napi::Object DiscoveryToJs(Napi::Env env, const Library& lib, const Discovery& d);
Napi::Object ReadingToJs(Napi::Env env, const Library& lib, const Reading& r);

}  // namespace gpulet
