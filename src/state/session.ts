/**
 * Sessions of the claim state (the mechanism behind `ClaimStore.locked` / `lockedOr`, claim-store.ts).
 *
 * A session is: a turn of the in-process mutex (a promise chain), then the cross-process state lock (lock.ts),
 * then the store's re-read of the checkpoint, then the job. Sessions are re-entrant (AsyncLocalStorage): inside
 * a live session of this runner, a nested session runs its job at once.
 *
 * Every session is bounded in time, so nothing that hangs (a file on a stuck mount, an API call that never
 * answers) can hold the state forever:
 * - waiting for the turn and the lock together takes at most the lock's `acquireTimeoutMs` (10 s); past it the
 *   session fails with a busy `StateLockError` (the kubelet retries);
 * - the re-read and the job take at most the session's deadline: {@link STATE_SESSION_DEADLINE_MS} (30 s) for a
 *   kubelet batch, so wait + deadline (40 s) stay inside the kubelet's 45 s; {@link STATE_RECOVERY_DEADLINE_MS}
 *   (5 min) for start-up reconciliation and clean-up rounds, which may list every claim of the cluster.
 *   Past the deadline the session fails with a {@link StateSessionDeadlineError}, its lock is released, the
 *   runner is *stuck* ({@link SessionRunner.stuck}, `/readyz` answers 503) until a later session completes,
 *   and the abandoned job is fenced: its nested sessions, checkpoint saves and CDI writes throw the same
 *   error ({@link SessionRunner.assertLive}) if it ever resumes.
 * The errors a session can fail with for want of the state (lock not taken, checkpoint unreadable, deadline
 * passed) are {@link SessionError}s: `lockedOr` answers them through its fallback, so a batch answers a
 * per-claim error instead of rejecting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { GpuletError } from '../errors.js';
import type { Logger } from '../log.js';
import { StateLockError, type HeldLock, type StateLock } from './lock.js';
import { StateIoError } from './plain-file.js';

/** Deadline of a kubelet batch's session, ms: with the 10 s lock wait, inside the kubelet's 45 s. */
export const STATE_SESSION_DEADLINE_MS = 30_000;
/** Deadline of a start-up reconciliation or clean-up round, ms (they may list every claim of the cluster). */
export const STATE_RECOVERY_DEADLINE_MS = 300_000;

/** A session passed its deadline: it failed, its lock was released, its job is abandoned. */
export class StateSessionDeadlineError extends GpuletError {
  constructor(
    readonly lockPath: string,
    readonly deadlineMs: number,
  ) {
    super(
      'STATE_DEADLINE',
      `a session of the claim state did not finish within ${deadlineMs} ms (a file-system or API call in it did not return); ` +
        `this call failed, the state lock ${lockPath} was released and gpulet reports not ready until a session completes; retry, ` +
        `and check the state and CDI dirs' filesystems`,
    );
  }
}

/** Why a session could not run or finish for want of the state: nothing more was changed; retryable. */
export type SessionError = StateLockError | StateIoError | StateSessionDeadlineError;

/** True for a {@link SessionError}. */
export function isSessionError(err: unknown): err is SessionError {
  return err instanceof StateLockError || err instanceof StateIoError || err instanceof StateSessionDeadlineError;
}

/** Options of one session. */
export interface SessionOptions {
  /** A start-up reconciliation or clean-up round: the recovery deadline instead of the batch deadline. */
  readonly recovery?: boolean;
}

/** Deadlines of {@link SessionRunner}, ms. */
export interface SessionDeadlines {
  readonly batchMs: number;
  readonly recoveryMs: number;
}

/** Since when, and why, the runner is stuck. */
export interface StuckState {
  /** Unix ms of the first deadline passed since the last completed session. */
  readonly since: number;
  readonly reason: string;
}

/** The `/readyz` reason for a stuck runner: "state lock stuck since <ISO time>: <reason>"; undefined when not stuck. */
export function stuckReason(stuck: StuckState | undefined): string | undefined {
  return stuck === undefined ? undefined : `state lock stuck since ${new Date(stuck.since).toISOString()}: ${stuck.reason}`;
}

interface Session {
  readonly owner: SessionRunner;
  readonly lock: HeldLock;
  active: boolean;
  expired: StateSessionDeadlineError | undefined;
}

const sessions = new AsyncLocalStorage<Session>();

/** Options of {@link SessionRunner}. */
export interface SessionRunnerOptions {
  readonly lock: StateLock;
  readonly logger: Logger;
  /** Runs first in every (outermost) session, under the lock: the store's re-read of the checkpoint. */
  readonly begin: () => Promise<void>;
  readonly deadlines?: Partial<SessionDeadlines>;
}

/** Runs sessions (see file doc). */
export class SessionRunner {
  readonly deadlines: SessionDeadlines;
  private chain: Promise<void> = Promise.resolve();
  private stuckState: StuckState | undefined;
  private readonly log: Logger;

  constructor(private readonly options: SessionRunnerOptions) {
    this.deadlines = { batchMs: STATE_SESSION_DEADLINE_MS, recoveryMs: STATE_RECOVERY_DEADLINE_MS, ...options.deadlines };
    this.log = options.logger.child({ component: 'claims' });
  }

  /** Set from a session that passed its deadline until a later session completes; undefined otherwise. */
  stuck(): StuckState | undefined {
    return this.stuckState;
  }

  /**
   * Run `job` in a session (see file doc). With `fallback`, a {@link SessionError} (from the session or the
   * job) is answered by `fallback(error)` instead of rejecting.
   * @throws a SessionError (without `fallback`); whatever `job` throws.
   */
  run<T>(job: () => Promise<T>, fallback: ((error: SessionError) => T) | undefined, options: SessionOptions = {}): Promise<T> {
    const answer = (p: Promise<T>): Promise<T> =>
      fallback === undefined
        ? p
        : p.catch((err: unknown) => {
            if (isSessionError(err)) return fallback(err);
            throw err;
          });
    const current = sessions.getStore();
    if (current?.owner === this) {
      if (current.expired !== undefined) return answer(Promise.reject(current.expired));
      if (current.active) return answer(job());
    }
    const waitMs = this.options.lock.timings.acquireTimeoutMs;
    const started = Date.now();
    const previous = this.chain;
    const run = (async () => {
      if (!(await settlesWithin(previous, waitMs))) {
        throw new StateLockError(this.options.lock.path, true, `another session of this gpulet has held the state lock ${this.options.lock.path} for over ${waitMs} ms; retry`);
      }
      const deadlineMs = options.recovery === true ? this.deadlines.recoveryMs : this.deadlines.batchMs;
      return this.exclusive(job, Math.max(0, waitMs - (Date.now() - started)), deadlineMs);
    })();
    this.chain = Promise.allSettled([previous, run]).then(() => undefined);
    return answer(run);
  }

  /**
   * Throw when the current session of this runner can no longer write: it passed its deadline, or its lock
   * was lost. No-op outside a session. Call before every write of a session.
   * @throws StateSessionDeadlineError; StateLockError naming why the lock was lost.
   */
  assertLive(): void {
    const current = sessions.getStore();
    if (current?.owner !== this) return;
    if (current.expired !== undefined) throw current.expired;
    const lost = current.lock.compromised;
    if (lost !== undefined) throw new StateLockError(current.lock.path, false, `${lost}; not writing (the kubelet retries)`);
  }

  /** The lock, the re-read and the job, bounded by `deadlineMs`; releases the lock however it ends. */
  private async exclusive<T>(job: () => Promise<T>, acquireMs: number, deadlineMs: number): Promise<T> {
    const lock = await this.options.lock.acquire(acquireMs);
    const session: Session = { owner: this, lock, active: true, expired: undefined };
    const expired = new StateSessionDeadlineError(lock.path, deadlineMs);
    let timer: NodeJS.Timeout | undefined;
    const work = sessions.run(session, async () => {
      await this.options.begin();
      return job();
    });
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(expired), deadlineMs);
    });
    try {
      const value = await Promise.race([work, deadline]);
      this.stuckState = undefined;
      return value;
    } catch (err) {
      if (err !== expired) {
        this.stuckState = undefined; // the session ended (with an error) in time
        throw err;
      }
      session.expired = expired;
      this.stuckState ??= { since: Date.now(), reason: expired.message };
      this.log.error({ err: expired, deadlineMs }, 'a state session passed its deadline; lock released, reporting not ready');
      work.then(
        () => this.log.warn('an abandoned state session ended (its writes were refused)'),
        (late: unknown) => this.log.warn({ err: late }, 'an abandoned state session ended (its writes were refused)'),
      );
      throw expired;
    } finally {
      clearTimeout(timer);
      session.active = false;
      await lock.release();
    }
  }
}

/** Resolves true once `p` settles, false when `ms` pass first. Never rejects. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}
