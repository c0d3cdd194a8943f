/**
 * The cross-process lock of the claim state (checkpoint and CDI specs), so two gpulet instances on one node
 * never prepare, unprepare, clean up or reconcile at the same time. During a seamless rolling update
 * (DaemonSet `maxSurge: 1`, pod-UID-suffixed sockets, docs/contracts.md §2) the old and the new agent run side by
 * side, share the state and CDI dirs, and the kubelet may call either; the upstream NVIDIA driver guards the
 * same critical section with a node-global lock file (`pu.lock`, 10 s acquisition timeout, in
 * NVIDIA/k8s-dra-driver-gpu `cmd/gpu-kubelet-plugin/driver.go`).
 *
 * Mechanism: `proper-lockfile` (npm, mkdir-based: `mkdir` is atomic on every filesystem, NFS included). The
 * holder refreshes the lock directory's mtime every `updateMs`; a lock whose mtime is older than `staleMs`
 * is stale and the next acquirer removes and takes it.
 *
 * Why the timings are safe ({@link STATE_LOCK_TIMINGS}):
 * - kill -9 of a holder (no exit handler runs): its lock stops being refreshed and is stale after at most
 *   `staleMs` (5 s). A waiter waits up to `acquireTimeoutMs` (10 s) > `staleMs`, so one wait always outlasts
 *   a dead holder's lock; and the kubelet's Prepare deadline (45 s, KUBELET_DEADLINES) > 10 s, so a waiting
 *   call still answers in time (with a per-claim error at worst, which the kubelet retries).
 * - a live holder refreshes every 1 s: its lock is only taken from it if its event loop stalls for more than
 *   `staleMs - updateMs` (4 s). Should that happen, the library reports the lock compromised
 *   ({@link HeldLock.compromised}); the journal then refuses to write for the rest of that batch.
 * - every instance uses the same constants (they are not configurable on the command line): the library's
 *   staleness check is only sound when all parties agree on `staleMs`.
 * - an orderly exit (SIGTERM, end of process) removes held locks (the library's exit handler).
 * The lock path is `<state dir>/claims.lock` ({@link stateLockPath}), built from configuration only.
 */
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { lock as lockDir } from 'proper-lockfile';
import { errorMessage, GpuletError } from '../errors.js';
import type { Logger } from '../log.js';
import { KnownDirs } from './atomic-file.js';
import { mkdir } from './fs.js';

/** File name of the lock in the state dir. */
export const STATE_LOCK_NAME = 'claims.lock';

/** Timings of the state lock, ms. See the file doc for why they are safe. */
export interface StateLockTimings {
  /** A lock whose mtime is older than this is stale (proper-lockfile `stale`; the library's minimum is 2000). */
  readonly staleMs: number;
  /** The holder refreshes the mtime this often (proper-lockfile `update`; 1000 ≤ update ≤ stale / 2). */
  readonly updateMs: number;
  /** How long {@link StateLock.acquire} waits for a held lock before giving up (must exceed `staleMs`). */
  readonly acquireTimeoutMs: number;
  /** First and largest pause between attempts (exponential, full jitter). */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
}

/** The production timings: stale after 5 s, refreshed every 1 s, waited for up to 10 s (< the kubelet's 45 s). */
export const STATE_LOCK_TIMINGS: StateLockTimings = {
  staleMs: 5_000,
  updateMs: 1_000,
  acquireTimeoutMs: 10_000,
  retryMinMs: 20,
  retryMaxMs: 250,
};

/** `<stateDir>/claims.lock`. Pure. */
export function stateLockPath(stateDir: string): string {
  return join(stateDir, STATE_LOCK_NAME);
}

/** The state lock could not be taken: held by another instance past the wait (`busy`), or not creatable. */
export class StateLockError extends GpuletError {
  constructor(
    readonly lockPath: string,
    /** True when another holder kept it past the wait (retrying helps); false for an fs error. */
    readonly busy: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('STATE_LOCK', message, options);
  }
}

/** A lock this process holds. */
export interface HeldLock {
  readonly path: string;
  /** Set when the lock was lost while held (refresh failed, or another process took it as stale): why. */
  readonly compromised: string | undefined;
  /** Remove the lock. Never rejects (a lock already lost is logged). */
  release(): Promise<void>;
}

/** Options of {@link StateLock}. */
export interface StateLockOptions {
  /** Lock directory path: {@link stateLockPath} of the state dir. */
  readonly path: string;
  readonly logger: Logger;
  /** Overrides of {@link STATE_LOCK_TIMINGS} (tests only: every instance on a node must use the same). */
  readonly timings?: Partial<StateLockTimings>;
}

/** proper-lockfile's fs, with the lock directory created 0700 whatever the umask (it holds nothing, but the
 * state dir must stay readable by root alone). */
const lockFs = { ...fs, mkdir: (p: string, cb: (err: NodeJS.ErrnoException | null) => void) => fs.mkdir(p, 0o700, cb) };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The cross-process lock of one state dir. */
export class StateLock {
  readonly path: string;
  readonly timings: StateLockTimings;
  private readonly log: Logger;

  /** The state dir once created or found (atomic-file.ts `KnownDirs`: no `mkdir -p`, two thread-pool round trips, per acquire). */
  private readonly dirs = new KnownDirs();

  constructor(options: StateLockOptions) {
    this.path = options.path;
    this.timings = { ...STATE_LOCK_TIMINGS, ...options.timings };
    this.log = options.logger.child({ component: 'state-lock', lock: options.path });
  }

  /**
   * Take the lock, waiting (retries with capped exponential backoff and jitter) up to `timeoutMs`; a stale
   * lock (holder dead for `staleMs`) is taken over.
   * @throws StateLockError "another gpulet instance holds <path>; retry" after the wait, or naming the fs error
   *   when the lock cannot be created (state dir missing and not creatable, read-only, ...).
   */
  async acquire(timeoutMs = this.timings.acquireTimeoutMs): Promise<HeldLock> {
    const { staleMs, updateMs, retryMinMs, retryMaxMs } = this.timings;
    const deadline = Date.now() + Math.max(0, timeoutMs);
    const stateDir = dirname(this.path);
    let compromised: string | undefined;
    const onCompromised = (err: Error): void => {
      compromised = `the state lock ${this.path} was lost while held: ${err.message}`;
      this.log.error({ err }, 'state lock compromised (another instance may have taken it as stale); refusing further writes in this batch');
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const release = await this.dirs.within(
          stateDir,
          () => this.makeStateDir(stateDir),
          () => lockDir(this.path, { lockfilePath: this.path, realpath: false, stale: staleMs, update: updateMs, retries: 0, fs: lockFs, onCompromised }),
        );
        const path = this.path;
        const log = this.log;
        return {
          path,
          get compromised() {
            return compromised;
          },
          release: async () => {
            if (compromised !== undefined) return;
            await release().catch((err: unknown) => log.warn({ err }, 'cannot release the state lock; it goes stale'));
          },
        };
      } catch (err) {
        if (err instanceof StateLockError) throw err; // the state dir cannot be created
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') {
          throw new StateLockError(this.path, false, `cannot create the state lock ${this.path}: ${errorMessage(err)}; check that the state dir is writable`, { cause: err });
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new StateLockError(this.path, true, `another gpulet instance holds ${this.path} (waited ${Math.max(0, timeoutMs)} ms); retry`, { cause: err });
        }
        const cap = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(attempt, 16));
        const delay = Math.min(left, retryMinMs + Math.random() * (cap - retryMinMs));
        this.log.debug({ attempt: attempt + 1, retryInMs: Math.round(delay) }, 'the state lock is held by another instance; waiting');
        await sleep(delay);
      }
    }
  }

  /**
   * `mkdir -p` the state dir (first acquire, and again when a lock attempt finds it gone: `KnownDirs.within`).
   * @throws StateLockError naming the fs error when it cannot be created.
   */
  private async makeStateDir(stateDir: string): Promise<void> {
    try {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StateLockError(this.path, false, `cannot create the state dir of the lock ${this.path}: ${errorMessage(err)}; check that it is writable`, { cause: err });
    }
  }
}
