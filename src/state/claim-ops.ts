/**
 * The per-claim steps shared by the preparer (preparer.ts: the kubelet's calls) and recovery (recovery.ts:
 * start-up reconciliation, rebuild, clean-up): prepare one claim, unprepare one claim, roll a failed prepare
 * back, and build and write a claim's CDI spec. One copy of each step, so a claim prepared again by a
 * rebuild or a spec restored after a reboot is exactly what the kubelet's prepare writes.
 *
 * Prepare of one claim (two phases, persisted in the checkpoint, as the upstream example driver does):
 *   recorded under another namespace/name → a per-claim error naming both (nothing touched: the record
 *   is another claim's, or forged; it goes when that claim is unprepared, or at the periodic clean-up);
 *   already PrepareCompleted and its devices ours (this pool, the current inventory) → answer the recorded
 *   devices (idempotent), their CDI IDs recomputed from the UID and the device name, after writing its CDI
 *   spec back from the entry when it is missing (no API call, nothing else touched);
 *   otherwise (new, or recorded with a device that is no longer ours) GET the claim (unless given) → resolve
 *   the allocation (`allocation.ts`) → checkpoint PrepareStarted → write the CDI spec → checkpoint
 *   PrepareCompleted → answer devices with their CDI IDs. That order is the order in which each file appears
 *   at its path and is made durable (rename, fsync of its directory); the next file's content is written and
 *   fsync'd, as a temp file no reader looks at, beside the step before (`stageFileAtomic`, atomic-file.ts).
 * A failure of a fresh prepare rolls the claim back (entry dropped, spec removed): a claim whose answer
 * carries an error never leaves a checkpoint entry behind, nor a spec of an attempt. A spec that was there
 * before the attempt (a claim whose entry was lost, adopted by a rebuild; or a recorded claim prepared again)
 * is left: it may be a running pod's, and only the API server can say it is not (reconcile.ts). A failure for
 * a PrepareCompleted claim answered from its record (its spec cannot be checked or written back) removes
 * nothing: another pod may hold the claim. Unprepare removes the spec, then the entry (dynamic MIG, between
 * them: entry `UnprepareStarted`, then the MIG devices gpulet created destroyed; without MIG, the checkpoint's
 * new file is written beside the spec's removal and put in place once that removal is durable). Every answer of success
 * is given after its spec and checkpoint entry are on disk (and their directories synced); an I/O error (its
 * errno named) fails the claim's answer, which says it is retryable, and the kubelet retries.
 * The checkpoint is not trusted for what goes back to the kubelet or into a spec (checkpoint-entry.ts checks
 * each entry on load; here: the claim's name, our pool and inventory; CDI IDs are always derived).
 * Dynamic MIG (issue 12; `options.dynamicMig`): a device name of a dynamic GPU that is a possible placement with
 * no instance resolves to that placement (`prepareDevicesByName`); prepare checks `fitsHardwareRules` against the
 * instances that exist, records the intent (`PrepareMigCreating`) before the first MIG call, creates each instance
 * at exactly its placement, records its GPU-instance ID and MIG UUID (`PrepareStarted`), then continues as above
 * with the new MIG device. The full GPU of a dynamic GPU in MIG mode is handed out by turning MIG mode off for the
 * claim (recorded as the device's `migModeOff` in the same intent, before the NVML call), after which the inventory
 * lists it as the full GPU it is and the spec is the normal full-GPU one. Unprepare records `UnprepareStarted`
 * before destroying the instances the entry records and turning MIG mode on again where it records it off; only
 * those are ever destroyed or switched (`releaseOwned`; the MIG steps are in mig-ops.ts). Recovery (reconcile.ts)
 * rolls back every state but PrepareCompleted through `unprepareOne`, which does the same.
 * Fault points (`src/util/fault-points.ts`) mark every step, for the crash tests.
 *
 * Every step runs inside a session of the claim store (claim-store.ts), which its caller opens. The steps take
 * a {@link ClaimRef}, whose fields were checked where the reference entered gpulet (the kubelet's request,
 * the API server's claim, the checkpoint: src/model/claim-ref.ts), so its UID may name files; none is
 * checked again here.
 */
import { devicesByName, type AllocatableDevice } from '../model/devices.js';
import type { ObjectUid } from '../model/names.js';
import type { ClaimRef, PreparedDevice, PrepareResult, UnprepareResult } from '../model/types.js';
import { CdiError, ClaimError, errorMessage } from '../errors.js';
import { errnoOf } from './plain-file.js';
import { faultPoint } from '../util/fault-points.js';
import type { Inventory } from '../gpu/types.js';
import { prepareDevicesByName, type PrepareDevice } from '../model/placement-devices.js';
import type { Logger } from '../log.js';
import { resolveAllocation } from './allocation.js';
import { CDI_CLAIM_CLASS, cdiDeviceId, cdiVendor, type CdiSpec, type DeviceMajors } from './cdi.js';
import type { StagedFile } from './atomic-file.js';
import { CdiWriter } from './cdi-writer.js';
import type { CheckpointClaim } from './checkpoint.js';
import type { ApiClaim, ClaimSource } from './claim-source.js';
import { claimCdiSpec, toPreparedDevice } from './claim-spec.js';
import type { ClaimStore } from './claim-store.js';
import type { UserspacePort } from '../userspace/provider.js';
import { migIntent, MigOps, type DynamicMigOps, type MigAttempt } from './mig-ops.js';

/** What the steps need of the claim store. */
export type OpsStore = Pick<ClaimStore, 'entries' | 'commit' | 'stageCommit' | 'restoreEntry' | 'assertLive'>;

/** Options of {@link ClaimOps}. */
export interface ClaimOpsOptions {
  readonly store: OpsStore;
  /** Our driver name, e.g. `gpu.gpulet.dev`. */
  readonly driverName: string;
  /** Our pool name (the node name). */
  readonly poolName: string;
  /** The current inventory (read on every prepare and spec build). */
  readonly inventory: () => Inventory;
  /** Where prepare GETs a claim from (the API server). */
  readonly claimSource: ClaimSource;
  /** CDI spec directory, e.g. `/var/run/cdi`. */
  readonly cdiDir: string;
  /** Mock mode: device nodes point at empty stand-in files under this dir (see `cdi.ts`). */
  readonly devRoot?: string;
  /** Dynamic majors of nvidia-uvm / nvidia-caps (`readNvidiaMajors()`); mock defaults in devRoot mode. */
  readonly majors?: DeviceMajors;
  /**
   * The driver userspace (src/userspace/provider.ts): refreshed for the inventory's driver version before each
   * prepare (a no-op while the version is unchanged), its edits in every spec, its extra CDI IDs in answers.
   */
  readonly userspace?: UserspacePort;
  /** Dynamic MIG (issue 12): which GPUs publish placement devices, and the backend's MIG management. */
  readonly dynamicMig?: DynamicMigOps;
  readonly logger: Logger;
}

/** The per-claim steps (see file doc). Call every method inside a session of the store. */
export class ClaimOps {
  /** Our driver name (allocation results for it are ours). */
  readonly driverName: string;
  /** Our pool name (the node name). */
  readonly poolName: string;
  /** The CDI spec files of our claims. */
  readonly cdi: CdiWriter;
  private readonly store: OpsStore;
  private readonly vendor: string;
  private readonly log: Logger;
  /** The dynamic MIG steps (mig-ops.ts). */
  private readonly mig: MigOps;

  constructor(private readonly options: ClaimOpsOptions) {
    this.store = options.store;
    this.mig = new MigOps(options.dynamicMig, options.store);
    this.driverName = options.driverName;
    this.poolName = options.poolName;
    this.cdi = new CdiWriter(options.cdiDir, options.driverName);
    this.vendor = cdiVendor(options.driverName);
    this.log = options.logger.child({ component: 'claims' });
  }

  /**
   * Prepare one claim (see file doc). `listed` is the claim as already read from the API server (a rebuild):
   * no GET then. Never rejects: a failure is rolled back and answered as a per-claim error naming the claim.
   * @returns the devices with their CDI IDs, or the error.
   */
  async prepareOne(ref: ClaimRef, listed?: ApiClaim): Promise<PrepareResult> {
    const log = this.log.child({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}` });
    const existing = this.store.entries()[ref.uid];
    if (existing !== undefined && (existing.namespace !== ref.namespace || existing.name !== ref.name)) {
      const error = new ClaimError(
        ref,
        `the checkpoint records uid ${ref.uid} as claim ${existing.namespace}/${existing.name}, not ${ref.namespace}/${ref.name}; ` +
          `refusing to answer with that claim's devices (the record goes when ${existing.namespace}/${existing.name} is unprepared, ` +
          'or at the periodic clean-up once the API server has no such claim with this uid; the kubelet retries)',
      );
      log.warn({ err: error, recorded: `${existing.namespace}/${existing.name}` }, 'prepare refused: the uid is recorded under another name');
      return { error: error.message };
    }
    await this.options.userspace?.refresh(this.options.inventory().system.driverVersion);
    if (existing?.state === 'PrepareCompleted' && this.foreignDevice(existing) === undefined) return this.preparedAgain(ref, existing, log);
    // An unfinished dynamic MIG prepare of this claim (its rollback could not destroy an instance or turn MIG mode
    // on again): finish that rollback before changing anything again, so the claim never holds two instances; on
    // failure the entry stays.
    if (existing !== undefined && existing.state !== 'PrepareCompleted') {
      try {
        await this.mig.releaseOwned(existing, log);
      } catch (err) {
        const error = new ClaimError(ref, `an earlier attempt's MIG change cannot be undone: ${errorMessage(err)}; its checkpoint entry is kept (the kubelet retries)`, { cause: err });
        log.warn({ err: error }, 'prepare failed');
        return { error: error.message };
      }
    }
    // A spec that was there before this attempt (no entry at all: a claim whose entry was lost; or a recorded
    // claim prepared again) was not written by it: a failure leaves it. Until known otherwise, it leaves it.
    const attempt: Attempt = { hadSpec: true, created: [], modeOff: [] };
    try {
      // Whether a spec was there: looked up beside the claim's GET, known before anything is written.
      const hadSpec = existing === undefined || existing.state === 'PrepareCompleted' ? this.cdi.exists(ref.uid) : Promise.resolve(false);
      hadSpec.catch(() => undefined); // awaited in prepareFresh; a failure is thrown there
      const devices = await this.prepareFresh(ref, listed, attempt, hadSpec, log);
      const answer = devices.map((d) => this.preparedDevice(ref.uid, d));
      log.info({ devices: devices.map((d) => d.deviceName) }, 'claim prepared');
      return { devices: answer };
    } catch (err) {
      const error = err instanceof ClaimError ? err : new ClaimError(ref, withRetry(errorMessage(err), err, 'the claim was rolled back'), { cause: err });
      log.warn({ err: error }, 'prepare failed; rolling back');
      await this.rollback(ref, attempt, log);
      return { error: error.message };
    }
  }

  /**
   * Unprepare one claim: remove its spec, then its entry. An unknown claim succeeds. Never rejects: when the
   * removal cannot be saved the entry is put back (the kubelet's retry saves it) and the error names the claim.
   * @returns `{}` on success, else the error.
   */
  async unprepareOne(ref: ClaimRef): Promise<UnprepareResult> {
    const log = this.log.child({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}` });
    const existing = this.store.entries()[ref.uid];
    try {
      this.store.assertLive();
      const mig = existing?.devices.some((d) => d.mig !== undefined || d.migModeOff !== undefined) === true;
      // Without MIG steps between them, the checkpoint's new file (the entry removed) is written and fsync'd
      // beside the spec's removal, and put in place only once that removal is durable.
      const removal = existing !== undefined && !mig ? this.store.stageCommit(ref.uid, undefined) : undefined;
      removal?.catch(() => undefined); // awaited below; a failure is thrown there
      try {
        await this.cdi.remove(ref.uid);
      } catch (err) {
        await removal?.then((r) => r.abort(), () => undefined);
        throw err;
      }
      faultPoint('unprepare:after-cdi-removed');
      if (mig && existing !== undefined) {
        // Dynamic MIG: say so before destroying (or switching MIG mode back on), so a crash from here on ends in
        // recovery finishing the unprepare.
        if (existing.state !== 'UnprepareStarted') await this.store.commit(ref.uid, { ...existing, state: 'UnprepareStarted' });
        await this.mig.releaseOwned(existing, log);
        faultPoint('unprepare:after-mig-destroyed');
      }
      if (removal !== undefined) await (await removal).commit();
      else if (existing !== undefined) await this.store.commit(ref.uid, undefined);
      faultPoint('unprepare:after-checkpoint');
      log.info({ known: existing !== undefined }, 'claim unprepared');
      return {};
    } catch (err) {
      if (existing !== undefined) this.store.restoreEntry(ref.uid, existing); // the kubelet's retry persists the removal
      const error = new ClaimError(ref, withRetry(`unprepare failed: ${errorMessage(err)}`, err, 'its checkpoint entry is kept'), { cause: err });
      log.warn({ err: error }, 'unprepare failed');
      return { error: error.message };
    }
  }

  /**
   * The first device of a recorded claim that is not ours — in another pool, or not in the current inventory
   * (a GPU gone, MIG reconfigured, or a forged record) — described; undefined when every device is ours.
   */
  foreignDevice(entry: Pick<CheckpointClaim, 'devices'>, byName?: ReadonlyMap<string, AllocatableDevice>): string | undefined {
    const inventory = byName ?? devicesByName(this.options.inventory());
    const missing = entry.devices.find((d) => !inventory.has(d.deviceName));
    return this.otherPool(entry) ?? (missing && `device ${JSON.stringify(missing.deviceName)} is not in the current inventory`);
  }

  /** The first device of a recorded claim in a pool other than ours, described; undefined when none. */
  private otherPool(entry: Pick<CheckpointClaim, 'devices'>): string | undefined {
    const d = entry.devices.find((x) => x.poolName !== this.poolName);
    return d && `device ${JSON.stringify(d.deviceName)} is recorded in pool ${JSON.stringify(d.poolName)}, not this node's pool ${JSON.stringify(this.poolName)}`;
  }

  /**
   * The spec of a claim's devices and opaque-config env, as prepare writes it (from the current inventory).
   * @throws CdiError when a device is not ours (another pool, not in the inventory), or for the reasons of
   *   `buildCdiSpec`.
   */
  specOf(uid: ObjectUid, entry: Pick<CheckpointClaim, 'devices' | 'configs'>, byName?: ReadonlyMap<string, AllocatableDevice>): CdiSpec {
    const { driverName, devRoot, majors } = this.options;
    const inventory = byName ?? devicesByName(this.options.inventory());
    const foreign = this.otherPool(entry);
    if (foreign !== undefined) throw new CdiError(`claim ${uid}: ${foreign}; its CDI spec is not written`);
    const userspace = this.options.userspace?.edits();
    return claimCdiSpec({ driverName, claimUid: uid, devices: entry.devices, configs: entry.configs, byName: inventory, devRoot, majors, userspace });
  }

  /**
   * The kubelet's view of a recorded device: our CDI ID, then the driver userspace's (the toolkit's device).
   * @throws CdiError naming the claim, the toolkit's spec and the UUID when that device is not in the spec.
   */
  private preparedDevice(uid: ObjectUid, d: CheckpointClaim['devices'][number]): PreparedDevice {
    try {
      return toPreparedDevice(this.vendor, uid, d, this.options.userspace?.cdiIdsFor(d.uuid) ?? []);
    } catch (err) {
      throw new CdiError(`device ${d.deviceName}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Write a claim's spec atomically, after creating its stand-in device files in mock mode.
   * @throws CdiError naming the path or dir and what to check.
   */
  async writeSpec(uid: ObjectUid, spec: CdiSpec): Promise<void> {
    if (this.options.devRoot !== undefined) await this.cdi.createStandIns(spec);
    await this.cdi.write(uid, spec);
  }

  /**
   * A PrepareCompleted claim asked again (another pod, a kubelet restart): its spec is written back from the
   * entry when missing (or not a regular file); nothing is removed on failure. Never rejects.
   */
  private async preparedAgain(ref: ClaimRef, entry: CheckpointClaim, log: Logger): Promise<PrepareResult> {
    try {
      if (await this.cdi.exists(ref.uid)) {
        log.debug('already prepared');
      } else {
        this.store.assertLive();
        await this.writeSpec(ref.uid, this.specOf(ref.uid, entry));
        log.info('already prepared; its missing CDI spec was written back from the checkpoint');
      }
      return { devices: entry.devices.map((d) => this.preparedDevice(ref.uid, d)) };
    } catch (err) {
      const error = new ClaimError(ref, withRetry(`prepared, but its CDI spec cannot be checked or written back: ${errorMessage(err)}`, err, 'nothing was removed'), { cause: err });
      log.warn({ err: error }, 'prepare of a prepared claim failed');
      return { error: error.message };
    }
  }

  /** `hadSpec`: whether the claim's spec was there before (recorded in `attempt` before the first write). */
  private async prepareFresh(ref: ClaimRef, listed: ApiClaim | undefined, attempt: Attempt, hadSpec: Promise<boolean>, log: Logger): Promise<CheckpointClaim['devices']> {
    let claim = listed;
    if (claim === undefined) {
      try {
        claim = await this.options.claimSource.get(ref.namespace, ref.name);
      } catch (err) {
        throw new ClaimError(ref, `cannot read the ResourceClaim: ${errorMessage(err)}`, { cause: err });
      }
      faultPoint('prepare:after-get');
    }
    attempt.hadSpec = await hadSpec;
    const { driverName, poolName } = this;
    const dyn = this.options.dynamicMig;
    const inventory = this.options.inventory();
    const allocation =
      dyn === undefined
        ? resolveAllocation({ claim, ref, driverName, poolName, devices: devicesByName(inventory) })
        : resolveAllocation({ claim, ref, driverName, poolName, devices: prepareDevicesByName(inventory, (g) => dyn.geometryOf(g)) });
    if (dyn !== undefined) this.mig.refuseOthersInstances(ref, allocation.devices.map((d) => d.deviceName));
    let devices: CheckpointClaim['devices'] = allocation.devices.map((d) => ({
      requestNames: d.requestNames,
      poolName: d.poolName,
      deviceName: d.deviceName,
      uuid: d.device.kind === 'placement' ? '' : d.device.kind === 'whole-gpu' ? d.device.gpu.uuid : d.device.uuid,
      cdiDeviceIds: [cdiDeviceId(this.vendor, CDI_CLAIM_CLASS, ref.uid, d.deviceName)],
      ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
      ...(d.device.kind === 'placement' ? { mig: migIntent(d.device) } : {}),
      ...(d.device.kind === 'whole-gpu' ? { migModeOff: { gpuUuid: d.device.gpu.uuid } } : {}),
    }));
    const unique = <T extends { readonly name: string }>(xs: T[]): T[] => [...new Map(xs.map((x) => [x.name, x])).values()];
    const placements = unique(allocation.devices.flatMap((d) => (d.device.kind === 'placement' ? [d.device] : [])));
    const wholes = unique(allocation.devices.flatMap((d) => (d.device.kind === 'whole-gpu' ? [d.device] : [])));
    if (placements.length > 0 || wholes.length > 0) {
      const intent: CheckpointClaim = { ...ref, state: 'PrepareMigCreating', devices, pods: allocation.pods, configs: allocation.configs };
      devices = await this.mig.prepareMig(ref, intent, { placements, wholes }, attempt, log);
    }
    this.logUnownedInstances(allocation.devices, log);
    const entry: CheckpointClaim = { ...ref, state: 'PrepareStarted', devices, pods: allocation.pods, configs: allocation.configs };
    const byName = devicesByName(this.options.inventory());
    const spec = this.specOf(ref.uid, entry, byName);
    // The journal's order holds for everything visible and durable: the spec appears (its rename) only once the
    // checkpoint durably says PrepareStarted, and PrepareCompleted only once the spec is durably in place. Only
    // the files' contents are written and fsync'd earlier, beside the step before (`stageFileAtomic`: a temp file
    // no reader looks at, removed on failure, and by start-up after a crash), so each step waits for a rename
    // and a directory fsync rather than for a whole atomic write.
    const specStaged = this.stageSpec(ref.uid, spec);
    specStaged.catch(() => undefined); // awaited below; a failure is thrown there
    let staged: StagedFile | undefined;
    try {
      await this.store.commit(ref.uid, entry);
      faultPoint('prepare:after-started');
      this.store.assertLive();
      staged = await specStaged;
      const completed = this.store.stageCommit(ref.uid, { ...entry, state: 'PrepareCompleted' });
      completed.catch(() => undefined); // awaited below; a failure is thrown there
      try {
        await staged.commit();
      } catch (err) {
        await completed.then((c) => c.abort(), () => undefined);
        throw err;
      }
      faultPoint('prepare:after-cdi');
      await (await completed).commit();
      faultPoint('prepare:after-completed');
      return devices;
    } catch (err) {
      await (staged ?? (await specStaged.catch(() => undefined)))?.abort();
      throw err;
    }
  }

  /**
   * {@link writeSpec} in two halves (cdi-writer.ts `stage`): the stand-ins (mock mode) and the spec's temp file
   * now, its rename by the returned file's `commit()`.
   * @throws CdiError naming the path or dir and what to check.
   */
  private async stageSpec(uid: ObjectUid, spec: CdiSpec): Promise<StagedFile> {
    if (this.options.devRoot !== undefined) await this.cdi.createStandIns(spec);
    return this.cdi.stage(uid, spec);
  }

  /**
   * Log each allocated MIG device of a dynamic GPU that exists but that no checkpoint entry records as gpulet's
   * (made by someone else, or gpulet's own before the checkpoint was lost: nothing can tell them apart). It is
   * prepared as the static MIG device it is and never destroyed by gpulet; the log says how to free its slices.
   */
  private logUnownedInstances(devices: readonly { readonly deviceName: string; readonly device: PrepareDevice }[], log: Logger): void {
    const dyn = this.options.dynamicMig;
    if (dyn === undefined) return;
    for (const { deviceName, device } of devices) {
      if (device.kind !== 'mig' || dyn.geometryOf(device.gpu) === undefined) continue;
      log.info(
        { device: deviceName, migUuid: device.uuid, gpuUuid: device.gpu.uuid },
        'dynamic MIG: this MIG instance exists but is not recorded as created by gpulet (made by someone else, or before the checkpoint was lost); ' +
          'it is prepared as the static device it is and gpulet never destroys it (to free its slices: nvidia-smi mig -dci / -dgi once no claim uses it)',
      );
    }
  }

  /** Remove what a failed prepare may have left: the spec (unless it was there before), the MIG devices it
   * created, then the entry (kept when a MIG device could not be destroyed: the next prepare of the claim or
   * start-up recovery destroys it). Never rejects (failures are logged). */
  private async rollback(ref: ClaimRef, attempt: Attempt, log: Logger): Promise<void> {
    try {
      this.store.assertLive();
      if (!attempt.hadSpec) await this.cdi.remove(ref.uid);
    } catch (err) {
      log.error({ err }, 'rollback: cannot remove CDI spec');
    }
    const left = await this.mig.undoAttempt(attempt, log);
    if (left > 0) return;
    if (this.store.entries()[ref.uid] === undefined) return;
    try {
      await this.store.commit(ref.uid, undefined);
    } catch (err) {
      log.error({ err }, 'rollback: cannot persist checkpoint without the claim');
    }
  }
}

/** What one prepare attempt did, for its rollback: the MIG changes (mig-ops.ts), and whether a spec was there before. */
interface Attempt extends MigAttempt {
  /** A spec was there before the attempt (it is left). */
  hadSpec: boolean;
}

/** `message`, plus — for a failure with an errno (an I/O error) — what was left and that the call is retryable. */
function withRetry(message: string, err: unknown, left: string): string {
  const errno = errnoOf(err);
  if (errno === undefined) return message;
  return `${message} (${errno}: ${left}; ${message.includes('retryable') ? 'the kubelet retries' : 'retryable, the kubelet retries'})`;
}
