/**
 * The claim store: the in-memory image of the checkpoint, and the one lock every claim operation runs under.
 * Every other part of the claim state (preparer.ts, recovery.ts, ownership.ts, claim-ops.ts) works through it.
 *
 * Every claim operation is a *session* ({@link ClaimStore.locked}, session.ts): the in-process mutex (a
 * promise chain), then the cross-process state lock (`<state dir>/claims.lock`, lock.ts) so another gpulet
 * instance sharing the state and CDI dirs (a rolling update) never interleaves, then the checkpoint is RE-READ
 * from disk, so the session works on the latest image whoever wrote it (the read itself is skipped when the
 * file is the very one this store last read or wrote, unchanged: `CheckpointStore.reload`, checkpoint-file.ts).
 * Sessions are re-entrant (AsyncLocalStorage): inside a session of this store, `locked` runs its job at once, so the startup
 * reconciliation and a clean-up round hold one session across many steps. (Re-entrancy is per store: a
 * session of another store on the same state dir waits for the lock like another process.) Every session is
 * bounded by a deadline; one that passes it leaves the store {@link ClaimStore.stuck} until a session completes.
 *
 * The re-read tells damage from I/O errors (checkpoint-file.ts): an I/O error fails the session (a
 * `StateIoError`: `lockedOr` answers it per claim, nothing was changed); an unusable file, or a file gone
 * that recorded claims, is set aside, the image in memory is written back and a rebuild from the API server
 * is marked due; when that write-back fails the session fails too, so no call is answered on a checkpoint
 * that is not on disk.
 *
 * Every change goes through {@link ClaimStore.commit}: the image is replaced, then the whole checkpoint is
 * saved atomically (checkpoint-file.ts) before the lock is released, so what is on disk is always a state the
 * state machine passed through. The image is never changed in place: {@link ClaimStore.entries} returns an
 * immutable snapshot whose identity changes exactly when the image is replaced (load, re-read, commit,
 * restore), which is what the ownership view's cache keys on.
 */
import { dirname } from 'node:path';
import type { ObjectUid } from '../model/names.js';
import type { ClaimUsage } from '../model/types.js';
import { CheckpointError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { droppedEntries, type CheckpointClaim, type CheckpointClaims } from './checkpoint.js';
import { CheckpointStore, type CheckpointLoad, type StagedSave } from './checkpoint-file.js';
import { StateLock, stateLockPath, type StateLockTimings } from './lock.js';
import { StateIoError } from './plain-file.js';
import { SessionRunner, type SessionDeadlines, type SessionError, type SessionOptions, type StuckState } from './session.js';

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
  /** Overrides of the session deadlines (tests only; see session.ts). */
  readonly sessionDeadlines?: Partial<SessionDeadlines>;
}

/** What {@link ClaimStore.init} loaded: the checkpoint, and the set-aside checkpoints beside it. */
export interface StoreLoad extends CheckpointLoad {
  /** Paths of `<checkpoint>.corrupt-*` files beside the checkpoint (the one this load moved aside last). */
  readonly setAside: readonly string[];
}

/** The checkpointed claim entries, their sessions, and the checkpoint's life cycle (load, re-read, save). */
export class ClaimStore {
  /** The cross-process lock of the state dir. */
  readonly stateLock: StateLock;
  private readonly checkpoint: CheckpointStore;
  private readonly log: Logger;
  private readonly sessions: SessionRunner;
  private image: CheckpointClaims = {};
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
    this.sessions = new SessionRunner({
      lock: this.stateLock,
      logger: options.logger,
      begin: () => this.refresh(),
      ...(options.sessionDeadlines !== undefined ? { deadlines: options.sessionDeadlines } : {}),
    });
  }

  /**
   * Load the checkpoint. An unusable file (corrupt, truncated, unknown apiVersion, bad checksum, not a plain
   * file, too large) is moved aside, logged, reported to `onCheckpointLost`, and the store starts empty with
   * {@link needsRebuild} set. An entry that fails its checks (checkpoint-entry.ts) is dropped alone, with a
   * warning naming it and why, and sets {@link needsRebuild} too (its claim may be live); the next save
   * leaves it out of the file. Entries are taken as recorded; reconciling them with the CDI dir and the API
   * server is `reconcileClaims` (reconcile.ts), which main calls next in the same session
   * (`initAndReconcile`). Runs in a session. Never throws for a bad file.
   * @returns what the checkpoint store loaded (claims, the file's boot ID, the error when unusable, whether
   *   it was missing) and the set-aside checkpoints beside it.
   * @throws StateLockError when another instance holds the state lock past the wait; StateIoError when the
   *   checkpoint or its dir cannot be read (EMFILE, EIO, EACCES...: nothing was changed, retry);
   *   StateSessionDeadlineError.
   */
  init(options: SessionOptions = {}): Promise<StoreLoad> {
    return this.locked(() => this.load(), options);
  }

  /** True from an unusable or lost checkpoint, dropped entries (or {@link requireRebuild}) until {@link rebuilt}
   * after a rebuild. */
  get needsRebuild(): boolean {
    return this.rebuildWanted;
  }

  /** Mark a rebuild from the API server due (reconcile.ts: the checkpoint cannot be trusted), logging why. */
  requireRebuild(reason: string): void {
    if (!this.rebuildWanted) this.log.warn({ reason }, 'rebuilding the prepared claims from the API server before removing any CDI spec');
    this.rebuildWanted = true;
  }

  /** Set while a session passed its deadline and none completed since (for `/readyz`); undefined otherwise. */
  stuck(): StuckState | undefined {
    return this.sessions.stuck();
  }

  /**
   * Throw when the current session can no longer write (its deadline passed, or its lock was lost); call
   * before writing a file in a session. No-op outside a session.
   * @throws StateSessionDeadlineError, StateLockError.
   */
  assertLive(): void {
    this.sessions.assertLive();
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
   * Run `job` in a session (session.ts): the in-process mutex, the cross-process state lock, and the
   * checkpoint re-read from disk first (once it was loaded), all within the session's deadline (`recovery`:
   * the longer one of start-up and clean-up). Re-entrant: inside a session of this store `job` runs at once.
   * @returns what `job` returns.
   * @throws StateLockError when the lock is held past the wait, or cannot be created (`job` did not run);
   *   StateIoError when the re-read hits an I/O error (`job` did not run); StateSessionDeadlineError;
   *   whatever `job` throws.
   */
  locked<T>(job: () => Promise<T>, options: SessionOptions = {}): Promise<T> {
    return this.sessions.run(job, undefined, options);
  }

  /**
   * Like {@link locked}, but a {@link SessionError} (lock not taken, checkpoint unreadable, deadline passed;
   * from the session or from `job`) is answered by `unavailable(error)` instead of rejecting: a batch answers
   * per-claim errors and the kubelet retries. @throws whatever else `job` throws.
   */
  lockedOr<T>(job: () => Promise<T>, unavailable: (error: SessionError) => T, options: SessionOptions = {}): Promise<T> {
    return this.sessions.run(job, unavailable, options);
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
    await (await this.stageCommit(uid, entry)).commit();
  }

  /**
   * {@link commit} in two halves, for a caller with something to do between them (claim-ops.ts: the CDI spec's
   * rename, beside the PrepareCompleted file's write): the image is replaced and the checkpoint's new file
   * written and fsync'd now, but not put in place; the returned `commit()` puts it in place (what makes the change
   * durable), `abort()` removes it (the image keeps the change, as after a failed commit). Call inside a session.
   * @throws CheckpointError when the file cannot be written; StateSessionDeadlineError, StateLockError when the
   *   session can no longer write. The staged `commit()` checks the session again (aborting when it cannot write)
   *   and throws the same.
   */
  async stageCommit(uid: ObjectUid, entry: CheckpointClaim | undefined): Promise<StagedSave> {
    const next = { ...this.image };
    if (entry === undefined) delete next[uid];
    else {
      const { namespace, name, state, devices, pods, configs, usage } = entry;
      next[uid] = { namespace, name, uid, state, devices, pods, configs, ...(usage === undefined ? {} : { usage }) };
    }
    this.image = next;
    this.sessions.assertLive();
    const staged = await this.checkpoint.stage(next);
    return {
      commit: async () => {
        try {
          this.sessions.assertLive();
        } catch (err) {
          await staged.abort();
          throw err;
        }
        await staged.commit();
      },
      abort: () => staged.abort(),
    };
  }

  /**
   * Record per-claim usage (src/telemetry/accounting.ts) in the entries of the claims still in PrepareCompleted,
   * in one session and one save; UIDs with no such entry are ignored (unprepared meanwhile), and nothing is
   * written when none is left.
   * @throws StateLockError, StateIoError, StateSessionDeadlineError (the session); CheckpointError (the save).
   */
  recordUsage(usages: ReadonlyMap<string, ClaimUsage>): Promise<void> {
    return this.locked(async () => {
      const next: Record<string, CheckpointClaim> = { ...this.image };
      let changed = false;
      for (const [uid, usage] of usages) {
        const entry = Object.hasOwn(next, uid) ? next[uid] : undefined;
        if (entry?.state !== 'PrepareCompleted') continue;
        next[uid] = { ...entry, usage };
        changed = true;
      }
      if (!changed) return;
      this.image = next;
      await this.save(next);
    });
  }

  /** Put back an entry whose removal could not be saved (so the kubelet's retry saves the removal). No-op when present. */
  restoreEntry(uid: ObjectUid, entry: CheckpointClaim): void {
    if (this.image[uid] !== undefined) return;
    this.image = { ...this.image, [uid]: entry };
  }

  /**
   * Close the checkpoint file the store keeps open to recognise it (checkpoint-file.ts); call at shutdown. The
   * store stays usable: its next session re-reads the file in full. Never rejects.
   */
  close(): Promise<void> {
    return this.checkpoint.close();
  }

  /**
   * Remove temp files of checkpoint writes that a crash left behind. Call inside a session.
   * @returns how many were removed. Never rejects.
   */
  removeTempFiles(): Promise<number> {
    return this.checkpoint.removeTempFiles();
  }

  private async load(): Promise<StoreLoad> {
    const setAside = await this.checkpoint.setAside(); // first: a failure here changes nothing
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
    return { ...loaded, setAside: loaded.movedTo === undefined ? setAside : [...setAside, loaded.movedTo] };
  }

  /**
   * Re-read the checkpoint (in a session): another instance may have changed it since our last session. An
   * unusable file (moved aside by the load), or a missing one while the image records claims, keeps the image,
   * writes it back and marks a rebuild due (see file doc).
   * @throws StateIoError when the file cannot be read (nothing changed), or cannot be written back.
   */
  private async refresh(): Promise<void> {
    if (!this.initialized) return; // the first load is init(), with its own reporting
    const loaded = await this.checkpoint.reload(); // skips the read when the file is the one last read or written
    const lostFile = loaded.missing === true && Object.keys(this.image).length > 0;
    if (loaded.error === undefined && !lostFile) {
      this.image = { ...loaded.claims };
      return;
    }
    const error = loaded.error ?? new CheckpointError(this.checkpoint.path, 'gone on re-read, though it recorded prepared claims; writing back the last image and rebuilding from the API server');
    this.rebuildWanted = true;
    this.log.error({ err: error }, 'checkpoint unusable on re-read; keeping the last image and rebuilding from the API server');
    try {
      await this.options.onCheckpointLost?.(error);
    } catch (err) {
      this.log.warn({ err }, 'the checkpoint-lost hook failed');
    }
    try {
      await this.save(this.image);
    } catch (err) {
      const where = loaded.movedTo === undefined ? 'it is missing' : `the unusable file was moved to ${loaded.movedTo}`;
      throw new StateIoError('checkpoint', this.checkpoint.path, 'write back the last image', err, `${where}; the claims stay in memory, a rebuild from the API server is due, and the next session writes them back`);
    }
  }

  /**
   * Save, unless the session can no longer write (lost lock, deadline passed: another instance may be writing).
   * @throws CheckpointError; StateSessionDeadlineError, StateLockError.
   */
  private async save(claims: CheckpointClaims): Promise<void> {
    this.sessions.assertLive();
    await this.checkpoint.save(claims);
  }
}
