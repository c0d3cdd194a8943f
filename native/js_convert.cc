#include "js_convert.h"

#include <string>

#include "nvml_gpm.h"

namespace gpulet {

namespace {

template <typename T>
void SetNum(Napi::Env env, Napi::Object o, const char* key, const std::optional<T>& v) {
  if (v) o.Set(key, Napi::Number::New(env, static_cast<double>(*v)));
}

void SetStr(Napi::Env env, Napi::Object o, const char* key, const std::optional<std::string>& v) {
  if (v) o.Set(key, Napi::String::New(env, *v));
}

void SetErrors(Napi::Env env, const Library& lib, Napi::Object o, const std::vector<Failure>& errors, bool always) {
  if (errors.empty() && !always) return;
  Napi::Array a = Napi::Array::New(env, errors.size());
  for (size_t i = 0; i < errors.size(); i++) a.Set(static_cast<uint32_t>(i), MakeNvmlError(env, lib, errors[i]));
  o.Set("errors", a);
}

void SetError(Napi::Env env, const Library& lib, Napi::Object o, const std::optional<Failure>& f) {
  if (f) o.Set("error", MakeNvmlError(env, lib, *f));
}

Napi::Object ProfileToJs(Napi::Env env, const GiProfileFacts& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", p.index);
  o.Set("id", p.id);
  o.Set("name", p.name);
  o.Set("sliceCount", p.slice_count);
  o.Set("instanceCount", p.instance_count);
  o.Set("multiprocessorCount", p.multiprocessor_count);
  o.Set("copyEngineCount", p.copy_engine_count);
  o.Set("decoderCount", p.decoder_count);
  o.Set("encoderCount", p.encoder_count);
  o.Set("jpegCount", p.jpeg_count);
  o.Set("ofaCount", p.ofa_count);
  o.Set("memorySizeMB", Napi::Number::New(env, static_cast<double>(p.memory_size_mb)));
  Napi::Array placements = Napi::Array::New(env, p.placements.size());
  for (size_t i = 0; i < p.placements.size(); i++) {
    Napi::Object pl = Napi::Object::New(env);
    pl.Set("start", p.placements[i].start);
    pl.Set("size", p.placements[i].size);
    placements.Set(static_cast<uint32_t>(i), pl);
  }
  o.Set("placements", placements);
  return o;
}

Napi::Object MigToJs(Napi::Env env, const Library& lib, const MigFacts& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", m.index);
  SetError(env, lib, o, m.error);
  SetStr(env, o, "uuid", m.uuid);
  SetNum(env, o, "gpuInstanceId", m.gpu_instance_id);
  SetNum(env, o, "computeInstanceId", m.compute_instance_id);
  SetNum(env, o, "profileId", m.profile_id);
  SetNum(env, o, "placementStart", m.placement_start);
  SetNum(env, o, "placementSize", m.placement_size);
  if (m.profile) o.Set("profile", ProfileToJs(env, *m.profile));
  SetErrors(env, lib, o, m.errors, true);
  return o;
}

Napi::Object GpuToJs(Napi::Env env, const Library& lib, const GpuFacts& g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", g.index);
  SetError(env, lib, o, g.error);
  SetStr(env, o, "uuid", g.uuid);
  SetStr(env, o, "serial", g.serial);
  SetStr(env, o, "name", g.name);
  SetNum(env, o, "minor", g.minor);
  SetNum(env, o, "brand", g.brand);
  SetNum(env, o, "architecture", g.architecture);
  SetNum(env, o, "ccMajor", g.cc_major);
  SetNum(env, o, "ccMinor", g.cc_minor);
  if (g.pci) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("busId", g.pci->bus_id);
    p.Set("domain", g.pci->domain);
    p.Set("bus", g.pci->bus);
    p.Set("device", g.pci->device);
    p.Set("pciDeviceId", g.pci->pci_device_id);
    p.Set("pciSubSystemId", g.pci->pci_sub_system_id);
    o.Set("pci", p);
  }
  SetNum(env, o, "memoryTotal", g.memory_total);
  SetNum(env, o, "multiprocessors", g.multiprocessors);
  SetNum(env, o, "powerLimit", g.power_limit);
  SetNum(env, o, "migCurrent", g.mig_current);
  SetNum(env, o, "migPending", g.mig_pending);
  SetNum(env, o, "addressingMode", g.addressing_mode);
  SetStr(env, o, "vbiosVersion", g.vbios_version);
  Napi::Array migs = Napi::Array::New(env, g.migs.size());
  for (size_t j = 0; j < g.migs.size(); j++) migs.Set(static_cast<uint32_t>(j), MigToJs(env, lib, g.migs[j]));
  o.Set("migDevices", migs);
  Napi::Array profiles = Napi::Array::New(env, g.profiles.size());
  for (size_t j = 0; j < g.profiles.size(); j++) profiles.Set(static_cast<uint32_t>(j), ProfileToJs(env, g.profiles[j]));
  o.Set("migProfiles", profiles);
  SetErrors(env, lib, o, g.errors, true);
  return o;
}

}  // namespace

Napi::Object GpuFactsToJs(Napi::Env env, const Library& lib, const GpuFacts& g) { return GpuToJs(env, lib, g); }

Napi::Value MakeNvmlError(Napi::Env env, const Library& lib, const Failure& failure) {
  std::string message = lib.ErrorString(failure.code);
  const std::string name = ReturnName(failure.code);
  if (message.empty()) message = name;
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->error_class.IsEmpty()) {
    return data->error_class.New({Napi::String::New(env, message), Napi::Number::New(env, static_cast<double>(failure.code)),
                                  Napi::String::New(env, name), Napi::String::New(env, failure.function)});
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::Number::New(env, static_cast<double>(failure.code)));
  err.Set("name", Napi::String::New(env, name));
  err.Set("nvmlFunction", Napi::String::New(env, failure.function));
  return err.Value();
}

Napi::Object DiscoveryToJs(Napi::Env env, const Library& lib, const Discovery& d) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object s = Napi::Object::New(env);
  SetStr(env, s, "driverVersion", d.system.driver_version);
  SetStr(env, s, "nvmlVersion", d.system.nvml_version);
  SetNum(env, s, "cudaDriverVersion", d.system.cuda_driver_version);
  SetErrors(env, lib, s, d.system.errors, true);
  o.Set("system", s);
  Napi::Array gpus = Napi::Array::New(env, d.gpus.size());
  for (size_t i = 0; i < d.gpus.size(); i++) gpus.Set(static_cast<uint32_t>(i), GpuToJs(env, lib, d.gpus[i]));
  o.Set("gpus", gpus);
  return o;
}

Napi::Object ReadingToJs(Napi::Env env, const Library& lib, const Reading& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("gpu", r.gpu);
  o.Set("mig", r.mig);
  SetError(env, lib, o, r.error);
  SetErrors(env, lib, o, r.errors, false);
  SetNum(env, o, "gpuUtil", r.gpu_util);
  SetNum(env, o, "memUtil", r.mem_util);
  SetNum(env, o, "encUtil", r.enc_util);
  SetNum(env, o, "decUtil", r.dec_util);
  SetNum(env, o, "memTotal", r.mem_total);
  SetNum(env, o, "memReserved", r.mem_reserved);
  SetNum(env, o, "memFree", r.mem_free);
  SetNum(env, o, "memUsed", r.mem_used);
  SetNum(env, o, "power", r.power);
  SetNum(env, o, "powerLimit", r.power_limit);
  SetNum(env, o, "energy", r.energy);
  SetNum(env, o, "gpuTemp", r.gpu_temp);
  SetNum(env, o, "memTemp", r.mem_temp);
  SetNum(env, o, "smClock", r.sm_clock);
  SetNum(env, o, "memClock", r.mem_clock);
  SetNum(env, o, "clockReasons", r.clock_reasons);
  SetNum(env, o, "eccCorrected", r.ecc_corrected);
  SetNum(env, o, "eccUncorrected", r.ecc_uncorrected);
  SetNum(env, o, "remappedCorrectable", r.remapped_correctable);
  SetNum(env, o, "remappedUncorrectable", r.remapped_uncorrectable);
  SetNum(env, o, "remappedFailure", r.remapped_failure);
  SetNum(env, o, "nvlinkTxKiB", r.nvlink_tx_kib);
  SetNum(env, o, "nvlinkRxKiB", r.nvlink_rx_kib);
  SetNum(env, o, "pcieReplays", r.pcie_replays);
  SetNum(env, o, "pcieTxKBs", r.pcie_tx_kbs);
  SetNum(env, o, "pcieRxKBs", r.pcie_rx_kbs);
  if (r.has_gpm) {
    Napi::Object g = Napi::Object::New(env);
    for (size_t i = 0; i < kGpmMetrics; i++) SetNum(env, g, kGpmMetricNames[i], r.gpm[i]);
    o.Set("gpm", g);
  }
  return o;
}

}  // namespace gpulet
