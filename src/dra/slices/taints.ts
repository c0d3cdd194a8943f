/**
 * Device taints (KEP-5055, resource.k8s.io/v1 `Device.taints`) from the health conditions of
 * src/gpu/health.ts, named exactly as NVIDIA's DRA driver names them so tolerations carry over by changing
 * the domain (`gpu.nvidia.com` → gpulet's driver name). Source: kubernetes-sigs/dra-driver-nvidia-gpu
 * cmd/gpu-kubelet-plugin/device_health.go, `TaintKeyXID` / `TaintKeyGPULost` / `TaintKeyUnmonitored` and
 * `healthEventToTaint` (the "Option A" schema of that repository's issue #905, implemented in PR #983):
 *
 * | condition                | key                      | value             | effect                               |
 * |--------------------------|--------------------------|-------------------|--------------------------------------|
 * | fatal XID                | `<driver>/xid`           | the XID, decimal  | NoSchedule (or `--device-taint-effect`) |
 * | application XID          | `<driver>/xid`           | the XID, decimal  | None (informational)                 |
 * | lost / unavailable       | `<driver>/gpu-lost`      | (none)            | NoSchedule (or `--device-taint-effect`) |
 * | events not registrable   | `<driver>/unmonitored`   | (none)            | None                                 |
 *
 * `timeAdded` is when the condition began (second precision), so it stays put across slice updates (the API
 * server would otherwise stamp the time of every update: k8s.io/api resource/v1 `DeviceTaint.TimeAdded`).
 * The effect `None` is valid in resource.k8s.io/v1 (`DeviceTaintEffectNone`; k8s.io/kubernetes
 * pkg/apis/resource/validation `validDeviceTaintEffects`). Pure.
 */
import type { V1DeviceTaint } from '@kubernetes/client-node';
import type { DeviceConditions } from '../../gpu/health.js';

/** The effects a driver-published taint can have (resource.k8s.io/v1 `DeviceTaintEffect`). */
export const DEVICE_TAINT_EFFECTS = ['None', 'NoSchedule', 'NoExecute'] as const;
/** One of {@link DEVICE_TAINT_EFFECTS}. */
export type DeviceTaintEffect = (typeof DEVICE_TAINT_EFFECTS)[number];
/** Effects selectable for the taints that keep devices from use (`--device-taint-effect`). */
export const FAULT_TAINT_EFFECTS = ['NoSchedule', 'NoExecute'] as const;
/** One of {@link FAULT_TAINT_EFFECTS}. */
export type FaultTaintEffect = (typeof FAULT_TAINT_EFFECTS)[number];

/** `<driver>/xid`, e.g. `gpu.gpulet.dev/xid` (NVIDIA: `gpu.nvidia.com/xid`). */
export function xidTaintKey(driverName: string): string {
  return `${driverName}/xid`;
}
/** `<driver>/gpu-lost` (NVIDIA: `gpu.nvidia.com/gpu-lost`). */
export function gpuLostTaintKey(driverName: string): string {
  return `${driverName}/gpu-lost`;
}
/** `<driver>/unmonitored` (NVIDIA: `gpu.nvidia.com/unmonitored`). */
export function unmonitoredTaintKey(driverName: string): string {
  return `${driverName}/unmonitored`;
}

const at = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/**
 * The taints of one device, in a fixed order (xid, gpu-lost, unmonitored); `[]` when nothing is wrong
 * (a `degraded` device is not tainted, as NVIDIA taints no corrected ECC error).
 * @param faultEffect effect of the fatal `xid` and the `gpu-lost` taints (default NoSchedule; NoExecute lets
 *   the device-taint-eviction controller evict the pods using the device).
 */
export function taintsFor(driverName: string, c: DeviceConditions, faultEffect: FaultTaintEffect = 'NoSchedule'): V1DeviceTaint[] {
  const out: V1DeviceTaint[] = [];
  if (c.xid !== undefined) {
    out.push({ key: xidTaintKey(driverName), value: String(c.xid.xid), effect: c.xid.fatal ? faultEffect : 'None', timeAdded: at(c.xid.sinceMs) });
  }
  if (c.lost !== undefined) out.push({ key: gpuLostTaintKey(driverName), effect: faultEffect, timeAdded: at(c.lost.sinceMs) });
  if (c.unmonitored !== undefined) out.push({ key: unmonitoredTaintKey(driverName), effect: 'None', timeAdded: at(c.unmonitored.sinceMs) });
  return out;
}

/**
 * {@link taintsFor} every device that has conditions: UUID (`GPU-...`/`MIG-...`) → its non-empty taint list:
 * what `BuildSlicesInput.taints` (./build.ts) takes.
 */
export function taintsByUuid(
  driverName: string,
  conditions: ReadonlyMap<string, DeviceConditions>,
  faultEffect: FaultTaintEffect = 'NoSchedule',
): Map<string, V1DeviceTaint[]> {
  const out = new Map<string, V1DeviceTaint[]>();
  for (const [uuid, c] of conditions) {
    const t = taintsFor(driverName, c, faultEffect);
    if (t.length > 0) out.set(uuid, t);
  }
  return out;
}
