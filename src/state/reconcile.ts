/**
 * Startup reconciliation of the prepared claims with the CDI dir and the API server, and the rebuild after
 * a lost checkpoint. The periodic clean-up is in `claim-cleanup.ts` (re-exported here).
 *
 * `reconcileClaims` runs once, after `ClaimStore.init()` and before the kubelet plugin registers:
 * 1. PrepareStarted and PrepareMigCreating entries (a crash mid-prepare) are rolled back: spec removed, the MIG
 *    devices the entry records as gpulet's destroyed (dynamic MIG; mig-ops.ts `destroyOwned`), entry removed.
 *    The kubelet got no answer, so it retries and the claim is prepared afresh.
 * 2. The checkpoint is trusted to list every prepared claim only when all of these hold; otherwise a rebuild
 *    from the API server is due (the reason is logged):
 *    - it was read intact (an unusable one was set aside by `init()`);
 *    - no set-aside checkpoint (`checkpoint.json.corrupt-*`) lies beside it: a crash or a failed write-back may
 *      have followed the set-aside, and the rebuild then never completed (remove the file once inspected;
 *      until then every start-up rebuilds);
 *    - every CDI spec of ours has a PrepareCompleted entry. A spec without one means the entry was lost (a
 *      checkpoint missing while specs exist, deleted, or set aside and never rebuilt), never that the claim
 *      is free: only the API server can say that.
 * 3. The rebuild LISTs every ResourceClaim; each one allocated to our driver and pool whose
 *    `status.reservedFor` is non-empty (*held*) and has no entry is prepared again (spec and entry) from the
 *    listed object. Then, and only then, specs of ours with no PrepareCompleted entry are removed — except
 *    those of held claims (one that could not be prepared again keeps its spec, and the next start-up
 *    rebuilds again). A spec is thus removed only when the API server just confirmed its claim gone, re-created
 *    with another UID, unreserved or allocated elsewhere. When the LIST fails nothing is removed: the rebuild
 *    stays due and the periodic clean-up retries it.
 * 4. After a reboot (the checkpoint's boot ID differs from the kernel's) each PrepareCompleted claim is
 *    looked up by name: kept when it still exists with the same UID and `status.reservedFor` is non-empty,
 *    dropped (unprepared) otherwise (a claim of that name whose metadata breaks the rules, `claimFromApi`,
 *    is not ours either). An API error keeps the claim (the clean-up checks it again later).
 * 5. Every PrepareCompleted claim gets its CDI spec back when missing (the tmpfs `/var/run/cdi` after a
 *    reboot, docs/contracts.md §6) or rewritten when it differs from what prepare writes today (an upgrade),
 *    or when something else is at its path (a symlink, a FIFO: replaced by the atomic rename).
 * 6. Temp files of interrupted writes are removed, and the checkpoint is saved, recording the current boot ID
 *    (when anything changed or the boot ID did).
 * Failures of single claims are logged with the claim they concern and kept in the report. An I/O error
 * reading the checkpoint or listing the CDI dir fails the start-up step instead (`initAndReconcile` retries it;
 * nothing was changed), so an unreadable directory is never taken for an empty one.
 *
 * Shutdown (`signal`, main's start-up signal: SIGTERM) is checked before every claim of every step (1–4) and
 * between the API server's pages (the rebuild): the step in flight finishes — an entry is never half-written,
 * each step commits the checkpoint whole — and the rest is skipped: no sweep, no final save, the report says
 * `aborted`. What is left is what the next start reconciles; `initAndReconcile` then rejects with
 * StartupAbortedError, which the command answers with exit 0.
 *
 * All of it runs holding the cross-process state lock (lock.ts), so another gpulet instance sharing the state
 * and CDI dirs (a rolling update) never sees a half-reconciled state, and the orphan sweep can never remove a
 * spec the other instance is writing: `initAndReconcile` holds one session from before `init()` through the
 * end of `reconcileClaims`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClaimRef } from '../model/types.js';
import { ApiError, errorMessage, InvalidClaimError, StartupAbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApiClaim, ClaimSource } from './claim-source.js';
import { droppedEntries, type CheckpointClaim } from './checkpoint.js';
import type { ClaimStore, StoreLoad } from './claim-store.js';
import { StateLockError } from './lock.js';
import { StateIoError } from './plain-file.js';
import { rebuildFromApi, reserved, type RebuildRecovery, type RebuildStore } from './rebuild.js';
import type { ClaimRecovery } from './recovery.js';
import { isSessionError } from './session.js';

export { cleanupOnce, startClaimCleanup, type ClaimCleanup, type CleanupOptions, type CleanupReport } from './claim-cleanup.js';
export { allocatedTo, rebuildFromApi, type RebuildOptions } from './rebuild.js';

/** What reconciliation needs of the claim store: a session, the entries, the boot ID, the rebuild-due flag, a save. */
export type ReconcileStore = RebuildStore & Pick<ClaimStore, 'locked' | 'entries' | 'needsRebuild' | 'requireRebuild' | 'bootId' | 'persist'>;
/** What reconciliation needs of recovery: every step. */
export type ReconcileRecovery = RebuildRecovery & Pick<ClaimRecovery, 'drop' | 'restoreSpec' | 'unaccountedSpecs' | 'removeTempFiles'>;

/** Options of {@link reconcileClaims}. */
export interface ReconcileOptions {
  /** The claim store, after `init()`. */
  readonly store: ReconcileStore;
  readonly recovery: ReconcileRecovery;
  /** The API server's claims (`KubeClaimSource`): GET by name, and list for a rebuild. */
  readonly source: ClaimSource;
  /** What `store.init()` returned (boot ID of the file, error when the file was unusable, set-aside files). */
  readonly loaded: StoreLoad;
  readonly logger: Logger;
  /** Stops the reconciliation between claims and between API pages (shutdown during start-up). */
  readonly signal?: AbortSignal | undefined;
}

/** What {@link reconcileClaims} did, by claim UID. */
export interface ReconcileReport {
  /** The boot ID changed since the checkpoint was written. */
  readonly rebooted: boolean;
  /** PrepareStarted entries rolled back. */
  readonly rolledBack: readonly string[];
  /** Claims prepared again from the API server after a lost checkpoint (undefined: no rebuild was due). */
  readonly rebuilt: readonly string[] | undefined;
  /** Claims dropped after a reboot (gone, re-created, or no longer reserved). */
  readonly dropped: readonly string[];
  /** Specs written (missing) or rewritten (stale). */
  readonly restored: readonly string[];
  /** Orphaned spec files removed. */
  readonly orphans: readonly string[];
  /** One line per failure, naming the claim and the reason. */
  readonly errors: readonly string[];
  /** `signal` fired: the steps stopped between two claims (or two pages); nothing was swept or saved after. */
  readonly aborted: boolean;
}

const refOf = (e: CheckpointClaim): ClaimRef => ({ namespace: e.namespace, name: e.name, uid: e.uid });

/** Reconcile at startup (see file doc), under the state lock (re-entrant: `initAndReconcile` holds it).
 * Never rejects for want of the state: a lock held past the wait, an I/O error reading the checkpoint or
 * listing the CDI dir, a passed deadline (a `SessionError`) is reported in `errors` and nothing more changes. */
export async function reconcileClaims(options: ReconcileOptions): Promise<ReconcileReport> {
  try {
    return await options.store.locked(() => reconcileLocked(options), { recovery: true });
  } catch (err) {
    if (!isSessionError(err)) throw err;
    options.logger.error({ err, component: 'reconcile' }, 'cannot reconcile the claims now');
    return { rebooted: false, rolledBack: [], rebuilt: undefined, dropped: [], restored: [], orphans: [], errors: [err.message], aborted: false };
  }
}

/** Options of {@link initAndReconcile}. */
export interface StartupOptions extends Omit<ReconcileOptions, 'loaded' | 'store'> {
  /** The claim store, not loaded yet. */
  readonly store: ReconcileStore & Pick<ClaimStore, 'init'>;
  /** Attempts to take the state lock (each waits up to its acquisition timeout), or to read the state after
   * an I/O error (1 s apart, then 2 s, ... at most 10 s); default 6. */
  readonly lockAttempts?: number;
}

/**
 * The start-up step of main: take the state lock, load the checkpoint (`store.init()`) and reconcile it,
 * all in one session, so no other instance prepares in between. A lock held by another instance is waited
 * for (a live holder releases it after its batch; a killed one's goes stale within `staleMs`), with a
 * warning per failed attempt; so is an I/O error reading the checkpoint or listing the CDI dir (EMFILE,
 * EIO...: nothing was changed), retried after a pause.
 * @returns what `init()` loaded and the reconciliation report.
 * @throws StateLockError after `lockAttempts` failed attempts or when the lock cannot be created; StateIoError
 *   after `lockAttempts` failed reads (the agent must not serve on a state it could not reconcile);
 *   StateSessionDeadlineError; StartupAbortedError when `signal` fires (between attempts, or during the
 *   reconciliation, which stops between two claims: see the file doc); the abort reason (an AbortError) when it
 *   fires during a pause between attempts.
 */
export async function initAndReconcile(options: StartupOptions): Promise<{ readonly loaded: StoreLoad; readonly report: ReconcileReport }> {
  const { store } = options;
  const attempts = Math.max(1, options.lockAttempts ?? 6);
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw new StartupAbortedError();
    try {
      return await store.locked(async () => {
        const loaded = await store.init();
        const report = await reconcileLocked({ ...options, loaded });
        if (report.aborted) throw new StartupAbortedError();
        return { loaded, report };
      }, { recovery: true });
    } catch (err) {
      const busy = err instanceof StateLockError && err.busy;
      if ((!busy && !(err instanceof StateIoError)) || attempt >= attempts) throw err;
      options.logger.warn({ err, attempt, attempts, component: 'reconcile' }, busy ? 'waiting for the state lock held by another gpulet instance' : 'cannot read the claim state; retrying');
      if (!busy) await sleep(Math.min(10_000, 1000 * 2 ** (attempt - 1)), undefined, options.signal === undefined ? {} : { signal: options.signal });
    }
  }
}

async function reconcileLocked(options: ReconcileOptions): Promise<ReconcileReport> {
  const { store, recovery, source, loaded, signal } = options;
  const log = options.logger.child({ component: 'reconcile' });
  const errors: string[] = [];
  const rolledBack: string[] = [];
  const dropped: string[] = [];
  const restored: string[] = [];
  const bootId = await store.bootId();
  const rebooted = loaded.fileBootId !== '' && loaded.fileBootId !== bootId;
  const stopped = (step: string): boolean => {
    if (!signal?.aborted) return false;
    log.warn({ step, rolledBack: rolledBack.length, dropped: dropped.length, restored: restored.length }, 'start-up reconciliation stopped by shutdown; the next start goes on');
    return true;
  };
  const abort = (rebuilt?: readonly string[]): ReconcileReport => ({ rebooted, rolledBack, rebuilt, dropped, restored, orphans: [], errors, aborted: true });

  for (const entry of Object.values(store.entries()).filter((e) => e.state !== 'PrepareCompleted')) {
    if (stopped('rollback')) return abort();
    const result = await recovery.drop(refOf(entry));
    if (result.error === undefined) rolledBack.push(entry.uid);
    else errors.push(result.error);
  }

  const distrust = await untrusted(loaded, recovery);
  if (distrust !== undefined) store.requireRebuild(distrust);
  let rebuilt: readonly string[] | undefined;
  let orphans: readonly string[] = [];
  if (store.needsRebuild) {
    const outcome = await rebuildFromApi({ store, recovery, source, logger: options.logger, signal });
    rebuilt = outcome.rebuilt;
    orphans = outcome.orphans;
    errors.push(...outcome.errors);
    if (outcome.aborted && stopped('rebuild')) return abort();
  }

  if (rebooted) {
    log.info({ fileBootId: loaded.fileBootId, bootId }, 'the node rebooted since the checkpoint was written; checking each claim with the API server');
    for (const entry of Object.values(store.entries()).filter((e) => e.state === 'PrepareCompleted')) {
      if (stopped('reboot check')) return abort(rebuilt);
      const verdict = await stillHeld(source, refOf(entry));
      if (verdict.held) continue;
      const result = await recovery.drop(refOf(entry));
      if (result.error === undefined) {
        dropped.push(entry.uid);
        log.info({ claimUid: entry.uid, claim: `${entry.namespace}/${entry.name}`, reason: verdict.reason }, 'claim dropped after reboot');
      } else {
        errors.push(result.error);
      }
    }
  }

  for (const entry of Object.values(store.entries()).filter((e) => e.state === 'PrepareCompleted')) {
    if (stopped('restore')) return abort(rebuilt);
    try {
      const outcome = await recovery.restoreSpec(entry.uid);
      if (outcome === 'written' || outcome === 'rewritten') {
        restored.push(entry.uid);
        log.info({ claimUid: entry.uid, claim: `${entry.namespace}/${entry.name}`, outcome }, 'CDI spec restored');
      }
    } catch (err) {
      const message = `claim ${entry.namespace}/${entry.name} (uid ${entry.uid}): cannot restore its CDI spec: ${errorMessage(err)}`;
      errors.push(message);
      log.error({ claimUid: entry.uid, err }, message);
    }
  }

  await recovery.removeTempFiles();
  if (orphans.length > 0) log.info({ orphans }, 'removed CDI specs of claims the API server does not hold');
  // Save when anything changed or the recorded boot ID is not the current one; a node with no claims and no
  // checkpoint writes nothing (so a fault point on the first write fires at the first prepare).
  // Entries the load dropped (checkpoint-entry.ts) are left out of the file by this save.
  const changed = rolledBack.length + dropped.length + (rebuilt?.length ?? 0) > 0 || loaded.error !== undefined || droppedEntries(loaded.claims).length > 0;
  if (changed || (Object.keys(store.entries()).length > 0 && loaded.fileBootId !== bootId)) {
    try {
      await store.persist();
    } catch (err) {
      errors.push(errorMessage(err));
      log.error({ err }, 'cannot save the reconciled checkpoint');
    }
  }
  const report = { rebooted, rolledBack, rebuilt, dropped, restored, orphans, errors, aborted: false };
  log.info({ ...report, errors: errors.length }, 'claims reconciled');
  return report;
}

/**
 * Why the checkpoint cannot be trusted alone (file doc, step 2), or undefined when it can.
 * @throws StateIoError when the CDI dir cannot be listed.
 */
async function untrusted(loaded: StoreLoad, recovery: Pick<ClaimRecovery, 'unaccountedSpecs'>): Promise<string | undefined> {
  if (loaded.error !== undefined) return `the checkpoint was unusable: ${loaded.error.message}`;
  if (loaded.setAside.length > 0) return `set-aside checkpoints lie beside the checkpoint (${loaded.setAside.join(', ')}); remove them once inspected`;
  const unaccounted = await recovery.unaccountedSpecs();
  if (unaccounted.length === 0) return undefined;
  const missing = loaded.missing === true ? 'the checkpoint is missing while ' : '';
  return `${missing}CDI specs of ours have no prepared entry in the checkpoint (claim uids ${unaccounted.join(', ')})`;
}

/** Whether a claim should stay prepared after a reboot, with the reason when not. */
async function stillHeld(source: ClaimSource, ref: ClaimRef): Promise<{ readonly held: boolean; readonly reason?: string }> {
  let claim: ApiClaim;
  try {
    claim = await source.get(ref.namespace, ref.name);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { held: false, reason: 'deleted from the API server' };
    if (err instanceof InvalidClaimError) return { held: false, reason: `replaced by a claim gpulet cannot use: ${err.message}` };
    return { held: true }; // cannot tell: keep it; the periodic clean-up checks again
  }
  if (claim.metadata.uid !== ref.uid) return { held: false, reason: `re-created with uid ${claim.metadata.uid}` };
  if (!reserved(claim)) return { held: false, reason: 'status.reservedFor is empty: no pod holds it' };
  return { held: true };
}
