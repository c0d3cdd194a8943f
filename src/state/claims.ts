/**
 * The claim state machine behind NodePrepareResources / NodeUnprepareResources.
 *
 * Prepare of one claim (two phases, persisted in the checkpoint, as the upstream example driver does):
 *   already PrepareCompleted and its CDI spec present → answer the recorded devices (idempotent);
 *   otherwise GET the claim → resolve the allocation (`allocation.ts`) → checkpoint PrepareStarted →
 *   write the CDI spec → checkpoint PrepareCompleted → answer devices with their CDI IDs.
 * Any failure rolls the claim back (spec removed, entry dropped): a claim whose answer carries an error
 * never leaves a spec or checkpoint entry behind. Unprepare removes the spec and the entry; it needs no
 * lookup and succeeds for an unknown claim. One batch runs at a time (a promise-chain mutex); one claim's
 * failure never fails another. Every claim of a request gets an entry in the answer, keyed by UID.
 */
import { devicesByName } from '../dra/devices.js';
import type {
  ClaimPreparer,
  ClaimRef,
  DeviceOwner,
  OwnershipSource,
  PodRef,
  PreparedDevice,
  PrepareResult,
  UnprepareResult,
} from '../dra/types.js';
import { ClaimError, errorMessage, type CheckpointError } from '../errors.js';
import type { Inventory } from '../gpu/types.js';
import type { Logger } from '../log.js';
import { resolveAllocation } from './allocation.js';
import { buildCdiSpec, CDI_CLAIM_CLASS, cdiDeviceId, cdiVendor, isValidClaimUid, type DeviceMajors } from './cdi.js';
import { CdiWriter } from './cdi-writer.js';
import type { ClaimSource } from './claim-source.js';
import { CheckpointStore, type CheckpointClaim, type CheckpointLoad } from './checkpoint.js';

/** A claim in state PrepareCompleted. */
export interface PreparedClaim {
  readonly claim: ClaimRef;
  /** Devices as answered to the kubelet, with their UUIDs. */
  readonly devices: readonly (PreparedDevice & { readonly uuid: string })[];
  readonly pods: readonly PodRef[];
}

/** Options of {@link ClaimManager}. */
export interface ClaimManagerOptions {
  /** Our driver name, e.g. `gpu.gpulet.dev`. */
  readonly driverName: string;
  /** Our pool name (the node name). */
  readonly poolName: string;
  /** The current inventory (read on every prepare). */
  readonly inventory: () => Inventory;
  readonly claimSource: ClaimSource;
  /** CDI spec directory, e.g. `/var/run/cdi`. */
  readonly cdiDir: string;
  /** Mock mode: device nodes point at empty stand-in files under this dir (see `cdi.ts`). */
  readonly devRoot?: string;
  /** Dynamic majors of nvidia-uvm / nvidia-caps (`readNvidiaMajors()`); mock defaults in devRoot mode. */
  readonly majors?: DeviceMajors;
  /** Checkpoint file path. */
  readonly checkpointPath: string;
  readonly logger: Logger;
  /** Boot ID source (tests); default `/proc/sys/kernel/random/boot_id`. */
  readonly readBootId?: () => Promise<string>;
  /**
   * Called by `init()` when the checkpoint was unusable (moved aside). Hook for rebuilding the prepared
   * state from the API server (claims whose `status.reservedFor` pods run on this node).
   */
  readonly onCheckpointLost?: (error: CheckpointError) => Promise<void> | void;
}

/** Prepares and unprepares claims; the source of device ownership for telemetry. */
export class ClaimManager implements ClaimPreparer, OwnershipSource {
  private readonly cdi: CdiWriter;
  private readonly store: CheckpointStore;
  private readonly log: Logger;
  private readonly vendor: string;
  private claims: Record<string, CheckpointClaim> = {};
  private chain: Promise<unknown> = Promise.resolve();
  private ownersCache: ReadonlyMap<string, readonly DeviceOwner[]> | undefined;
  private initialized = false;

  constructor(private readonly options: ClaimManagerOptions) {
    this.cdi = new CdiWriter(options.cdiDir, options.driverName);
    this.store = new CheckpointStore({
      path: options.checkpointPath,
      ...(options.readBootId !== undefined ? { readBootId: options.readBootId } : {}),
    });
    this.log = options.logger.child({ component: 'claims' });
    this.vendor = cdiVendor(options.driverName);
  }

  /**
   * Load the checkpoint. An unusable file is moved aside, logged, reported to `onCheckpointLost`, and the
   * manager starts empty. Claims left in PrepareStarted are kept: the kubelet's retry re-prepares them.
   * @throws CheckpointError only when the file exists but cannot be read (e.g. permissions).
   */
  async init(): Promise<CheckpointLoad> {
    const loaded = await this.store.load();
    this.claims = { ...loaded.claims };
    this.initialized = true;
    this.ownersCache = undefined;
    if (loaded.error !== undefined) {
      this.log.error({ err: loaded.error }, 'checkpoint unusable; starting with no prepared claims');
      await this.options.onCheckpointLost?.(loaded.error);
    }
    const bootId = await this.store.bootId();
    if (loaded.fileBootId !== '' && loaded.fileBootId !== bootId) {
      this.log.info({ fileBootId: loaded.fileBootId, bootId }, 'node rebooted since the checkpoint was written; CDI specs are rewritten on re-prepare');
    }
    return loaded;
  }

  /** Prepare claims (see file doc). Never rejects. */
  prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>> {
    return this.serialized(async () => {
      const out = new Map<string, PrepareResult>();
      const notReady = await this.ensureInitialized();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue; // duplicated UID: prepared once, answered once
        out.set(ref.uid, notReady !== undefined ? { error: new ClaimError(ref, notReady).message } : await this.prepareOne(ref));
      }
      return out;
    });
  }

  /** Unprepare claims: remove spec and entry. Unknown claims succeed. Never rejects. */
  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>> {
    return this.serialized(async () => {
      const out = new Map<string, UnprepareResult>();
      const notReady = await this.ensureInitialized();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue;
        out.set(ref.uid, notReady !== undefined ? { error: new ClaimError(ref, notReady).message } : await this.unprepareOne(ref));
      }
      return out;
    });
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
   * @returns undefined when ready, else the reason (the checkpoint exists but cannot be read). */
  private async ensureInitialized(): Promise<string | undefined> {
    if (this.initialized) return undefined;
    try {
      await this.init();
      return undefined;
    } catch (err) {
      return `checkpoint not loaded: ${errorMessage(err)}`;
    }
  }

  private serialized<T>(job: () => Promise<T>): Promise<T> {
    const run = this.chain.then(job, job);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async prepareOne(ref: ClaimRef): Promise<PrepareResult> {
    const log = this.log.child({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}` });
    if (!ref.namespace || !ref.name || !isValidClaimUid(ref.uid)) {
      const error = new ClaimError(ref, 'invalid claim reference: namespace and name must be set and uid must be a lower-case UUID');
      log.warn({ err: error }, 'prepare rejected');
      return { error: error.message };
    }
    const existing = this.claims[ref.uid];
    if (existing?.state === 'PrepareCompleted' && (await this.cdi.exists(ref.uid))) {
      log.debug('already prepared');
      return { devices: existing.devices.map(toPreparedDevice) };
    }
    try {
      const devices = await this.prepareFresh(ref);
      log.info({ devices: devices.map((d) => d.deviceName) }, 'claim prepared');
      return { devices: devices.map(toPreparedDevice) };
    } catch (err) {
      const error = err instanceof ClaimError ? err : new ClaimError(ref, errorMessage(err), { cause: err });
      log.warn({ err: error }, 'prepare failed; rolling back');
      await this.rollback(ref, log);
      return { error: error.message };
    }
  }

  private async prepareFresh(ref: ClaimRef): Promise<CheckpointClaim['devices']> {
    let claim;
    try {
      claim = await this.options.claimSource.get(ref.namespace, ref.name);
    } catch (err) {
      throw new ClaimError(ref, `cannot read the ResourceClaim: ${errorMessage(err)}`, { cause: err });
    }
    const { driverName, poolName, devRoot, majors } = this.options;
    const allocation = resolveAllocation({ claim, ref, driverName, poolName, devices: devicesByName(this.options.inventory()) });
    const unique = new Map(allocation.devices.map((d) => [d.deviceName, d]));
    const spec = buildCdiSpec({
      driverName,
      claimUid: ref.uid,
      devices: [...unique.values()].map((d) => ({ device: d.device, env: d.env })),
      ...(devRoot !== undefined ? { devRoot } : {}),
      ...(majors !== undefined ? { majors } : {}),
    });
    const devices = allocation.devices.map((d) => ({
      requestNames: d.requestNames,
      poolName: d.poolName,
      deviceName: d.deviceName,
      uuid: d.device.uuid,
      cdiDeviceIds: [cdiDeviceId(this.vendor, CDI_CLAIM_CLASS, ref.uid, d.deviceName)],
      ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
    }));
    const entry: CheckpointClaim = { ...ref, uid: ref.uid, state: 'PrepareStarted', devices, pods: allocation.pods };
    await this.commit(ref.uid, entry);
    if (devRoot !== undefined) await this.cdi.createStandIns(spec);
    await this.cdi.write(ref.uid, spec);
    await this.commit(ref.uid, { ...entry, state: 'PrepareCompleted' });
    return devices;
  }

  /** Set (or delete, with `undefined`) an entry and persist the checkpoint. */
  private async commit(uid: string, entry: CheckpointClaim | undefined): Promise<void> {
    const next = { ...this.claims };
    if (entry === undefined) delete next[uid];
    else next[uid] = { namespace: entry.namespace, name: entry.name, uid, state: entry.state, devices: entry.devices, pods: entry.pods };
    this.claims = next;
    this.ownersCache = undefined;
    await this.store.save(next);
  }

  private async rollback(ref: ClaimRef, log: Logger): Promise<void> {
    try {
      if (isValidClaimUid(ref.uid)) await this.cdi.remove(ref.uid);
    } catch (err) {
      log.error({ err }, 'rollback: cannot remove CDI spec');
    }
    if (this.claims[ref.uid] === undefined) return;
    try {
      await this.commit(ref.uid, undefined);
    } catch (err) {
      log.error({ err }, 'rollback: cannot persist checkpoint without the claim');
    }
  }

  private async unprepareOne(ref: ClaimRef): Promise<UnprepareResult> {
    const log = this.log.child({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}` });
    const existing = this.claims[ref.uid];
    if (!isValidClaimUid(ref.uid)) return {}; // never prepared: nothing can exist under this UID
    try {
      await this.cdi.remove(ref.uid);
      if (existing !== undefined) await this.commit(ref.uid, undefined);
      log.info({ known: existing !== undefined }, 'claim unprepared');
      return {};
    } catch (err) {
      if (existing !== undefined && this.claims[ref.uid] === undefined) {
        this.claims = { ...this.claims, [ref.uid]: existing }; // keep it so the kubelet's retry persists the removal
        this.ownersCache = undefined;
      }
      const error = new ClaimError(ref, `unprepare failed: ${errorMessage(err)}`, { cause: err });
      log.warn({ err: error }, 'unprepare failed');
      return { error: error.message };
    }
  }
}

/** The kubelet's view of a recorded device (the UUID stays internal). */
function toPreparedDevice(d: CheckpointClaim['devices'][number]): PreparedDevice {
  return {
    requestNames: d.requestNames,
    poolName: d.poolName,
    deviceName: d.deviceName,
    cdiDeviceIds: d.cdiDeviceIds,
    ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
  };
}
