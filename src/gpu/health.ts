/**
 * Health policy: turns the backend's {@link HealthEvent}s into per-device {@link DeviceConditions} (what the
 * ResourceSlice taints and the kubelet health stream show) and a {@link DeviceHealthState}.
 *
 * Policy (pure apart from one timer, injectable clock and timer; tested in test/gpu/health.test.ts):
 * - XID errors. NVIDIA's DRA driver treats the XIDs that are caused by the *application*, not the GPU, as
 *   non-fatal: 13 (graphics engine exception), 31 (GPU memory page fault), 43 (GPU stopped processing),
 *   45 (preemptive cleanup, due to previous errors), 68 (video processor exception) and 109 (context switch
 *   timeout) — `xidsToSkip()` in kubernetes-sigs/dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/device_health.go.
 *   They leave the device `ok` and only set an informational `xid` condition (NVIDIA: taint effect `None`,
 *   `IsEventNonFatal`). Every other XID (e.g. 48 double-bit ECC, 63/64 row remapping, 74 NVLink, 79 fallen
 *   off the bus, 92 high single-bit ECC rate, 94/95 contained/uncontained ECC, 119/120 GSP) sets a fatal
 *   `xid` condition: the device is `failed`. More XIDs can be made non-fatal with `additionalIgnoredXids`
 *   (NVIDIA's `additionalXidsToIgnore`). One `xid` condition per device, as NVIDIA keeps one taint per key
 *   (allocatable.go `AddOrUpdateTaint`): a fatal XID replaces it; a non-fatal one replaces only a non-fatal
 *   one (a later application fault never hides a hardware fault). Every XID is counted (`xidCounts`).
 * - `ecc-double-bit` → a fatal `xid` condition with XID 48 (the kernel driver reports an uncorrectable
 *   double-bit ECC error as XID 48, "DBE (Double Bit Error) ECC Error", NVIDIA's XID catalog), so it is
 *   tainted like the XID it is. `ecc-single-bit` → `degraded` (corrected, a warning sign; no taint).
 * - `gpu-lost` (NVML_ERROR_GPU_IS_LOST) and `gpu-unavailable` (nvmlEventTypeGpuUnavailableError) → a `lost`
 *   condition, `failed` (NVIDIA: `ERROR_GPU_IS_LOST` → `gpu-lost` taint).
 * - `unmonitored` (the backend could not register for health events on the device: no event set, event
 *   types unsupported — NVIDIA: `registerEventsForDevices` → `HealthEventUnmonitored`) → an `unmonitored`
 *   condition. It does not change the state (nothing is known to be wrong) and lasts for the life of the
 *   process (events are registered once, at start).
 *
 * Recovery (NVIDIA's driver has none: a taint stays until the plugin restarts — PR #1243 review, issue
 * #1455 in kubernetes-sigs/dra-driver-nvidia-gpu; gpulet keeps that as its default and adds two ways back):
 * - `gpu-recovered` (the backend found a lost device answering again, same UUID: the NVML backend's handle
 *   refresh, e.g. after a GPU reset; the mock's `restoreDevice` / `resetDevice`) clears every condition of the device, and of its MIG devices when it is a GPU, except
 *   `unmonitored`. This is the only way out of `lost`: a lost GPU recovers only when it answers again.
 * - `recoveryMs` > 0 (`--health-recovery-interval`): an `xid` or `degraded` condition is dropped once
 *   `recoveryMs` passed with no new event that would set it again (for a fatal `xid`: no new non-ignored
 *   XID or double-bit ECC error). 0 (the default) = never, as NVIDIA's driver.
 * - A MIG device's effective conditions are its own and its parent GPU's (the worse `xid`); a failed GPU
 *   fails all of its MIG devices; an event on one MIG device does not touch its siblings or the parent.
 */
import type { DeviceHealthState, GpuBackend, HealthEvent, Inventory } from './types.js';

/** XIDs caused by applications, non-fatal for health like NVIDIA's DRA driver (see module docs). */
export const APPLICATION_XIDS: readonly number[] = [13, 31, 43, 45, 68, 109];

/** The XID the kernel driver reports for a double-bit (uncorrectable) ECC error (NVIDIA XID catalog). */
export const DOUBLE_BIT_ECC_XID = 48;

const RANK: Readonly<Record<DeviceHealthState, number>> = { ok: 0, degraded: 1, failed: 2 };

/** The worse of two states. */
export function worstState(a: DeviceHealthState, b: DeviceHealthState): DeviceHealthState {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * The state one event implies for the device it names, by the policy in the module docs (`ok` for events
 * that only inform: application XIDs, `unmonitored`, `gpu-recovered`).
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
    case 'unmonitored':
    case 'gpu-recovered':
      return 'ok';
  }
}

/** The `xid` condition: the XID shown in the `<driver>/xid` taint. Times are Unix ms (the tracker's clock). */
export interface XidCondition {
  /** XID number; 0 when the event carried none (a fatal XID of unknown number). */
  readonly xid: number;
  /** false for application XIDs ({@link APPLICATION_XIDS} + additional ones): informational only. */
  readonly fatal: boolean;
  /** When this XID condition began (first event of this fatality since the last recovery). */
  readonly sinceMs: number;
  /** Last event that set or renewed it (the recovery window counts from here). */
  readonly lastMs: number;
}

/** What is currently known to be wrong with one device (all optional: `{}` = nothing). */
export interface DeviceConditions {
  readonly xid?: XidCondition;
  /** A corrected single-bit ECC error was seen (`degraded`). */
  readonly degraded?: { readonly sinceMs: number; readonly lastMs: number };
  /** The device stopped answering (gpu-lost / gpu-unavailable) and has not answered since. */
  readonly lost?: { readonly sinceMs: number };
  /** Health events cannot be received for the device. */
  readonly unmonitored?: { readonly sinceMs: number };
  /** Message of the last event that changed the conditions (or the recovery that cleared them). */
  readonly message?: string;
}

/** The state the conditions imply: `failed` when lost or a fatal XID, `degraded` on single-bit ECC, else `ok`. */
export function stateOf(c: DeviceConditions): DeviceHealthState {
  if (c.lost !== undefined || c.xid?.fatal === true) return 'failed';
  return c.degraded !== undefined ? 'degraded' : 'ok';
}

/** A change of one device's effective conditions or state, given to {@link HealthTracker.onChange} listeners. */
export interface HealthChange {
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
  readonly previous: DeviceHealthState;
  readonly state: DeviceHealthState;
  /** The device's effective conditions after the change. */
  readonly conditions: DeviceConditions;
  /** What caused it: the event's message (for a MIG device that inherits, its parent's), or the recovery. */
  readonly reason: string;
}

/** A one-shot timer (setTimeout-like); injectable for tests. */
export interface RecoveryTimer {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const DEFAULT_TIMER: RecoveryTimer = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Options of {@link HealthTracker}. */
export interface HealthTrackerOptions {
  /** Extra XIDs to treat as application faults on top of {@link APPLICATION_XIDS} (NVIDIA's `additionalXidsToIgnore`). */
  readonly additionalIgnoredXids?: readonly number[];
  /** Quiet time after which an `xid` or `degraded` condition is dropped, ms; 0 (default) = never. */
  readonly recoveryMs?: number;
  /** Clock, Unix ms. Default `Date.now`. */
  readonly now?: () => number;
  /** Timer that runs {@link HealthTracker.expire} at the next recovery deadline. Default: an unref'd setTimeout. */
  readonly timer?: RecoveryTimer;
}

/** Largest timer delay Node accepts (2^31 - 1 ms); longer deadlines are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Per-device health, fed by {@link HealthTracker.record} (or {@link HealthTracker.attach} to a backend).
 * Never throws on bad input: an event for an unknown UUID is tracked under that UUID. Call {@link close}
 * to stop the recovery timer.
 */
export class HealthTracker {
  private readonly own = new Map<string, DeviceConditions>();
  private readonly xids = new Map<string, Map<number, number>>();
  private readonly lastXidByUuid = new Map<string, number>();
  private readonly parentOf = new Map<string, string>();
  private readonly childrenOf = new Map<string, string[]>();
  private readonly listeners = new Set<(change: HealthChange) => void>();
  private readonly ignored: ReadonlySet<number>;
  private readonly recoveryMs: number;
  private readonly now: () => number;
  private readonly timer: RecoveryTimer;
  private timerHandle: unknown;
  private timerAt: number | undefined;
  private closed = false;

  /**
   * @param inventory the node's devices: gives MIG → parent links (used for inheritance) and the list of
   *   devices reported by {@link states}. Call {@link setInventory} after a rediscovery.
   * @throws RangeError when `recoveryMs` is negative or not an integer.
   */
  constructor(inventory: Inventory, options: HealthTrackerOptions = {}) {
    this.ignored = new Set([...APPLICATION_XIDS, ...(options.additionalIgnoredXids ?? [])]);
    this.recoveryMs = options.recoveryMs ?? 0;
    if (!Number.isSafeInteger(this.recoveryMs) || this.recoveryMs < 0) {
      throw new RangeError(`health recovery interval must be a non-negative integer (ms), got ${this.recoveryMs}`);
    }
    this.now = options.now ?? Date.now;
    this.timer = options.timer ?? DEFAULT_TIMER;
    this.setInventory(inventory);
  }

  /** Replace the MIG → parent links (after a rediscovery). Recorded conditions are kept. */
  setInventory(inventory: Inventory): void {
    this.parentOf.clear();
    this.childrenOf.clear();
    for (const gpu of inventory.gpus) {
      if (!this.own.has(gpu.uuid)) this.own.set(gpu.uuid, {});
      const children: string[] = [];
      for (const mig of gpu.migDevices) {
        this.parentOf.set(mig.uuid, gpu.uuid);
        children.push(mig.uuid);
        if (!this.own.has(mig.uuid)) this.own.set(mig.uuid, {});
      }
      this.childrenOf.set(gpu.uuid, children);
    }
  }

  /** Subscribe the tracker to a backend's health events; returns the unsubscribe function. */
  attach(backend: Pick<GpuBackend, 'onHealthEvent'>): () => void {
    return backend.onHealthEvent((event) => this.record(event));
  }

  /**
   * Apply one event: count it (XIDs), update the device's conditions and notify listeners of every device
   * whose effective conditions changed (the device, and its MIG devices when it is a GPU). Listener errors
   * are swallowed.
   */
  record(event: HealthEvent): void {
    if (typeof event.uuid !== 'string' || event.uuid === '') return;
    const xid = event.kind === 'xid' && event.xid !== undefined && Number.isInteger(event.xid) ? event.xid : undefined;
    if (xid !== undefined) {
      const counts = this.xids.get(event.uuid) ?? new Map<number, number>();
      counts.set(xid, (counts.get(xid) ?? 0) + 1);
      this.xids.set(event.uuid, counts);
      this.lastXidByUuid.set(event.uuid, xid);
    }
    const now = this.now();
    const message = typeof event.message === 'string' ? event.message : event.kind;
    const children = this.childrenOf.get(event.uuid) ?? [];
    this.change([event.uuid, ...children], message, () => {
      const c = this.own.get(event.uuid) ?? {};
      this.own.set(event.uuid, this.apply(c, event, xid, now, message));
      if (event.kind === 'gpu-recovered') {
        for (const child of children) this.own.set(child, recovered(this.own.get(child) ?? {}, message));
      }
    });
  }

  private apply(c: DeviceConditions, event: HealthEvent, xid: number | undefined, now: number, message: string): DeviceConditions {
    switch (event.kind) {
      case 'xid': {
        const fatal = xid === undefined || !this.ignored.has(xid);
        return { ...c, xid: nextXid(c.xid, xid ?? 0, fatal, now), message };
      }
      case 'ecc-double-bit':
        return { ...c, xid: nextXid(c.xid, DOUBLE_BIT_ECC_XID, true, now), message };
      case 'ecc-single-bit':
        return { ...c, degraded: { sinceMs: c.degraded?.sinceMs ?? now, lastMs: now }, message };
      case 'gpu-lost':
      case 'gpu-unavailable':
        return { ...c, lost: c.lost ?? { sinceMs: now }, message };
      case 'unmonitored':
        return { ...c, unmonitored: c.unmonitored ?? { sinceMs: now }, message };
      case 'gpu-recovered':
        return recovered(c, message);
    }
  }

  /**
   * Drop every `xid` / `degraded` condition whose recovery window has passed (no-op when `recoveryMs` is
   * 0) and notify listeners. Runs by itself on the recovery timer; callable directly (tests).
   */
  expire(): void {
    if (this.recoveryMs === 0) return;
    const now = this.now();
    for (const [uuid, c] of [...this.own]) {
      const xidDue = c.xid !== undefined && c.xid.lastMs + this.recoveryMs <= now;
      const degradedDue = c.degraded !== undefined && c.degraded.lastMs + this.recoveryMs <= now;
      if (!xidDue && !degradedDue) continue;
      const reason = `recovered: no new health event for ${this.recoveryMs} ms`;
      this.change([uuid, ...(this.childrenOf.get(uuid) ?? [])], reason, () => {
        const { xid, degraded, ...rest } = c;
        this.own.set(uuid, { ...rest, ...(xidDue || xid === undefined ? {} : { xid }), ...(degradedDue || degraded === undefined ? {} : { degraded }), message: reason });
      });
    }
  }

  /** Earliest Unix ms at which {@link expire} will drop a condition, or undefined (none, or `recoveryMs` 0). */
  nextRecoveryAt(): number | undefined {
    if (this.recoveryMs === 0) return undefined;
    let next: number | undefined;
    for (const c of this.own.values()) {
      for (const last of [c.xid?.lastMs, c.degraded?.lastMs]) {
        if (last !== undefined && (next === undefined || last + this.recoveryMs < next)) next = last + this.recoveryMs;
      }
    }
    return next;
  }

  /** Stop the recovery timer. Recording still works; nothing expires by itself afterwards. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timerHandle !== undefined) this.timer.clear(this.timerHandle);
    this.timerHandle = undefined;
    this.timerAt = undefined;
  }

  /** Run `mutate`, then notify a change for each of `uuids` whose effective conditions differ, and re-arm the timer. */
  private change(uuids: readonly string[], reason: string, mutate: () => void): void {
    const before = new Map(uuids.map((u) => [u, this.conditions(u)]));
    mutate();
    for (const uuid of uuids) {
      const prev = before.get(uuid) ?? {};
      const next = this.conditions(uuid);
      if (conditionsKey(prev) !== conditionsKey(next)) {
        this.emit({ uuid, previous: stateOf(prev), state: stateOf(next), conditions: next, reason });
      }
    }
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    const at = this.nextRecoveryAt();
    if (at === this.timerAt) return;
    if (this.timerHandle !== undefined) this.timer.clear(this.timerHandle);
    this.timerHandle = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    this.timerHandle = this.timer.set(() => {
      this.timerHandle = undefined;
      this.timerAt = undefined;
      this.expire();
      this.arm();
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
  }

  /**
   * Effective conditions of a device: its own, plus its parent GPU's for a MIG device (the parent's `xid`
   * wins when fatal or when the device has none). Unknown → `{}`.
   */
  conditions(uuid: string): DeviceConditions {
    const own = this.own.get(uuid) ?? {};
    const parentUuid = this.parentOf.get(uuid);
    const parent = parentUuid === undefined ? undefined : this.own.get(parentUuid);
    if (parent === undefined) return own;
    const xid = worseXid(own.xid, parent.xid);
    const lost = own.lost ?? parent.lost;
    const unmonitored = own.unmonitored ?? parent.unmonitored;
    const degraded = own.degraded ?? parent.degraded;
    const message = stateOf(parent) !== 'ok' && stateOf(own) === 'ok' ? parent.message : own.message ?? parent.message;
    return {
      ...(xid === undefined ? {} : { xid }),
      ...(degraded === undefined ? {} : { degraded }),
      ...(lost === undefined ? {} : { lost }),
      ...(unmonitored === undefined ? {} : { unmonitored }),
      ...(message === undefined ? {} : { message }),
    };
  }

  /** Effective state of a device ({@link stateOf} its effective conditions). Unknown → `ok`. */
  state(uuid: string): DeviceHealthState {
    return stateOf(this.conditions(uuid));
  }

  /** Effective state of every known device (inventory devices and any UUID seen in an event). */
  states(): Map<string, DeviceHealthState> {
    return new Map([...this.own.keys()].map((u) => [u, this.state(u)]));
  }

  /** UUIDs whose effective state is `failed` (what the DRA health service reports as UNHEALTHY). */
  unhealthyUuids(): string[] {
    return [...this.own.keys()].filter((u) => this.state(u) === 'failed');
  }

  /** Effective conditions of every known device that has at least one (what the slice taints show). */
  allConditions(): Map<string, DeviceConditions> {
    const out = new Map<string, DeviceConditions>();
    for (const uuid of this.own.keys()) {
      const c = this.conditions(uuid);
      if (c.xid !== undefined || c.lost !== undefined || c.unmonitored !== undefined || c.degraded !== undefined) out.set(uuid, c);
    }
    return out;
  }

  /** XID counts of one device since start: XID → occurrences (for `hw.errors{error.type="<xid>"}`). */
  xidCounts(uuid: string): ReadonlyMap<number, number> {
    return this.xids.get(uuid) ?? new Map<number, number>();
  }

  /** Last XID seen on a device (dcgm-exporter's `DCGM_FI_DEV_XID_ERRORS`), or undefined. */
  lastXid(uuid: string): number | undefined {
    return this.lastXidByUuid.get(uuid);
  }

  /** Listen to changes of effective conditions; returns the unsubscribe function. */
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

/** The next `xid` condition: a fatal XID replaces any; a non-fatal one replaces only a non-fatal one. */
function nextXid(current: XidCondition | undefined, xid: number, fatal: boolean, now: number): XidCondition {
  if (current === undefined) return { xid, fatal, sinceMs: now, lastMs: now };
  if (current.fatal && !fatal) return current;
  const sinceMs = current.fatal === fatal ? current.sinceMs : now;
  return { xid, fatal, sinceMs, lastMs: now };
}

/** The worse of two `xid` conditions: fatal over non-fatal, then the later. */
function worseXid(a: XidCondition | undefined, b: XidCondition | undefined): XidCondition | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  if (a.fatal !== b.fatal) return a.fatal ? a : b;
  return b.lastMs > a.lastMs ? b : a;
}

/** Conditions after a `gpu-recovered`: everything cleared but `unmonitored`. */
function recovered(c: DeviceConditions, message: string): DeviceConditions {
  return { ...(c.unmonitored === undefined ? {} : { unmonitored: c.unmonitored }), message };
}

/** What a listener must hear about: the state and the taint-relevant facts (not the renewal times). */
function conditionsKey(c: DeviceConditions): string {
  return JSON.stringify([stateOf(c), c.xid?.xid, c.xid?.fatal, c.lost !== undefined, c.unmonitored !== undefined]);
}
