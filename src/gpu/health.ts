/**
 * Health policy: turns the backend's {@link HealthEvent}s into a per-device {@link DeviceHealthState}.
 *
 * Policy (pure, documented, tested in test/gpu/health.test.ts):
 * - XID errors. NVIDIA's DRA driver ignores the XIDs that are caused by the *application*, not the GPU:
 *   13 (graphics engine exception), 31 (GPU memory page fault), 43 (GPU stopped processing),
 *   45 (preemptive cleanup, due to previous errors), 68 (video processor exception) and
 *   109 (context switch timeout) — `xidsToSkip()` in NVIDIA/k8s-dra-driver-gpu
 *   cmd/gpu-kubelet-plugin/device_health.go. These leave the device `ok` (they are still counted, for
 *   `hw.errors{error.type="<xid>"}`). Every other XID (e.g. 48 double-bit ECC, 63/64 row-remapping
 *   events, 74 NVLink, 79 fallen off the bus, 92 high single-bit ECC rate, 94/95 contained/uncontained
 *   ECC, 119/120 GSP) marks the device `failed`, as NVIDIA's driver marks it unhealthy. More XIDs can be
 *   ignored with `ignoredXids` (NVIDIA's `additionalXidsToIgnore`).
 * - `ecc-double-bit` → `failed`; `ecc-single-bit` → `degraded` (corrected, but a warning sign).
 * - `gpu-unavailable` / `gpu-lost` → `failed`.
 * - State only worsens (ok < degraded < failed) for the life of the process: like NVIDIA's driver,
 *   recovery needs a GPU reset and an agent restart.
 * - A MIG device's effective state is the worse of its own state and its parent GPU's: a failed GPU fails
 *   all of its MIG devices; an event on one MIG device does not touch its siblings or the parent.
 */
import type { DeviceHealthState, GpuBackend, HealthEvent, Inventory } from './types.js';

/** XIDs caused by applications, ignored for health like NVIDIA's DRA driver does (see module docs). */
export const APPLICATION_XIDS: readonly number[] = [13, 31, 43, 45, 68, 109];

const RANK: Readonly<Record<DeviceHealthState, number>> = { ok: 0, degraded: 1, failed: 2 };

/** The worse of two states. */
export function worstState(a: DeviceHealthState, b: DeviceHealthState): DeviceHealthState {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * The state one event implies for the device it names, by the policy in the module docs.
 * @param ignoredXids XIDs that leave the device `ok` (defaults to {@link APPLICATION_XIDS}).
 */
export function stateForEvent(event: HealthEvent, ignoredXids: ReadonlySet<number> = new Set(APPLICATION_XIDS)): DeviceHealthState {
  switch (event.kind) {
    case 'xid':
      if (event.xid === undefined || !Number.isInteger(event.xid)) return 'failed';
      return ignoredXids.has(event.xid) ? 'ok' : 'failed';
    case 'ecc-double-bit':
      return 'failed';
    case 'ecc-single-bit':
      return 'degraded';
    case 'gpu-unavailable':
    case 'gpu-lost':
      return 'failed';
  }
}

/** A change of one device's effective state, given to {@link HealthTracker.onChange} listeners. */
export interface HealthChange {
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
  readonly previous: DeviceHealthState;
  readonly state: DeviceHealthState;
  /** The event that caused it (for a MIG device that inherits, the event on its parent). */
  readonly event: HealthEvent;
}

/** Options of {@link HealthTracker}. */
export interface HealthTrackerOptions {
  /** Extra XIDs to ignore on top of {@link APPLICATION_XIDS} (NVIDIA's `additionalXidsToIgnore`). */
  readonly additionalIgnoredXids?: readonly number[];
}

/**
 * Per-device health, fed by {@link HealthTracker.record} (or {@link HealthTracker.attach} to a backend).
 * Never throws on bad input: an event for an unknown UUID is tracked under that UUID.
 */
export class HealthTracker {
  private readonly own = new Map<string, DeviceHealthState>();
  private readonly xids = new Map<string, Map<number, number>>();
  private readonly lastXidByUuid = new Map<string, number>();
  private readonly parentOf = new Map<string, string>();
  private readonly childrenOf = new Map<string, string[]>();
  private readonly listeners = new Set<(change: HealthChange) => void>();
  private readonly ignored: ReadonlySet<number>;

  /**
   * @param inventory the node's devices: gives MIG → parent links (used for inheritance) and the list of
   *   devices reported by {@link states}. Call {@link setInventory} after a rediscovery.
   */
  constructor(inventory: Inventory, options: HealthTrackerOptions = {}) {
    this.ignored = new Set([...APPLICATION_XIDS, ...(options.additionalIgnoredXids ?? [])]);
    this.setInventory(inventory);
  }

  /** Replace the MIG → parent links (after a rediscovery). Recorded states are kept. */
  setInventory(inventory: Inventory): void {
    this.parentOf.clear();
    this.childrenOf.clear();
    for (const gpu of inventory.gpus) {
      if (!this.own.has(gpu.uuid)) this.own.set(gpu.uuid, 'ok');
      const children: string[] = [];
      for (const mig of gpu.migDevices) {
        this.parentOf.set(mig.uuid, gpu.uuid);
        children.push(mig.uuid);
        if (!this.own.has(mig.uuid)) this.own.set(mig.uuid, 'ok');
      }
      this.childrenOf.set(gpu.uuid, children);
    }
  }

  /** Subscribe the tracker to a backend's health events; returns the unsubscribe function. */
  attach(backend: Pick<GpuBackend, 'onHealthEvent'>): () => void {
    return backend.onHealthEvent((event) => this.record(event));
  }

  /**
   * Apply one event: count it (XIDs), update the device's state and notify listeners of every device whose
   * effective state changed (the device, and its MIG devices when it is a GPU). Listener errors are swallowed.
   */
  record(event: HealthEvent): void {
    if (typeof event.uuid !== 'string' || event.uuid === '') return;
    if (event.kind === 'xid' && event.xid !== undefined && Number.isInteger(event.xid)) {
      const counts = this.xids.get(event.uuid) ?? new Map<number, number>();
      counts.set(event.xid, (counts.get(event.xid) ?? 0) + 1);
      this.xids.set(event.uuid, counts);
      this.lastXidByUuid.set(event.uuid, event.xid);
    }
    const affected = [event.uuid, ...(this.childrenOf.get(event.uuid) ?? [])];
    const before = new Map(affected.map((u) => [u, this.state(u)]));
    const own = this.own.get(event.uuid) ?? 'ok';
    this.own.set(event.uuid, worstState(own, stateForEvent(event, this.ignored)));
    for (const uuid of affected) {
      const previous = before.get(uuid) ?? 'ok';
      const state = this.state(uuid);
      if (state !== previous) this.emit({ uuid, previous, state, event });
    }
  }

  /** Effective state of a device: its own, worsened by its parent GPU's for a MIG device. Unknown → `ok`. */
  state(uuid: string): DeviceHealthState {
    const own = this.own.get(uuid) ?? 'ok';
    const parent = this.parentOf.get(uuid);
    return parent === undefined ? own : worstState(own, this.own.get(parent) ?? 'ok');
  }

  /** Effective state of every known device (inventory devices and any UUID seen in an event). */
  states(): Map<string, DeviceHealthState> {
    return new Map([...this.own.keys()].map((u) => [u, this.state(u)]));
  }

  /** UUIDs whose effective state is `failed` (what the DRA health service reports as UNHEALTHY). */
  unhealthyUuids(): string[] {
    return [...this.own.keys()].filter((u) => this.state(u) === 'failed');
  }

  /** XID counts of one device since start: XID → occurrences (for `hw.errors{error.type="<xid>"}`). */
  xidCounts(uuid: string): ReadonlyMap<number, number> {
    return this.xids.get(uuid) ?? new Map<number, number>();
  }

  /** Last XID seen on a device (dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS`), or undefined. */
  lastXid(uuid: string): number | undefined {
    return this.lastXidByUuid.get(uuid);
  }

  /** Listen to effective-state changes; returns the unsubscribe function. */
  onChange(listener: (change: HealthChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(change: HealthChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // A listener's failure must not stop the others nor the event source.
      }
    }
  }
}
