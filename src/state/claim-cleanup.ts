/**
 * Periodic clean-up of prepared claims the API server no longer has. The kubelet normally unprepares a
 * claim when its pod goes; but a claim deleted while the kubelet or the agent was down, or a pod force-deleted
 * in between, can leave an entry and a CDI spec behind forever. Every period each PrepareCompleted claim is
 * looked up by name (`GET resource.k8s.io/v1 namespaces/<ns>/resourceclaims/<name>`):
 * - 404, or a claim of that name with another UID (deleted and re-created) or whose metadata breaks the
 *   rules (`claimFromApi`, claim-source.ts: not ours either) → unprepared (spec and entry);
 * - found with the same UID → kept;
 * - any other error (5xx, 429, 403, unreachable) → kept, and the rest of this round is skipped so an ailing
 *   server gets no burst; the next period tries again. Timers never overlap and are `unref()`ed.
 * A rebuild left due by an unreachable API server at startup (reconcile.ts) is retried first.
 * A round runs holding the cross-process state lock (one session of the claim store, checkpoint re-read first),
 * so it sees the claims another instance sharing the state dir prepared; when the lock is held past the
 * wait the round is skipped (`lockError`), and when the checkpoint cannot be read for an I/O error (EMFILE,
 * EIO...; never taken for corruption) or the session passes its deadline it ends there (`stateError`):
 * nothing more is changed, and the next period tries again. `stop()` ends a round in progress between two
 * claims (or two API pages of a rebuild), so a shutdown never waits for a long round.
 */
import { ApiError, errorMessage, InvalidClaimError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClaimSource } from './claim-source.js';
import type { ClaimStore } from './claim-store.js';
import { StateLockError } from './lock.js';
import { rebuildFromApi, type RebuildRecovery, type RebuildStore } from './rebuild.js';
import type { ClaimRecovery } from './recovery.js';
import { isSessionError } from './session.js';

/** What a round needs of the claim store: a session, the rebuild-due flag and the entries. */
export type CleanupStore = RebuildStore & Pick<ClaimStore, 'locked' | 'needsRebuild' | 'entries'>;
/** What a round needs of recovery: dropping a claim, and what a rebuild needs. */
export type CleanupRecovery = RebuildRecovery & Pick<ClaimRecovery, 'drop'>;

/** Options of {@link startClaimCleanup} and {@link cleanupOnce}. */
export interface CleanupOptions {
  readonly store: CleanupStore;
  readonly recovery: CleanupRecovery;
  /** The API server's claims (`KubeClaimSource`). */
  readonly source: ClaimSource;
  /** Period between rounds, ms (`--cleanup-interval`); 0 or less (or not finite) disables the clean-up. */
  readonly periodMs: number;
  readonly logger: Logger;
  /** Ends a round between two claims (or two pages of a rebuild); `startClaimCleanup` sets it for `stop()`. */
  readonly signal?: AbortSignal | undefined;
}

/** What one round did, by claim UID. */
export interface CleanupReport {
  /** Claims unprepared because the API server no longer has them. */
  readonly dropped: readonly string[];
  /** Claims checked and kept. */
  readonly kept: readonly string[];
  /** Set when an API error ended the round early (the claims not checked are kept). */
  readonly apiError?: string;
  /** Set when the round was skipped because the state lock could not be taken. */
  readonly lockError?: string;
  /** Set when the round was skipped or cut short: the checkpoint could not be read (an I/O error), or the
   * session passed its deadline. Nothing more was changed. */
  readonly stateError?: string;
}

/** A running clean-up. */
export interface ClaimCleanup {
  /** Stop the timer, end a round in progress between two claims, and wait for it. Idempotent. */
  stop(): Promise<void>;
}

/** Run one round (see file doc) under the state lock. Never rejects for want of the state (a `SessionError`). */
export async function cleanupOnce(options: Omit<CleanupOptions, 'periodMs'>): Promise<CleanupReport> {
  try {
    return await options.store.locked(() => cleanupLocked(options), { recovery: true });
  } catch (err) {
    if (!isSessionError(err)) throw err;
    options.logger.warn({ err, component: 'claim-cleanup' }, 'clean-up round skipped: the claim state is unavailable; retrying next round');
    return err instanceof StateLockError ? { dropped: [], kept: [], lockError: err.message } : { dropped: [], kept: [], stateError: err.message };
  }
}

async function cleanupLocked(options: Omit<CleanupOptions, 'periodMs'>): Promise<CleanupReport> {
  const { store, recovery, source } = options;
  const log = options.logger.child({ component: 'claim-cleanup' });
  if (store.needsRebuild) {
    const outcome = await rebuildFromApi({ store, recovery, source, logger: options.logger, signal: options.signal });
    if (outcome.aborted) return { dropped: [], kept: [] };
    if (outcome.rebuilt === undefined) return { dropped: [], kept: [], apiError: outcome.errors.join('; ') };
  }
  const dropped: string[] = [];
  const kept: string[] = [];
  for (const entry of Object.values(store.entries()).filter((e) => e.state === 'PrepareCompleted')) {
    if (options.signal?.aborted) break; // stopping: the claims not checked are kept
    const ref = { namespace: entry.namespace, name: entry.name, uid: entry.uid };
    let reason: string;
    try {
      const claim = await source.get(ref.namespace, ref.name);
      if (claim.metadata.uid === ref.uid) {
        kept.push(ref.uid);
        continue;
      }
      reason = `re-created with uid ${claim.metadata.uid}`;
    } catch (err) {
      if (err instanceof InvalidClaimError) {
        reason = `replaced by a claim gpulet cannot use: ${err.message}`;
      } else if (err instanceof ApiError && err.status === 404) {
        reason = 'deleted from the API server';
      } else {
        const apiError = errorMessage(err);
        log.warn({ claimUid: ref.uid, err }, 'cannot check a prepared claim with the API server; keeping every claim until the next round');
        return { dropped, kept, apiError };
      }
    }
    const { error } = await recovery.drop(ref);
    if (error === undefined) {
      dropped.push(ref.uid);
      log.info({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}`, reason }, 'unprepared a claim the API server no longer has');
    } else {
      log.warn({ claimUid: ref.uid, error }, 'cannot unprepare a stale claim; retrying next round');
    }
  }
  return { dropped, kept };
}

/**
 * Start the periodic clean-up: the first round one period after the start, then one period after the end
 * of each round.
 * @returns a handle whose `stop()` ends it.
 */
export function startClaimCleanup(options: CleanupOptions): ClaimCleanup {
  const log = options.logger.child({ component: 'claim-cleanup' });
  if (!Number.isFinite(options.periodMs) || options.periodMs <= 0) {
    log.info('periodic clean-up of stale claims disabled');
    return { stop: () => Promise.resolve() };
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const stopping = new AbortController();
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = cleanupOnce({ ...options, signal: stopping.signal })
        .catch((err: unknown) => log.error({ err }, 'clean-up round failed'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, options.periodMs);
    timer.unref();
  };
  schedule();
  return {
    stop: async () => {
      stopped = true;
      stopping.abort();
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
