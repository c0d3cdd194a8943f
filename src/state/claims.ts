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
 * Fault points (`src/util/fault-points.ts`) mark every step, for the crash tests.
 *
 * Recovery primitives (`restoreSpec`, `drop`, `adopt`, `sweep`, `persist`) run under the same mutex; the
 * policy that calls them (startup reconciliation, periodic clean-up, rebuild) is in `reconcile.ts`.
 */
import { devicesByName } from '../model/devices.js';
import { isObjectUid } from '../model/names.js';
import type { ClaimPreparer, ClaimRef, PrepareResult, UnprepareResult } from '../model/types.js';
import { ClaimError, errorMessage } from '../errors.js';
import { faultPoint } from '../util/fault-points.js';
import type { Inventory } from '../gpu/types.js';
import type { Logger } from '../log.js';
import { resolveAllocation } from './allocation.js';
import { CDI_CLAIM_CLASS, cdiDeviceId, cdiVendor, type DeviceMajors } from './cdi.js';
import { CdiWriter } from './cdi-writer.js';
import type { ClaimSource, ResourceClaimLike } from './claim-source.js';
import { claimCdiSpec, sameSpec, toPreparedDevice } from './claim-spec.js';
import { ClaimJournal, type ClaimJournalOptions } from './claim-journal.js';
import type { CheckpointClaim } from './checkpoint.js';
import type { StateLockError } from './lock.js';

/** Outcome of {@link ClaimManager.restoreSpec}. */
export type SpecRestore = 'present' | 'written' | 'rewritten' | 'not-completed';

export type { PreparedClaim } from './claim-journal.js';

/** Every claim of a batch answered with the lock error (first occurrence of each UID). */
function busyAnswers(claims: readonly ClaimRef[], busy: StateLockError): Map<string, { error: string }> {
  const out = new Map<string, { error: string }>();
  for (const ref of claims) if (!out.has(ref.uid)) out.set(ref.uid, { error: new ClaimError(ref, busy.message).message });
  return out;
}

/** Options of {@link ClaimManager}. */
export interface ClaimManagerOptions extends ClaimJournalOptions {
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
}

/** Prepares and unprepares claims; the source of device ownership for telemetry. */
export class ClaimManager extends ClaimJournal implements ClaimPreparer {
  private readonly cdi: CdiWriter;
  private readonly vendor: string;

  constructor(private readonly options: ClaimManagerOptions) {
    super(options);
    this.cdi = new CdiWriter(options.cdiDir, options.driverName);
    this.vendor = cdiVendor(options.driverName);
  }

  /** Our driver name (allocation results for it are ours). */
  get driverName(): string {
    return this.options.driverName;
  }

  /** Our pool name (the node name). */
  get poolName(): string {
    return this.options.poolName;
  }

  /** Prepare claims (see file doc). Never rejects. */
  prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>> {
    return this.lockedOr(async () => {
      const out = new Map<string, PrepareResult>();
      const notReady = await this.ensureInitialized();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue; // duplicated UID: prepared once, answered once
        out.set(ref.uid, notReady !== undefined ? { error: new ClaimError(ref, notReady).message } : await this.prepareOne(ref));
      }
      return out;
    }, (busy) => busyAnswers(claims, busy));
  }

  /** Unprepare claims: remove spec and entry. Unknown claims succeed. Never rejects. */
  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>> {
    return this.lockedOr(async () => {
      const out = new Map<string, UnprepareResult>();
      const notReady = await this.ensureInitialized();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue;
        out.set(ref.uid, notReady !== undefined ? { error: new ClaimError(ref, notReady).message } : await this.unprepareOne(ref));
      }
      return out;
    }, (busy) => busyAnswers(claims, busy));
  }

  /**
   * Make sure a PrepareCompleted claim's CDI spec exists and equals what prepare would write now (rebuilt
   * from the checkpoint entry and the current inventory, no API call): writes a missing spec, rewrites a
   * stale or unparsable one.
   * @throws CdiError when a device of the entry is no longer in the inventory or the spec cannot be written;
   *   StateLockError when another instance holds the state lock past the wait.
   */
  restoreSpec(uid: string): Promise<SpecRestore> {
    return this.locked(async () => {
      const entry = this.claims[uid];
      if (entry?.state !== 'PrepareCompleted') return 'not-completed';
      const spec = this.specOf(uid, entry.devices);
      const current = await this.cdi.read(uid);
      if (current !== undefined && current !== null && sameSpec(current, spec)) return 'present';
      if (this.options.devRoot !== undefined) await this.cdi.createStandIns(spec);
      await this.cdi.write(uid, spec);
      return current === undefined ? 'written' : 'rewritten';
    });
  }

  /** Unprepare one claim (spec and entry removed) for recovery: rollback, reboot, clean-up. Never rejects. */
  drop(ref: ClaimRef): Promise<UnprepareResult> {
    return this.lockedOr(() => this.unprepareOne(ref), (busy) => ({ error: new ClaimError(ref, busy.message).message }));
  }

  /**
   * Prepare a claim read from the API server (a rebuild after the checkpoint was lost), without a GET.
   * @returns undefined when the claim is already recorded, else the result (error when it cannot be prepared).
   */
  adopt(claim: ResourceClaimLike): Promise<PrepareResult | undefined> {
    const ref = { namespace: claim.metadata?.namespace ?? '', name: claim.metadata?.name ?? '', uid: claim.metadata?.uid ?? '' };
    return this.lockedOr(async () => {
      if (this.claims[ref.uid] !== undefined) return undefined;
      return this.prepareOne(ref, claim);
    }, (busy) => ({ error: new ClaimError(ref, busy.message).message }));
  }

  /**
   * Remove CDI spec files of ours that no PrepareCompleted entry accounts for, and temp files crashes left
   * in the CDI and checkpoint dirs. Call only when the entries are trustworthy (not while a rebuild is due).
   * @returns the UIDs whose spec was removed and the number of temp files removed (none when the state lock
   *   could not be taken: nothing is removed then). Never rejects.
   */
  sweep(): Promise<{ readonly orphans: readonly string[]; readonly tempFiles: number }> {
    return this.lockedOr(async () => {
      const orphans: string[] = [];
      for (const uid of await this.cdi.listClaimUids()) {
        if (this.claims[uid]?.state === 'PrepareCompleted') continue;
        try {
          await this.cdi.remove(uid);
          orphans.push(uid);
        } catch (err) {
          this.log.warn({ err, claimUid: uid }, 'cannot remove an orphaned CDI spec');
        }
      }
      const tempFiles = (await this.cdi.removeTempFiles()) + (await this.store.removeTempFiles());
      return { orphans, tempFiles };
    }, () => ({ orphans: [], tempFiles: 0 }));
  }

  private async prepareOne(ref: ClaimRef, listed?: ResourceClaimLike): Promise<PrepareResult> {
    const log = this.log.child({ claimUid: ref.uid, claim: `${ref.namespace}/${ref.name}` });
    if (!ref.namespace || !ref.name || !isObjectUid(ref.uid)) {
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
      const devices = await this.prepareFresh(ref, listed);
      log.info({ devices: devices.map((d) => d.deviceName) }, 'claim prepared');
      return { devices: devices.map(toPreparedDevice) };
    } catch (err) {
      const error = err instanceof ClaimError ? err : new ClaimError(ref, errorMessage(err), { cause: err });
      log.warn({ err: error }, 'prepare failed; rolling back');
      await this.rollback(ref, log);
      return { error: error.message };
    }
  }

  private async prepareFresh(ref: ClaimRef, listed?: ResourceClaimLike): Promise<CheckpointClaim['devices']> {
    let claim = listed;
    if (claim === undefined) {
      try {
        claim = await this.options.claimSource.get(ref.namespace, ref.name);
      } catch (err) {
        throw new ClaimError(ref, `cannot read the ResourceClaim: ${errorMessage(err)}`, { cause: err });
      }
      faultPoint('prepare:after-get');
    }
    const { driverName, poolName } = this.options;
    const byName = devicesByName(this.options.inventory());
    const allocation = resolveAllocation({ claim, ref, driverName, poolName, devices: byName });
    const devices = allocation.devices.map((d) => ({
      requestNames: d.requestNames,
      poolName: d.poolName,
      deviceName: d.deviceName,
      uuid: d.device.uuid,
      cdiDeviceIds: [cdiDeviceId(this.vendor, CDI_CLAIM_CLASS, ref.uid, d.deviceName)],
      ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
      env: d.env,
    }));
    const spec = this.specOf(ref.uid, devices, byName);
    const entry: CheckpointClaim = { ...ref, uid: ref.uid, state: 'PrepareStarted', devices, pods: allocation.pods };
    await this.commit(ref.uid, entry);
    faultPoint('prepare:after-started');
    if (this.options.devRoot !== undefined) await this.cdi.createStandIns(spec);
    await this.cdi.write(ref.uid, spec);
    faultPoint('prepare:after-cdi');
    await this.commit(ref.uid, { ...entry, state: 'PrepareCompleted' });
    faultPoint('prepare:after-completed');
    return devices;
  }

  /** The spec of a claim's devices, as prepare writes it. @throws CdiError */
  private specOf(uid: string, devices: CheckpointClaim['devices'], byName = devicesByName(this.options.inventory())) {
    const { driverName, devRoot, majors } = this.options;
    return claimCdiSpec({ driverName, claimUid: uid, devices, byName, devRoot, majors });
  }

  private async rollback(ref: ClaimRef, log: Logger): Promise<void> {
    try {
      if (isObjectUid(ref.uid)) await this.cdi.remove(ref.uid);
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
    if (!isObjectUid(ref.uid)) return {}; // never prepared: nothing can exist under this UID
    try {
      await this.cdi.remove(ref.uid);
      faultPoint('unprepare:after-cdi-removed');
      if (existing !== undefined) await this.commit(ref.uid, undefined);
      faultPoint('unprepare:after-checkpoint');
      log.info({ known: existing !== undefined }, 'claim unprepared');
      return {};
    } catch (err) {
      if (existing !== undefined) this.restoreEntry(ref.uid, existing); // the kubelet's retry persists the removal
      const error = new ClaimError(ref, `unprepare failed: ${errorMessage(err)}`, { cause: err });
      log.warn({ err: error }, 'unprepare failed');
      return { error: error.message };
    }
  }
}
