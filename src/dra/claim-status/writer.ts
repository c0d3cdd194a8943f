/**
 * Keeps gpulet's entries in ResourceClaims' `status.devices` (KEP-4817) in step with what it prepared: after
 * a successful prepare, the entries of `build.ts`; after a successful unprepare, none. Asynchronous and best
 * effort, by decision:
 *
 * - **Never fails or delays a prepare.** The status is information for users and tools, not something the
 *   container needs; the kubelet has its answer (the CDI IDs) before the status is written. A write that
 *   fails is logged and retried with capped exponential backoff and full jitter (first retry within 0.5 s,
 *   never more than 30 s apart: `util/backoff.ts`), at most {@link DEFAULT_MAX_ATTEMPTS} attempts per change
 *   (about 2 minutes), then given up with a warning naming the claim. An error retrying cannot fix — the claim
 *   gone (404) or re-created under its name (its UID differs: 409 from the precondition), the write refused
 *   (400, 403: RBAC or the admission policy; 422: invalid, e.g. the device no longer allocated) — ends the
 *   change at once, logged.
 * - **Latest wins, per claim.** A newer change of a claim (unprepared while its prepare's status was still
 *   being retried) replaces the pending one; claims are written one at a time, in the order they changed.
 * - **Reads before it writes.** Each attempt GETs the claim: a claim that is gone or has another UID is left
 *   alone; only devices allocated in the claim as read are written (the API server refuses others); nothing
 *   is written when the entries are already what they should be (a claim prepared again, a second pod), and
 *   a Ready condition keeps its `lastTransitionTime`.
 * - **Removal at unprepare** applies no entries, so the API server removes the ones gpulet's field manager
 *   applied (server-side apply; `client.ts`); a claim without entries of ours is not written. Entries left
 *   behind by a removal given up on, or pending when the agent stops, go with the claim's allocation: the API
 *   server drops `status.devices` when a claim is deallocated (pkg/registry/resource/resourceclaim/strategy.go
 *   `dropDeallocatedStatusDevices`), and with the claim.
 * - **Stop** drops what is pending and waits for the attempt in flight (bounded by the call timeout).
 */
import type { AllocatableDevice } from '../../model/devices.js';
import { devicesByName } from '../../model/devices.js';
import type { ClaimRef } from '../../model/types.js';
import { ApiError, errorMessage } from '../../errors.js';
import type { Inventory } from '../../gpu/types.js';
import type { Logger } from '../../log.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../../util/backoff.js';
import { buildDeviceStatuses, type PreparedDeviceKey } from './build.js';
import { claimView, sameEntries } from './claim-view.js';
import type { ClaimStatusClient } from './client.js';

/** Attempts per change before it is given up (with {@link DEFAULT_BACKOFF}: about 2 minutes of retrying). */
export const DEFAULT_MAX_ATTEMPTS = 8;

/** HTTP statuses retrying cannot fix (see file doc). */
const PERMANENT = new Set([400, 403, 404, 405, 409, 415, 422]);

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

/** How an attempt ended. */
type Outcome = 'written' | 'unchanged' | 'gone' | 'replaced';

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

  constructor(private readonly options: ClaimStatusWriterOptions) {
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.log = options.logger.child({ component: 'claim-status' });
  }

  /** A claim was prepared with `devices`: write their entries (asynchronously; never throws). */
  prepared(ref: ClaimRef, devices: readonly PreparedDeviceKey[]): void {
    this.enqueue(ref, { kind: 'prepared', devices: devices.map((d) => ({ poolName: d.poolName, deviceName: d.deviceName, ...(d.shareId === undefined ? {} : { shareId: d.shareId }) })) });
  }

  /** A claim was unprepared: remove its entries (asynchronously; never throws). */
  unprepared(ref: ClaimRef): void {
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
      const outcome = await this.attempt(p, log);
      if (outcome === 'written') log.info({ change: p.want.kind }, p.want.kind === 'prepared' ? 'claim status.devices written' : 'claim status.devices entries removed');
      else log.debug({ change: p.want.kind, outcome }, 'claim status.devices: nothing to write');
      if (current()) this.pending.delete(p.ref.uid);
    } catch (err) {
      if (!current()) return; // a newer change is queued; it starts afresh
      const status = err instanceof ApiError ? err.status : undefined;
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

  private async attempt(p: Pending, log: Logger): Promise<Outcome> {
    const { client, driverName } = this.options;
    const raw = await client.read(p.ref);
    if (raw === undefined) return 'gone';
    const view = claimView(raw, driverName);
    if (view.uid !== p.ref.uid) return 'replaced';
    if (p.want.kind === 'unprepared') {
      if (view.ours.size === 0) return 'unchanged';
      await client.apply(p.ref, []);
      return 'written';
    }
    const inventory = this.options.inventory();
    const byName: ReadonlyMap<string, AllocatableDevice> = devicesByName(inventory);
    const { entries, skipped } = buildDeviceStatuses({
      driverName,
      nodeName: this.options.nodeName,
      prepared: p.want.devices,
      byName,
      driverVersion: inventory.system.driverVersion,
      allocated: view.allocated,
      existingReady: view.ready,
      now: (this.options.now ?? (() => new Date()))(),
    });
    if (skipped.length > 0) log.warn({ skipped }, 'some prepared devices get no status.devices entry');
    if (sameEntries(view.ours, entries)) return 'unchanged';
    await client.apply(p.ref, entries);
    return 'written';
  }
}
