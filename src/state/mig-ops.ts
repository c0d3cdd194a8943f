/**
 * The dynamic MIG steps of prepare and unprepare (issue 12), used by claim-ops.ts (which describes their order
 * and crash safety): check placements against the instances that exist, record the intent, create each instance
 * at exactly its placement, destroy only the instances a claim's checkpoint entry records as gpulet's, and undo
 * what a failed attempt created.
 */
import { BackendError, ClaimError, errorMessage } from '../errors.js';
import type { GpuInfo, MigDeviceInfo, MigManager } from '../gpu/types.js';
import type { Logger } from '../log.js';
import { fitsHardwareRules, placementLabel, placementOfInstance, type MigGeometry, type MigPlacement } from '../model/mig-placements.js';
import type { PlacementDevice } from '../model/placement-devices.js';
import type { ClaimRef } from '../model/types.js';
import { faultPoint } from '../util/fault-points.js';
import type { CheckpointClaim, CheckpointClaims } from './checkpoint.js';
import type { CheckpointMig } from './checkpoint-entry.js';
import type { ClaimStore } from './claim-store.js';

/** What prepare and unprepare need for dynamic MIG (`ClaimOpsOptions.dynamicMig`). */
export interface DynamicMigOps {
  /** The MIG geometry of a GPU published in dynamic mode (`DynamicMigPolicy.geometryOf`); undefined: static. */
  geometryOf(gpu: GpuInfo): MigGeometry | undefined;
  /** The backend's MIG management (`GpuBackend.mig`); undefined when the backend has none. */
  readonly manager: MigManager | undefined;
  /** Called after MIG devices were created or destroyed (the ResourceSlices follow the inventory). */
  readonly onInventoryChange?: () => void;
}

/**
 * Device names of the MIG devices gpulet created (or is creating) for recorded claims, from the checkpoint: the
 * `ownInstances` of the dynamic MIG policy (src/dra/slices/dynamic-mig.ts), so they stay placement devices
 * (accounted by their claims' allocations), never foreign ones.
 */
export function ownMigDeviceNames(entries: CheckpointClaims): Set<string> {
  const out = new Set<string>();
  for (const e of Object.values(entries)) for (const d of e.devices) if (d.mig !== undefined) out.add(d.deviceName);
  return out;
}

/** One MIG device an attempt created, for its rollback. */
export interface CreatedMig {
  readonly gpuUuid: string;
  readonly gpuInstanceId: number;
}

/** The dynamic MIG steps (see file doc). Call every method inside a session of the store. */
export class MigOps {
  /**
   * @param dynamicMig the GPUs in dynamic mode and the backend's MIG management; undefined: no dynamic GPU
   * @param store the claim store's entries and commit (the intent is committed before the first MIG call)
   */
  constructor(
    private readonly dynamicMig: DynamicMigOps | undefined,
    private readonly store: Pick<ClaimStore, 'entries' | 'commit'>,
  ) {}

  /**
   * Refuse a claim allocated a device that is a MIG instance gpulet created for another claim (a double booking
   * the counters should prevent): it would share that claim's instance.
   * @throws ClaimError naming the device and the other claim.
   */
  refuseOthersInstances(ref: ClaimRef, names: readonly string[]): void {
    for (const e of Object.values(this.store.entries())) {
      if (e.uid === ref.uid) continue;
      const d = e.devices.find((x) => x.mig !== undefined && names.includes(x.deviceName));
      if (d !== undefined) {
        throw new ClaimError(ref, `device ${d.deviceName} is the MIG instance gpulet created for claim ${e.namespace}/${e.name}; refusing to share it (the kubelet retries once that claim is unprepared)`);
      }
    }
  }

  /**
   * Dynamic MIG: check each placement against the instances that exist (`fitsHardwareRules`), record the intent
   * (`PrepareMigCreating`), then create each instance at exactly its placement. The created instances go into
   * `created` (the caller's rollback destroys them: {@link destroyCreated}).
   * @returns the devices with the new MIG UUIDs and GPU-instance IDs.
   * @throws ClaimError with the rule or NVML's reason (nothing created by this attempt is left: the caller rolls back).
   */
  async createMigDevices(
    ref: ClaimRef, intent: CheckpointClaim, placements: readonly PlacementDevice[], created: CreatedMig[], log: Logger,
  ): Promise<CheckpointClaim['devices']> {
    const manager = this.dynamicMig?.manager;
    if (manager === undefined) {
      throw new ClaimError(ref, `device ${placements[0]?.name ?? ''} is a dynamic MIG placement, but this GPU backend cannot create MIG devices; set the GPU to --mig-mode static`);
    }
    const byGpu = new Map<string, MigPlacement[]>();
    for (const p of placements) {
      let existing = byGpu.get(p.gpu.uuid);
      if (existing === undefined) {
        const listed = await this.migCall(ref, p, () => manager.listMigDevices(p.gpu.uuid));
        existing = listed.flatMap((m) => {
          const at = placementOfInstance(p.geometry, m);
          return at === undefined ? [] : [at];
        });
        byGpu.set(p.gpu.uuid, existing);
      }
      const fit = fitsHardwareRules(p.geometry, existing, p.placement);
      if (!fit.ok) {
        throw new ClaimError(
          ref,
          `device ${p.name} (${placementLabel(p.placement)} on GPU ${p.gpu.uuid}) cannot be created beside the GPU's MIG instances: ` +
            `${fit.rule}: ${fit.reason}; nothing was created (the kubelet retries; delete the pod to have the scheduler place the claim again)`,
        );
      }
      existing.push(p.placement);
    }
    await this.store.commit(ref.uid, intent);
    faultPoint('mig:after-intent');
    const made = new Map<string, MigDeviceInfo>();
    try {
      for (const p of placements) {
        const req = { giProfileId: p.placement.profile.id, start: p.placement.start, size: p.placement.profile.placementSize };
        const where: CheckpointMig = migIntent(p);
        const before = new Set(await this.migCall(ref, p, () => ownedInstanceIds(manager, where)));
        let mig: MigDeviceInfo;
        try {
          mig = await this.migCall(ref, p, () => manager.createMigDevice(p.gpu.uuid, req));
        } catch (err) {
          // A creation that failed half-way and could not undo itself leaves a GPU instance at the placement
          // that was not there before: it is this attempt's, and the rollback destroys it.
          const after = await ownedInstanceIds(manager, where).catch(() => [] as number[]);
          for (const id of after) if (!before.has(id)) created.push({ gpuUuid: p.gpu.uuid, gpuInstanceId: id });
          throw err;
        }
        created.push({ gpuUuid: p.gpu.uuid, gpuInstanceId: mig.gpuInstanceId });
        made.set(p.name, mig);
        log.info({ device: p.name, migUuid: mig.uuid, gpuInstanceId: mig.gpuInstanceId }, 'dynamic MIG: MIG device created');
      }
    } finally {
      if (made.size > 0) this.dynamicMig?.onInventoryChange?.();
    }
    faultPoint('mig:after-create');
    return intent.devices.map((d) => {
      const mig = made.get(d.deviceName);
      return mig === undefined || d.mig === undefined ? d : { ...d, uuid: mig.uuid, mig: { ...d.mig, gpuInstanceId: mig.gpuInstanceId } };
    });
  }

  /**
   * A MIG call for placement device `p`, its rejection turned into a ClaimError naming the device and NVML's code.
   * @throws ClaimError
   */
  private async migCall<T>(ref: ClaimRef, p: PlacementDevice, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new ClaimError(ref, `device ${p.name} (${placementLabel(p.placement)} on GPU ${p.gpu.uuid}): MIG call failed${migCodeOf(err)}: ${errorMessage(err)}; the kubelet retries`, { cause: err });
    }
  }

  /**
   * Destroy the MIG devices gpulet created for a recorded claim (its devices' `mig`), found on the GPU by
   * their recorded GPU-instance ID, or — for an intent whose creation never reported back — by profile and exact
   * placement. Instances not recorded are never touched. Idempotent.
   * @returns how many instances were destroyed.
   * @throws Error naming the instance when one cannot be listed or destroyed (the caller keeps the entry).
   */
  async destroyOwned(entry: Pick<CheckpointClaim, 'devices'>, log: Logger): Promise<number> {
    const migs = [...new Map(entry.devices.flatMap((d) => (d.mig === undefined ? [] : [[`${d.mig.gpuUuid}/${d.mig.start}`, d.mig] as const]))).values()];
    if (migs.length === 0) return 0;
    const manager = this.dynamicMig?.manager;
    if (manager === undefined) throw new Error('the claim holds MIG devices gpulet created, but this GPU backend cannot destroy them; start gpulet with its GPU backend');
    let destroyed = 0;
    try {
      for (const m of migs) {
        for (const id of await ownedInstanceIds(manager, m)) {
          try {
            await manager.destroyMigDevice(m.gpuUuid, id);
          } catch (err) {
            throw new Error(`cannot destroy GPU instance ${id} (GI profile ${m.giProfileId} at ${m.start}:${m.size}) on GPU ${m.gpuUuid}${migCodeOf(err)}: ${errorMessage(err)}`, { cause: err });
          }
          destroyed++;
          log.info({ gpuUuid: m.gpuUuid, gpuInstanceId: id, placement: `${m.start}:${m.size}` }, 'dynamic MIG: MIG device destroyed');
        }
      }
    } finally {
      if (destroyed > 0) this.dynamicMig?.onInventoryChange?.();
    }
    return destroyed;
  }

  /**
   * Destroy the MIG devices a failed attempt created (its rollback). Never rejects: failures are logged.
   * @returns how many could not be destroyed (the caller then keeps the claim's entry for recovery).
   */
  async destroyCreated(created: readonly CreatedMig[], log: Logger): Promise<number> {
    let left = 0;
    for (const c of created) {
      try {
        await this.dynamicMig?.manager?.destroyMigDevice(c.gpuUuid, c.gpuInstanceId);
      } catch (err) {
        left++;
        log.error({ err, gpuUuid: c.gpuUuid, gpuInstanceId: c.gpuInstanceId }, 'rollback: cannot destroy the MIG device this prepare created; its checkpoint entry is kept for recovery');
      }
    }
    if (created.length > 0) this.dynamicMig?.onInventoryChange?.();
    return left;
  }
}

/** ` (<migCode>)` of a MIG call's rejection, or ''. */
function migCodeOf(err: unknown): string {
  return err instanceof BackendError && err.migCode !== undefined ? ` (${err.migCode})` : '';
}

/** The intent recorded for a placement device before its instance is created. */
export function migIntent(d: PlacementDevice): CheckpointMig {
  return { gpuUuid: d.gpu.uuid, giProfileId: d.placement.profile.id, start: d.placement.start, size: d.placement.profile.placementSize };
}

/**
 * GPU-instance IDs on `m.gpuUuid` that are the recorded instance: same GI profile and exact placement, and the
 * recorded GPU-instance ID when there is one. Uses `gpuInstances` when the backend has it (it also sees a GPU
 * instance without its compute instance), else `listMigDevices`. A GPU that is gone (NOT_FOUND) has none.
 */
async function ownedInstanceIds(manager: MigManager, m: CheckpointMig): Promise<number[]> {
  let list: ReadonlyArray<{ readonly gpuInstanceId: number; readonly giProfileId: number; readonly placement: { readonly start: number; readonly size: number } }>;
  try {
    list = manager.gpuInstances !== undefined ? await manager.gpuInstances(m.gpuUuid) : await manager.listMigDevices(m.gpuUuid);
  } catch (err) {
    if (err instanceof BackendError && err.migCode === 'NOT_FOUND') return [];
    throw err;
  }
  const ids = list
    .filter((i) => i.giProfileId === m.giProfileId && i.placement.start === m.start && i.placement.size === m.size)
    .filter((i) => m.gpuInstanceId === undefined || i.gpuInstanceId === m.gpuInstanceId)
    .map((i) => i.gpuInstanceId);
  return [...new Set(ids)];
}
