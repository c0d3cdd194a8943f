/**
 * The in-memory image of the checkpoint and the one lock every claim operation runs under. Base class of
 * `ClaimManager` (claims.ts), which adds the prepare/unprepare state machine and the recovery steps.
 *
 * Every claim operation is a *session* ({@link ClaimJournal.locked}): the in-process mutex (a promise chain),
 * then the cross-process state lock (`<state dir>/claims.lock`, lock.ts) so another gpulet instance sharing
 * the state and CDI dirs (a rolling update) never interleaves, then the checkpoint is RE-READ from disk, so
 * the session works on the latest image whoever wrote it. Sessions are re-entrant (AsyncLocalStorage): the
 * startup reconciliation and a clean-up round hold one session across many primitives.
 *
 * Every change goes through `commit()`: the map is replaced, then the whole checkpoint is saved atomically
 * (checkpoint.ts) before the lock is released, so what is on disk is always a state the state machine passed
 * through.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { dirname } from 'node:path';
import type { ClaimRef, DeviceOwner, OwnershipSource, PodRef, PreparedDevice } from '../model/types.js';
import { CheckpointError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { CheckpointStore, type CheckpointClaim, type CheckpointClaims, type CheckpointLoad } from './checkpoint.js';
import { StateLock, StateLockError, stateLockPath, type HeldLock, type StateLockTimings } from './lock.js';

/** A claim in state PrepareCompleted. */
export interface PreparedClaim {
  readonly claim: ClaimRef;
  /** Devices as answered to the kubelet, with their UUIDs. */
  readonly devices: readonly (PreparedDevice & { readonly uuid: string })[];
  readonly pods: readonly PodRef[];
}

/** Options of {@link ClaimJournal}. */
export interface ClaimJournalOptions {
  /** Checkpoint file path. */
  readonly checkpointPath: string;
  readonly logger: Logger;
  /** Boot ID source (tests); default `readKernelBootId()` (`GPULET_BOOT_ID_FILE`, else the kernel's). */
  readonly readBootId?: () => Promise<string>;
  /**
   * Called by `init()` when the checkpoint was unusable (moved aside). The rebuild itself is
   * `reconcileClaims` / `rebuildFromApi` (reconcile.ts), driven by {@link ClaimJournal.needsRebuild}.
   */
  readonly onCheckpointLost?: (error: CheckpointError) => Promise<void> | void;
  /** Overrides of the state lock timings (tests only; see lock.ts). The lock is `<dir of checkpointPath>/claims.lock`. */
  readonly lockTimings?: Partial<StateLockTimings>;
}

/** A session in progress: the journal it belongs to and the cross-process lock it holds. */
interface Session {
  readonly journal: ClaimJournal;
  readonly lock: HeldLock;
  active: boolean;
}

const sessions = new AsyncLocalStorage<Session>();

/** Checkpointed claim entries, their mutex, and the ownership view telemetry reads. */
export class ClaimJournal implements OwnershipSource {
  protected readonly store: CheckpointStore;
  protected readonly log: Logger;
  protected claims: Record<string, CheckpointClaim> = {};
  /** The cross-process lock of the state dir. */
  readonly stateLock: StateLock;
  private chain: Promise<unknown> = Promise.resolve();
  private ownersCache: ReadonlyMap<string, readonly DeviceOwner[]> | undefined;
  private initialized = false;
  private rebuildWanted = false;

  constructor(private readonly journalOptions: ClaimJournalOptions) {
    this.store = new CheckpointStore({
      path: journalOptions.checkpointPath,
      ...(journalOptions.readBootId !== undefined ? { readBootId: journalOptions.readBootId } : {}),
    });
    this.log = journalOptions.logger.child({ component: 'claims' });
    this.stateLock = new StateLock({
      path: stateLockPath(dirname(journalOptions.checkpointPath)),
      logger: journalOptions.logger,
      ...(journalOptions.lockTimings !== undefined ? { timings: journalOptions.lockTimings } : {}),
    });
  }

  /**
   * Load the checkpoint. An unusable file (corrupt, truncated, unknown apiVersion, bad checksum,
   * unreadable) is moved aside, logged, reported to `onCheckpointLost`, and the journal starts empty with
   * {@link needsRebuild} set. Entries are taken as recorded; reconciling them with the CDI dir and the API
   * server is `reconcileClaims` (reconcile.ts), which main calls next in the same session
   * (`initAndReconcile`). Runs under the state lock. Never throws for a bad file.
   * @throws StateLockError when another instance holds the state lock past the wait.
   */
  init(): Promise<CheckpointLoad> {
    return this.locked(() => this.load());
  }

  private async load(): Promise<CheckpointLoad> {
    const loaded = await this.store.load();
    this.claims = { ...loaded.claims };
    this.initialized = true;
    this.ownersCache = undefined;
    if (loaded.error !== undefined) {
      this.rebuildWanted = true;
      this.log.error({ err: loaded.error }, 'checkpoint unusable; rebuilding the prepared claims from the API server');
      await this.journalOptions.onCheckpointLost?.(loaded.error);
    }
    return loaded;
  }

  /** True from an unusable checkpoint until {@link rebuilt} is called after a successful rebuild. */
  get needsRebuild(): boolean {
    return this.rebuildWanted;
  }

  /** Record that the prepared state was rebuilt from the API server. */
  rebuilt(): void {
    this.rebuildWanted = false;
  }

  /** The node's current boot ID (what every save records). */
  bootId(): Promise<string> {
    return this.store.bootId();
  }

  /** A snapshot of every entry (both states), by UID. */
  entries(): CheckpointClaims {
    return { ...this.claims };
  }

  /** Write the checkpoint as it is (records the current boot ID). @throws CheckpointError, StateLockError */
  persist(): Promise<void> {
    return this.locked(() => this.save(this.claims));
  }

  /**
   * Run `job` in a session: the in-process mutex, the cross-process state lock, and the checkpoint re-read
   * from disk first (when loaded before). Re-entrant: inside a session of this journal `job` runs at once.
   * @throws StateLockError when another instance holds the lock past the wait (`job` did not run); whatever
   *   `job` throws.
   */
  locked<T>(job: () => Promise<T>): Promise<T> {
    return this.session(job, undefined);
  }

  /** Like {@link locked}, but a lock that cannot be taken is answered by `busy` (a batch answers per-claim
   * errors) instead of a StateLockError. */
  protected lockedOr<T>(job: () => Promise<T>, busy: (error: StateLockError) => T): Promise<T> {
    return this.session(job, busy);
  }

  private session<T>(job: () => Promise<T>, busy: ((error: StateLockError) => T) | undefined): Promise<T> {
    const current = sessions.getStore();
    if (current?.journal === this && current.active) return job();
    return this.serialized(async () => {
      let lock: HeldLock;
      try {
        lock = await this.stateLock.acquire();
      } catch (err) {
        if (busy === undefined || !(err instanceof StateLockError)) throw err;
        this.log.warn({ err }, 'state lock not taken; answering errors so the caller retries');
        return busy(err);
      }
      const session: Session = { journal: this, lock, active: true };
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

  /** Re-read the checkpoint (under the lock): another instance may have changed it since our last session.
   * An unusable file is moved aside by the load; the image in memory is kept, saved back, and a rebuild
   * from the API server is marked due. */
  private async refresh(): Promise<void> {
    if (!this.initialized) return; // the first load is init(), with its own reporting
    const loaded = await this.store.load();
    this.ownersCache = undefined;
    if (loaded.error === undefined) {
      this.claims = { ...loaded.claims };
      return;
    }
    this.rebuildWanted = true;
    this.log.error({ err: loaded.error }, 'checkpoint unusable on re-read; keeping the last image and rebuilding from the API server');
    try {
      await this.journalOptions.onCheckpointLost?.(loaded.error);
      await this.save(this.claims);
    } catch (err) {
      this.log.error({ err }, 'cannot write the checkpoint back after an unusable re-read');
    }
  }

  /** Save, unless the session lost its lock (then another instance may be writing). @throws CheckpointError */
  private async save(claims: CheckpointClaims): Promise<void> {
    const lost = sessions.getStore()?.lock.compromised;
    if (lost !== undefined) throw new CheckpointError(this.store.path, `${lost}; not writing (the kubelet retries)`);
    await this.store.save(claims);
  }

  /** Device owners by UUID, from claims in PrepareCompleted. */
  owners(): ReadonlyMap<string, readonly DeviceOwner[]> {
    if (this.ownersCache !== undefined) return this.ownersCache;
    const map = new Map<string, DeviceOwner[]>();
    for (const prepared of this.prepared()) {
      for (const d of prepared.devices) {
        const list = map.get(d.uuid) ?? [];
        list.push({ claim: prepared.claim, pods: prepared.pods, deviceName: d.deviceName, uuid: d.uuid });
        map.set(d.uuid, list);
      }
    }
    this.ownersCache = map;
    return map;
  }

  /** Claims in PrepareCompleted. */
  prepared(): readonly PreparedClaim[] {
    return Object.values(this.claims)
      .filter((c) => c.state === 'PrepareCompleted')
      .map((c) => ({ claim: { namespace: c.namespace, name: c.name, uid: c.uid }, devices: c.devices, pods: c.pods }));
  }

  /** Load the checkpoint if `init()` was not called (so a save can never drop recorded claims).
   * @returns undefined when ready, else the reason. */
  protected async ensureInitialized(): Promise<string | undefined> {
    if (this.initialized) return undefined;
    try {
      await this.init();
      return undefined;
    } catch (err) {
      return `checkpoint not loaded: ${errorMessage(err)}`;
    }
  }

  /** Run `job` after every job queued before it (a promise-chain mutex). Use {@link locked}. */
  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Set (or delete, with `undefined`) an entry and persist the checkpoint. @throws CheckpointError */
  protected async commit(uid: string, entry: CheckpointClaim | undefined): Promise<void> {
    const next = { ...this.claims };
    if (entry === undefined) delete next[uid];
    else next[uid] = { namespace: entry.namespace, name: entry.name, uid, state: entry.state, devices: entry.devices, pods: entry.pods };
    this.claims = next;
    this.ownersCache = undefined;
    await this.save(next);
  }

  /** Put back an entry whose removal could not be persisted (so the kubelet's retry persists it). */
  protected restoreEntry(uid: string, entry: CheckpointClaim): void {
    if (this.claims[uid] !== undefined) return;
    this.claims = { ...this.claims, [uid]: entry };
    this.ownersCache = undefined;
  }
}
