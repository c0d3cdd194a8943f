/**
 * Keeps gpulet's entries in ResourceClaims' `status.devices` (KEP-4817) in step with what it prepared: after
 * a prepare, the entries of `build.ts`; after an unprepare, none. Asynchronous and best effort, by decision:
 *
 * - **Never fails or delays a prepare.** The status is information for users and tools, not something the
 *   container needs; the kubelet has its answer (the CDI IDs) before the status is written. A write that
 *   fails is logged and retried with capped exponential backoff and full jitter (first retry within 0.5 s,
 *   never more than 30 s apart: `util/backoff.ts`), at most {@link DEFAULT_MAX_ATTEMPTS} attempts per change
 *   (about 2 minutes), then given up with a warning naming the claim. A refusal retrying cannot fix ends the
 *   change at once: 400, 403 (RBAC or the admission policy), 422 (invalid, e.g. the claim was deallocated)
 *   with a warning; 404 (the claim is gone) and 409 (the UID precondition: the claim was re-created under its
 *   name) quietly, there being nothing of ours to keep in step.
 * - **No reads, one write per change.** Each change is one server-side apply (`client.ts`) with the claim's
 *   UID as a precondition. The entries name the devices the preparer answered, which are allocated in the
 *   claim by construction (it resolved them from the claim's `status.allocation`, which the API server keeps
 *   immutable once set), so the claim need not be read again; `lastTransitionTime` is the time of the write,
 *   which follows the prepare that made the device Ready. A claim prepared again in this process with the
 *   same devices (a second pod, a kubelet retry, answered from the checkpoint) is not written again; after an
 *   agent restart, the first prepare of a claim writes once more (the same entries, a new time).
 * - **Latest wins, per claim.** A newer change of a claim (unprepared while its prepare's status was still
 *   being retried) replaces the pending one; claims are written one at a time, in the order they changed.
 * - **Removal at unprepare** applies no entries, so the API server removes the ones gpulet's field manager
 *   applied and nothing else. Entries left behind by a removal given up on, or pending when the agent stops,
 *   go with the claim's allocation: the API server drops `status.devices` when a claim is deallocated
 *   (pkg/registry/resource/resourceclaim/strategy.go `dropDeallocatedStatusDevices`), and with the claim.
 * - **Stop** drops what is pending and waits for the attempt in flight (bounded by the call timeout).
 */
import { devicesByName } from '../../model/devices.js';
import type { ClaimRef } from '../../model/types.js';
import { ApiError, errorMessage } from '../../errors.js';
import type { Inventory } from '../../gpu/types.js';
import type { Logger } from '../../log.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../../util/backoff.js';
import { buildDeviceStatuses, entryKey, type PreparedDeviceKey } from './build.js';
import type { ClaimStatusClient } from './client.js';

/** Attempts per change before it is given up (with {@link DEFAULT_BACKOFF}: about 2 minutes of retrying). */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** HTTP statuses retrying cannot fix (see file doc). */
const PERMANENT = new Set([400, 403, 405, 415, 422]);
/** HTTP statuses that leave nothing to write: the claim is gone (404) or is another one now (409, the UID precondition). */
const GONE = new Set([404, 409]);

/** Options of {@link ClaimStatusWriter}. */
export interface ClaimStatusWriterOptions {
  readonly client: ClaimStatusClient;
  /** Our driver name (the entries' `driver`, and the field manager). */
  readonly driverName: string;
  /** Our node's name (said in the Ready condition's message). */
  readonly nodeName: string;
  /** The current inventory (the entries' `data`). */
  readonly inventory: () => Inventory;
  readonly logger: Logger;
  /** Attempts per change; default {@link DEFAULT_MAX_ATTEMPTS}. */
  readonly maxAttempts?: number;
  /** Retry delays; default {@link DEFAULT_BACKOFF} (0.5 s … 30 s). */
  readonly backoff?: BackoffOptions;
  /** Clock (tests). */
  readonly now?: () => Date;
}

/** What a claim's entries should be: those of its prepared devices, or none. */
type Want = { readonly kind: 'prepared'; readonly devices: readonly PreparedDeviceKey[] } | { readonly kind: 'unprepared' };

interface Pending {
  readonly ref: ClaimRef;
  readonly want: Want;
  readonly generation: number;
  readonly backoff: Backoff;
  timer?: NodeJS.Timeout | undefined;
}

/** See file doc. */
export class ClaimStatusWriter {
  private readonly pending = new Map<string, Pending>();
  /** UIDs ready for an attempt, in the order they became ready. */
  private readonly ready = new Set<string>();
  private generation = 0;
  private worker: Promise<void> | undefined;
  private stopped = false;
  private readonly maxAttempts: number;
  private readonly log: Logger;
  private readonly idleWaiters: Array<() => void> = [];
  /** Per claim UID, the devices whose entries this process last applied (their keys, sorted, joined). */
  private readonly written = new Map<string, string>();

  constructor(private readonly options: ClaimStatusWriterOptions) {
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.log = options.logger.child({ component: 'claim-status' });
  }

  /**
   * A claim was prepared with `devices`: write their entries (asynchronously; never throws). Nothing is
   * written when this process already applied the same devices' entries and no other change is pending.
   */
  prepared(ref: ClaimRef, devices: readonly PreparedDeviceKey[]): void {
    const keys = devices.map((d) => ({ poolName: d.poolName, deviceName: d.deviceName, ...(d.shareId === undefined ? {} : { shareId: d.shareId }) }));
    if (!this.pending.has(ref.uid) && this.written.get(ref.uid) === this.signature(keys)) return;
    this.enqueue(ref, { kind: 'prepared', devices: keys });
  }

  /** A claim was unprepared: remove its entries (asynchronously; never throws). */
  unprepared(ref: ClaimRef): void {
    this.written.delete(ref.uid); // whatever becomes of the removal, a later prepare writes again
    this.enqueue(ref, { kind: 'unprepared' });
  }

  /** Resolves when nothing is pending or in flight (tests, and the demo). */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.worker === undefined) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drop what is pending and wait for the attempt in flight. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.ready.clear();
    await this.worker;
    this.settleIdle();
  }

  private enqueue(ref: ClaimRef, want: Want): void {
    if (this.stopped) return;
    const before = this.pending.get(ref.uid);
    if (before !== undefined) clearTimeout(before.timer);
    this.pending.set(ref.uid, { ref, want, generation: ++this.generation, backoff: new Backoff(this.options.backoff ?? DEFAULT_BACKOFF) });
    this.ready.delete(ref.uid);
    this.ready.add(ref.uid);
    this.kick();
  }

  private kick(): void {
    if (this.worker !== undefined || this.stopped) return;
    this.worker = this.drain().finally(() => {
      this.worker = undefined;
      if (this.ready.size > 0 && !this.stopped) this.kick();
      else this.settleIdle();
    });
  }

  private settleIdle(): void {
    if (this.pending.size !== 0 || this.worker !== undefined) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async drain(): Promise<void> {
    for (;;) {
      const uid = this.ready.values().next().value;
      if (uid === undefined || this.stopped) return;
      this.ready.delete(uid);
      const p = this.pending.get(uid);
      if (p === undefined) continue;
      await this.attemptOnce(p);
    }
  }

  private async attemptOnce(p: Pending): Promise<void> {
    const log = this.log.child({ claimUid: p.ref.uid, claim: `${p.ref.namespace}/${p.ref.name}` });
    const current = (): boolean => this.pending.get(p.ref.uid)?.generation === p.generation;
    try {
      await this.attempt(p, log);
      if (current()) this.pending.delete(p.ref.uid);
    } catch (err) {
      if (!current()) return; // a newer change is queued; it starts afresh
      const status = err instanceof ApiError ? err.status : undefined;
      if (status !== undefined && GONE.has(status)) {
        this.pending.delete(p.ref.uid);
        this.written.delete(p.ref.uid);
        log.debug({ change: p.want.kind, status }, 'claim gone or re-created: its status.devices is not ours to write');
        return;
      }
      const attempts = p.backoff.failures + 1;
      if ((status !== undefined && PERMANENT.has(status)) || attempts >= this.maxAttempts) {
        this.pending.delete(p.ref.uid);
        log.warn(
          { err, change: p.want.kind, attempts },
          `giving up writing the claim's status.devices (${status !== undefined && PERMANENT.has(status) ? `HTTP ${status}: retrying cannot fix it` : `${attempts} attempts`}); ` +
            'the claim is prepared regardless; the entries go with its allocation',
        );
        return;
      }
      const delay = p.backoff.next();
      log.info({ err: errorMessage(err), change: p.want.kind, attempt: attempts, retryInMs: delay }, "writing the claim's status.devices failed; will retry");
      p.timer = setTimeout(() => {
        p.timer = undefined;
        if (!current() || this.stopped) return;
        this.ready.add(p.ref.uid);
        this.kick();
      }, delay);
      p.timer.unref();
    }
  }

  /** The identity of a set of prepared devices (for "already written"). */
  private signature(devices: readonly PreparedDeviceKey[]): string {
    return devices
      .map((d) => entryKey({ driver: this.options.driverName, pool: d.poolName, device: d.deviceName, ...(d.shareId === undefined ? {} : { shareID: d.shareId }) }))
      .sort()
      .join(' ');
  }

  private async attempt(p: Pending, log: Logger): Promise<void> {
    const { client, driverName } = this.options;
    if (p.want.kind === 'unprepared') {
      await client.apply(p.ref, []);
      log.info('claim status.devices: entries removed');
      return;
    }
    const inventory = this.options.inventory();
    const devices = p.want.devices;
    const { entries, skipped } = buildDeviceStatuses({
      driverName,
      nodeName: this.options.nodeName,
      prepared: devices,
      byName: devicesByName(inventory),
      driverVersion: inventory.system.driverVersion,
      now: (this.options.now ?? (() => new Date()))(),
    });
    if (skipped.length > 0) log.warn({ skipped }, 'some prepared devices get no status.devices entry');
    await client.apply(p.ref, entries);
    this.written.set(p.ref.uid, this.signature(devices));
    log.info({ devices: entries.map((e) => e.device) }, 'claim status.devices written');
  }
}
