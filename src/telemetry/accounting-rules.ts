/**
 * The per-device rules of the per-claim accounting (accounting.ts): which activity counts as active, which energy
 * counter a device draws from and its share of it, which memory counts as used, and the attributes of a claim's
 * series. Pure functions of one sample or the inventory.
 */
import type { ClaimRef, PodRef } from '../model/types.js';
import type { DeviceSample, GpuInfo, Inventory } from '../gpu/types.js';
import type { Attrs } from './attributes.js';

/**
 * The fraction (0..1) of an interval a device was active, from one sample: GPM's SM activity
 * (`DeviceSample.gpm.smActive`, `NVML_GPM_METRIC_SM_UTIL` ÷ 100 over the last interval; Hopper and newer, per GPU
 * and per MIG device) where it is sampled, so active-seconds are SM-active-seconds; otherwise NVML's utilization
 * (`nvmlDeviceGetUtilizationRates.gpu`, percent ÷ 100: the fraction of the last sample period in which a kernel
 * ran), utilization-seconds. Undefined where the device gives neither (a MIG device without GPM, a GPU in MIG
 * mode without GPM), never 0.
 */
export function activeFraction(sample: DeviceSample): number | undefined {
  const sm = sample.gpm?.smActive;
  if (sm !== undefined && Number.isFinite(sm)) return Math.min(1, Math.max(0, sm));
  const percent = sample.gpuUtilizationPercent;
  if (percent === undefined || !Number.isFinite(percent)) return undefined;
  return Math.min(1, Math.max(0, percent / 100));
}

/** Compute slices of a MIG-capable GPU when its profile table does not say: 7 on A100, H100, H200 and B200. */
export const DEFAULT_COMPUTE_SLICES = 7;

/**
 * The share of its parent GPU's energy attributed to a MIG device: the compute slices of its GPU instance (the
 * `Ng` of its profile name, `nvmlGpuInstanceProfileInfo_v2_t.sliceCount`) over the GPU's compute slices.
 * Compute slices, not SMs, because they add up: seven 1g instances are the whole GPU, while their SMs are not
 * (an H100 has 132 SMs, a 1g.10gb instance 16). Undefined when the profile name has no `Ng` prefix.
 */
export function migEnergyShare(profile: string, gpuComputeSlices: number): number | undefined {
  const m = /^(\d+)g\./.exec(profile);
  if (m === null || !(gpuComputeSlices > 0)) return undefined;
  return Math.min(1, Number(m[1]) / gpuComputeSlices);
}

/** Where a device's energy comes from, and its share of it. */
export interface EnergySource {
  /** The UUID whose `energyMillijoules` counts for the device (itself, or a MIG device's parent GPU). */
  readonly source: string;
  /** Share of the source's energy (1 for a full GPU); undefined: not attributable. */
  readonly share: number | undefined;
  /** Power limit of the source GPU, mW (0: unknown), bounding a plausible delta. */
  readonly powerLimitMw: number;
}

/**
 * The energy source of every GPU and MIG device of `inventory`: a GPU is its own (share 1); a MIG device draws
 * from its parent GPU at {@link migEnergyShare} of its profile over the GPU's compute slices (`computeSlicesOf`,
 * default {@link DEFAULT_COMPUTE_SLICES}). Keyed by UUID.
 */
export function energySources(inventory: Inventory, computeSlicesOf?: (gpu: GpuInfo) => number | undefined): ReadonlyMap<string, EnergySource> {
  const map = new Map<string, EnergySource>();
  for (const gpu of inventory.gpus) {
    const powerLimitMw = gpu.powerLimitMilliwatts;
    map.set(gpu.uuid, { source: gpu.uuid, share: 1, powerLimitMw });
    const slices = computeSlicesOf?.(gpu) ?? DEFAULT_COMPUTE_SLICES;
    for (const mig of gpu.migDevices) map.set(mig.uuid, { source: gpu.uuid, share: migEnergyShare(mig.profile, slices), powerLimitMw });
  }
  return map;
}

/** Memory used by a device for accounting: used less reserved where reserved is known, bytes. */
export function memoryUsed(d: DeviceSample | undefined): number | undefined {
  const used = d?.memoryUsedBytes;
  if (used === undefined || !Number.isFinite(used)) return undefined;
  const reserved = d?.memoryReservedBytes;
  return reserved !== undefined && Number.isFinite(reserved) ? Math.max(0, used - reserved) : used;
}

/** The attributes of a claim's accounting series (see {@link ClaimTotals.attributes}). */
export function claimAttributes(claim: ClaimRef, pods: readonly PodRef[]): Attrs {
  const attrs: Record<string, string> = {
    'k8s.namespace.name': claim.namespace,
    'gpulet.claim.name': claim.name,
    'gpulet.claim.namespace': claim.namespace,
    'gpulet.claim.uid': claim.uid,
  };
  const only = pods.length === 1 ? pods[0] : undefined;
  if (only !== undefined) {
    attrs['k8s.pod.name'] = only.name;
    attrs['k8s.pod.uid'] = only.uid;
  }
  return attrs;
}

/** Memory used by `devices` together ({@link memoryUsed} summed), bytes; undefined when none of them reports it. */
export function memoryUsedSum(devices: Iterable<{ readonly uuid: string }>, readings: ReadonlyMap<string, DeviceSample>): number | undefined {
  let sum: number | undefined;
  for (const d of devices) {
    const used = memoryUsed(readings.get(d.uuid));
    if (used !== undefined) sum = (sum ?? 0) + used;
  }
  return sum;
}

/**
 * The energy an interval of `dtSeconds` adds, from the cumulative counter's readings `prevMj` and `nowMj`
 * (`nvmlDeviceGetTotalEnergyConsumption`, mJ): their difference, or undefined when the counter went back (a
 * driver reload, a reboot) or rose by more than twice the GPU's power limit over the interval (`powerLimitMw`;
 * 0: unknown, no bound). Never negative.
 */
export function plausibleEnergyDeltaMj(prevMj: number, nowMj: number, powerLimitMw: number, dtSeconds: number): number | undefined {
  const delta = nowMj - prevMj;
  const bound = powerLimitMw > 0 ? 2 * powerLimitMw * dtSeconds : Infinity;
  return delta >= 0 && delta <= bound ? delta : undefined;
}
