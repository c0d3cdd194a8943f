/**
 * The claim store: the in-memory image of the checkpoint, and the one lock every claim operation runs under.
 * Every other part of the claim state (preparer.ts, recovery.ts, ownership.ts, claim-ops.ts) works through it.
 *
 * Every claim operation is a *session* ({@link ClaimStore.locked}): the in-process mutex (a promise chain),
 * then the cross-process state lock (`<state dir>/claims.lock`, lock.ts) so another gpulet instance sharing
 * the state and CDI dirs (a rolling update) never interleaves, then the checkpoint is RE-READ from disk, so
 * the session works on the latest image whoever wrote it. Sessions are re-entrant (AsyncLocalStorage): inside
 * a session of this store, `locked` runs its job at once, so the startup reconciliation and a clean-up round
 * hold one session across many steps. (Re-entrancy is per store: a session of another store on the same
 * state dir waits for the lock like another process.)
 *
 * Every change goes through {@link ClaimStore.commit}: the image is replaced, then the whole checkpoint is
 * saved atomically (checkpoint-file.ts) before the lock is released, so what is on disk is always a state the
 * state machine passed through. The image is never changed in place: {@link ClaimStore.entries} returns an
 * immutable snapshot whose identity changes exactly when the image is replaced (load, re-read, commit,
 * restore), which is what the ownership view's cache keys on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { dirname } from 'node:path';
import type { ObjectUid } from '../model/names.js';
import { CheckpointError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { droppedEntries, type CheckpointClaim, type CheckpointClaims } from './checkpoint.js';
import { CheckpointStore, type CheckpointLoad } from './checkpoint-file.js';
import { StateLock, StateLockError, stateLockPath, type HeldLock, type StateLockTimings } from './lock.js';

/** Options of {@link ClaimStore}. */
export interface ClaimStoreOptions {
  /** Checkpoint file path; the state lock is `<dir of it>/claims.lock`. */
  readonly checkpointPath: string;
  readonly logger: Logger;
  /** Boot ID source (tests); default `readKernelBootId()` (`GPULET_BOOT_ID_FILE`, else the kernel's). */
  readonly readBootId?: () => Promise<string>;
  /**
   * Called when the checkpoint was found unusable (moved aside) by `init()` or by a session's re-read. The
   * rebuild itself is `reconcileClaims` / `rebuildFromApi` (reconcile.ts), driven by {@link ClaimStore.needsRebuild}.
   */
  readonly onCheckpointLost?: (error: CheckpointError) => Promise<void> | void;
  /** Overrides of the state lock timings (tests only; see lock.ts). */
  readonly lockTimings?: Partial<StateLockTimings>;
}

/** A session in progress: the store it belongs to and the cross-process lock it holds. */
interface Session {
  readonly store: ClaimStore;
  readonly lock: HeldLock;
  active: boolean;
}

const sessions = new AsyncLocalStorage<Session>();

/** The checkpointed claim entries, their sessions, and the checkpoint's life cycle (load, re-read, save). */
export class ClaimStore {
  /** The cross-process lock of the state dir. */
  readonly stateLock: StateLock;
  private readonly checkpoint: CheckpointStore;
  private readonly log: Logger;
  private image: CheckpointClaims = {};
  private chain: Promise<unknown> = Promise.resolve();
  private initialized = false;
  private rebuildWanted = false;

  constructor(private readonly options: ClaimStoreOptions) {
    this.checkpoint = new CheckpointStore({
      path: options.checkpointPath,
      ...(options.readBootId !== undefined ? { readBootId: options.readBootId } : {}),
    });
    this.log = options.logger.child({ component: 'claims' });
    this.stateLock = new StateLock({
      path: stateLockPath(dirname(options.checkpointPath)),
      logger: options.logger,
      ...(options.lockTimings !== undefined ? { timings: options.lockTimings } : {}),
    });
  }

  /**
   * Load the checkpoint. An unusable file (corrupt, truncated, unknown apiVersion, bad checksum, unreadable)
   * is moved aside, logged, reported to `onCheckpointLost`, and the store starts empty with
   * {@link needsRebuild} set. An entry that fails its checks (checkpoint-entry.ts) is dropped alone, with a
   * warning naming it and why, and sets {@link needsRebuild} too (its claim may be live); the next save
   * leaves it out of the file. Entries are taken as recorded; reconciling them with the CDI dir and the API
   * server is `reconcileClaims` (reconcile.ts), which main calls next in the same session
   * (`initAndReconcile`). Runs in a session. Never throws for a bad file.
   * @returns what the checkpoint store loaded (claims, the file's boot ID, the error when unusable).
   * @throws StateLockError when another instance holds the state lock past the wait.
   */
  init(): Promise<CheckpointLoad> {
    return this.locked(() => this.load());
  }

  /** True from an unusable checkpoint (or dropped entries) until {@link rebuilt} is called after a successful rebuild. */
  get needsRebuild(): boolean {
    return this.rebuildWanted;
  }

  /** Record that the prepared state was rebuilt from the API server (clears {@link needsRebuild}). */
  rebuilt(): void {
    this.rebuildWanted = false;
  }

  /** The node's current boot ID (what every save records). Never rejects ('unknown' when unreadable). */
  bootId(): Promise<string> {
    return this.checkpoint.bootId();
  }

  /**
   * Every entry (both states), by claim UID: an immutable snapshot of the image. The same object is returned
   * until the image is replaced (load, re-read, commit, restore); a caller may keep iterating an old one.
   */
  entries(): CheckpointClaims {
    return this.image;
  }

  /** Write the checkpoint as it is (records the current boot ID), in a session. @throws CheckpointError, StateLockError */
  persist(): Promise<void> {
    return this.locked(() => this.save(this.image));
  }

  /**
   * Run `job` in a session: the in-process mutex, the cross-process state lock, and the checkpoint re-read
   * from disk first (once it was loaded). Re-entrant: inside a session of this store `job` runs at once.
   * @returns what `job` returns.
   * @throws StateLockError when another instance holds the lock past the wait, or it cannot be created (`job`
   *   did not run); whatever `job` throws.
   */
  locked<T>(job: () => Promise<T>): Promise<T> {
    return this.session(job, undefined);
  }

  /**
   * Like {@link locked}, but a lock that cannot be taken (StateLockError) is answered by `busy(error)` instead
   * of rejecting: a batch answers per-claim errors and the kubelet retries. @throws whatever `job` throws.
   */
  lockedOr<T>(job: () => Promise<T>, busy: (error: StateLockError) => T): Promise<T> {
    return this.session(job, busy);
  }

  /**
   * Load the checkpoint if `init()` was not called (so a save can never drop recorded claims).
   * @returns undefined when ready, else the reason it could not be loaded. Never rejects.
   */
  async ensureInitialized(): Promise<string | undefined> {
    if (this.initialized) return undefined;
    try {
      await this.init();
      return undefined;
    } catch (err) {
      return `checkpoint not loaded: ${errorMessage(err)}`;
    }
  }

  /**
   * Set (or delete, with `undefined`) the entry of `uid` and save the checkpoint. Only the entry's own fields
   * are recorded. Call inside a session.
   * @throws CheckpointError when the file cannot be written, or when the session's lock was lost (another
   *   instance may be writing); the image in memory has the change either way.
   */
  async commit(uid: ObjectUid, entry: CheckpointClaim | undefined): Promise<void> {
    const next = { ...this.image };
    if (entry === undefined) delete next[uid];
    else next[uid] = { namespace: entry.namespace, name: entry.name, uid, state: entry.state, devices: entry.devices, pods: entry.pods, configs: entry.configs };
    this.image = next;
    await this.save(next);
  }

  /** Put back an entry whose removal could not be saved (so the kubelet's retry saves the removal). No-op when present. */
  restoreEntry(uid: ObjectUid, entry: CheckpointClaim): void {
    if (this.image[uid] !== undefined) return;
    this.image = { ...this.image, [uid]: entry };
  }

  /**
   * Remove temp files of checkpoint writes that a crash left behind. Call inside a session.
   * @returns how many were removed. Never rejects.
   */
  removeTempFiles(): Promise<number> {
    return this.checkpoint.removeTempFiles();
  }

  private async load(): Promise<CheckpointLoad> {
    const loaded = await this.checkpoint.load();
    this.image = { ...loaded.claims };
    this.initialized = true;
    const dropped = droppedEntries(loaded.claims);
    for (const { key, reason } of dropped) {
      this.log.warn({ claimUid: key, reason }, `checkpoint entry for claim ${JSON.stringify(key).slice(0, 80)} dropped: ${reason}`);
    }
    if (dropped.length > 0) {
      // Their claims may be live: a rebuild prepares again those the API server still has allocated to us and reserved.
      this.rebuildWanted = true;
      this.log.error({ dropped: dropped.length }, 'checkpoint entries dropped; rebuilding their claims from the API server');
    }
    if (loaded.error !== undefined) {
      this.rebuildWanted = true;
      this.log.error({ err: loaded.error }, 'checkpoint unusable; rebuilding the prepared claims from the API server');
      await this.options.onCheckpointLost?.(loaded.error);
    }
    return loaded;
  }

  private session<T>(job: () => Promise<T>, busy: ((error: StateLockError) => T) | undefined): Promise<T> {
    const current = sessions.getStore();
    if (current?.store === this && current.active) return job();
    return this.serialized(async () => {
      let lock: HeldLock;
      try {
        lock = await this.stateLock.acquire();
      } catch (err) {
        if (busy === undefined || !(err instanceof StateLockError)) throw err;
        this.log.warn({ err }, 'state lock not taken; answering errors so the caller retries');
        return busy(err);
      }
      const session: Session = { store: this, lock, active: true };
      try {
        return await sessions.run(session, async () => {
          await this.refresh();
          return job();
        });
      } finally {
        session.active = false;
        await lock.release();
      }
    });
  }

  /** Re-read the checkpoint (in a session): another instance may have changed it since our last session.
   * An unusable file is moved aside by the load; the image in memory is kept, saved back, and a rebuild
   * from the API server is marked due. */
  private async refresh(): Promise<void> {
    if (!this.initialized) return; // the first load is init(), with its own reporting
    const loaded = await this.checkpoint.load();
    if (loaded.error === undefined) {
      this.image = { ...loaded.claims };
      return;
    }
    this.rebuildWanted = true;
    this.log.error({ err: loaded.error }, 'checkpoint unusable on re-read; keeping the last image and rebuilding from the API server');
    try {
      await this.options.onCheckpointLost?.(loaded.error);
      await this.save(this.image);
    } catch (err) {
      this.log.error({ err }, 'cannot write the checkpoint back after an unusable re-read');
    }
  }

  /** Save, unless the session lost its lock (then another instance may be writing). @throws CheckpointError */
  private async save(claims: CheckpointClaims): Promise<void> {
    const lost = sessions.getStore()?.lock.compromised;
    if (lost !== undefined) throw new CheckpointError(this.checkpoint.path, `${lost}; not writing (the kubelet retries)`);
    await this.checkpoint.save(claims);
  }

  /** Run `job` after every job queued before it (a promise-chain mutex). Use {@link locked}. */
  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job);
    this.chain = run.catch(() => undefined);
    return run;
  }
}
