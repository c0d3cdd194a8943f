/**
 * The in-memory image of the checkpoint and the one mutex every claim operation runs under. Base class of
 * `ClaimManager` (claims.ts), which adds the prepare/unprepare state machine and the recovery steps.
 *
 * Every change goes through `commit()`: the map is replaced, then the whole checkpoint is saved atomically
 * (checkpoint.ts), so what is on disk is always a state the state machine passed through.
 */
import type { ClaimRef, DeviceOwner, OwnershipSource, PodRef, PreparedDevice } from '../dra/types.js';
import { errorMessage, type CheckpointError } from '../errors.js';
import type { Logger } from '../log.js';
import { CheckpointStore, type CheckpointClaim, type CheckpointClaims, type CheckpointLoad } from './checkpoint.js';

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
}

/** Checkpointed claim entries, their mutex, and the ownership view telemetry reads. */
export class ClaimJournal implements OwnershipSource {
  protected readonly store: CheckpointStore;
  protected readonly log: Logger;
  protected claims: Record<string, CheckpointClaim> = {};
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
  }

  /**
   * Load the checkpoint. An unusable file (corrupt, truncated, unknown apiVersion, bad checksum,
   * unreadable) is moved aside, logged, reported to `onCheckpointLost`, and the journal starts empty with
   * {@link needsRebuild} set. Entries are taken as recorded; reconciling them with the CDI dir and the API
   * server is `reconcileClaims` (reconcile.ts), which main calls next. Never throws for a bad file.
   */
  async init(): Promise<CheckpointLoad> {
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

  /** Write the checkpoint as it is (records the current boot ID). @throws CheckpointError */
  persist(): Promise<void> {
    return this.serialized(() => this.store.save(this.claims));
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

  /** Run `job` after every job queued before it (a promise-chain mutex). */
  protected serialized<T>(job: () => Promise<T>): Promise<T> {
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
    await this.store.save(next);
  }

  /** Put back an entry whose removal could not be persisted (so the kubelet's retry persists it). */
  protected restoreEntry(uid: string, entry: CheckpointClaim): void {
    if (this.claims[uid] !== undefined) return;
    this.claims = { ...this.claims, [uid]: entry };
    this.ownersCache = undefined;
  }
}
