/**
 * The dynamic MIG steps of prepare and unprepare (issue 12), used by claim-ops.ts (which describes their order
 * and crash safety): check placements against the instances that exist, record the intent, create each instance
 * at exactly its placement, destroy only the instances a claim's checkpoint entry records as gpulet's, and undo
 * what a failed attempt created.
 *
 * The full GPU `gpu-<minor>` of a dynamic GPU in MIG mode is handed out by turning MIG mode off for the claim
 * (`nvmlDeviceSetMigMode`), only where that takes effect without a GPU reset (`togglesMigModeWithoutReset`:
 * Hopper and newer) and only with no GPU instance on the GPU; the intent (`migModeOff`) is recorded before the
 * call, and unprepare, a failed attempt's rollback and start-up recovery turn MIG mode on again. NVIDIA's driver
 * gets the same result differently (kubernetes-sigs/dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/nvlib.go:
 * `createMigDevice` turns MIG mode on before the first instance, `maybeDisableMigMode` off after the last, also
 * at start-up; skipped where `supportsMIGModeToggle` is false); gpulet changes the mode only for the lifetime of
 * a full-GPU claim, so a GPU it has no claim on keeps the mode the administrator (or `--mig-enable`) gave it.
 */
import { BackendError, ClaimError, errorMessage } from '../errors.js';
import type { GpuInfo, MigDeviceInfo, MigManager } from '../gpu/types.js';
import type { Logger } from '../log.js';
import {
  fitsHardwareRules, placementLabel, placementOfInstance, togglesMigModeWithoutReset, type MigGeometry, type MigPlacement,
} from '../model/mig-placements.js';
import type { PlacementDevice, WholeMigGpuDevice } from '../model/placement-devices.js';
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

/**
 * UUIDs of the GPUs whose MIG mode gpulet turned (or is turning) off to hand out their full GPU, from the
 * checkpoint (devices' `migModeOff`): the dynamic MIG policy keeps publishing them as dynamic GPUs (their full GPU
 * allocated, consuming every counter), and `--mig-enable` leaves them alone.
 */
export function migModeOffGpus(entries: CheckpointClaims): Set<string> {
  const out = new Set<string>();
  for (const e of Object.values(entries)) for (const d of e.devices) if (d.migModeOff !== undefined) out.add(d.migModeOff.gpuUuid);
  return out;
}

/** One MIG device an attempt created, for its rollback. */
export interface CreatedMig {
  readonly gpuUuid: string;
  readonly gpuInstanceId: number;
}

/** What one prepare attempt changed on the GPUs, for its rollback. */
export interface MigAttempt {
  /** MIG devices the attempt created. */
  readonly created: CreatedMig[];
  /** GPUs whose MIG mode the attempt turned off (or may have: added before the call). */
  readonly modeOff: string[];
}

/** The dynamic MIG devices of one claim's allocation: placements to create, full GPUs to hand out with MIG mode off. */
export interface MigRequest {
  readonly placements: readonly PlacementDevice[];
  readonly wholes: readonly WholeMigGpuDevice[];
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
   * Refuse a claim allocated a device that is a MIG instance gpulet created for another claim, or a full GPU whose
   * MIG mode gpulet turned off for another claim (a double booking the counters should prevent): it would share
   * that claim's device.
   * @throws ClaimError naming the device and the other claim.
   */
  refuseOthersInstances(ref: ClaimRef, names: readonly string[]): void {
    for (const e of Object.values(this.store.entries())) {
      if (e.uid === ref.uid) continue;
      const d = e.devices.find((x) => (x.mig !== undefined || x.migModeOff !== undefined) && names.includes(x.deviceName));
      if (d !== undefined) {
        const what = d.mig !== undefined ? 'the MIG instance gpulet created' : 'the full GPU whose MIG mode gpulet turned off';
        throw new ClaimError(ref, `device ${d.deviceName} is ${what} for claim ${e.namespace}/${e.name}; refusing to share it (the kubelet retries once that claim is unprepared)`);
      }
    }
  }

  /**
   * Dynamic MIG: check each placement (and each full GPU) against the instances that exist (`fitsHardwareRules`),
   * record the intent (`PrepareMigCreating`), turn MIG mode off for each full GPU, then create each instance at
   * exactly its placement. What the attempt changed goes into `attempt` (the caller's rollback undoes it:
   * {@link undoAttempt}).
   * @returns the devices with the new MIG UUIDs and GPU-instance IDs.
   * @throws ClaimError with the rule or NVML's reason (nothing this attempt changed is left: the caller rolls back).
   */
  async prepareMig(ref: ClaimRef, intent: CheckpointClaim, request: MigRequest, attempt: MigAttempt, log: Logger): Promise<CheckpointClaim['devices']> {
    const { placements, wholes } = request;
    const manager = this.dynamicMig?.manager;
    if (manager === undefined) {
      const name = placements[0]?.name ?? wholes[0]?.name ?? '';
      throw new ClaimError(ref, `device ${name} is a dynamic MIG device, but this GPU backend cannot manage MIG; set the GPU to --mig-mode static`);
    }
    const byGpu = new Map<string, MigPlacement[]>();
    const existingOn = async (p: PlacementDevice | WholeMigGpuDevice, geometry: MigGeometry): Promise<MigPlacement[]> => {
      let existing = byGpu.get(p.gpu.uuid);
      if (existing === undefined) {
        const listed = await this.migCall(ref, p, () => gpuInstanceList(manager, p.gpu.uuid));
        existing = listed.flatMap((m) => {
          const at = placementOfInstance(geometry, m);
          return at === undefined ? [] : [at];
        });
        byGpu.set(p.gpu.uuid, existing);
      }
      return existing;
    };
    const wholeGpus = new Set(wholes.map((w) => w.gpu.uuid));
    for (const w of wholes) {
      if (!togglesMigModeWithoutReset(w.gpu.architecture)) {
        throw new ClaimError(
          ref,
          `device ${w.name} is the full GPU of a dynamic MIG GPU in MIG mode, and turning MIG mode off on this ${w.gpu.architecture} GPU needs a GPU reset ` +
            '(gpulet does not publish this device; an allocation made from an older ResourceSlice): request a MIG profile, or publish this GPU with --mig-mode <gpu>=static and MIG mode off',
        );
      }
      const fit = fitsHardwareRules(w.geometry, await existingOn(w, w.geometry), 'whole-gpu');
      if (!fit.ok || placements.some((p) => p.gpu.uuid === w.gpu.uuid)) {
        throw new ClaimError(
          ref,
          `device ${w.name} (the full GPU ${w.gpu.uuid}) cannot be handed out: ${fit.ok ? 'the claim also names a MIG placement on it' : `${fit.rule}: ${fit.reason}`}; ` +
            'nothing was changed (the kubelet retries; delete the pod to have the scheduler place the claim again)',
        );
      }
    }
    for (const p of placements) {
      if (!p.gpu.migEnabled) {
        throw new ClaimError(ref, `device ${p.name} (${placementLabel(p.placement)} on GPU ${p.gpu.uuid}): the GPU's MIG mode is off (its full GPU is handed out); nothing was created (the kubelet retries)`);
      }
      const existing = await existingOn(p, p.geometry);
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
    if (wholeGpus.size > 0) {
      try {
        for (const w of wholes) await this.migModeOff(ref, manager, w, attempt, log);
      } finally {
        this.dynamicMig?.onInventoryChange?.();
      }
      faultPoint('mig:after-mode-off');
    }
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
          for (const id of after) if (!before.has(id)) attempt.created.push({ gpuUuid: p.gpu.uuid, gpuInstanceId: id });
          throw err;
        }
        attempt.created.push({ gpuUuid: p.gpu.uuid, gpuInstanceId: mig.gpuInstanceId });
        made.set(p.name, mig);
        log.info({ device: p.name, migUuid: mig.uuid, gpuInstanceId: mig.gpuInstanceId }, 'dynamic MIG: MIG device created');
      }
    } finally {
      if (made.size > 0) this.dynamicMig?.onInventoryChange?.();
    }
    if (placements.length > 0) faultPoint('mig:after-create');
    return intent.devices.map((d) => {
      const mig = made.get(d.deviceName);
      return mig === undefined || d.mig === undefined ? d : { ...d, uuid: mig.uuid, mig: { ...d.mig, gpuInstanceId: mig.gpuInstanceId } };
    });
  }

  /**
   * Turn MIG mode off on the full GPU `w` for a claim (`nvmlDeviceSetMigMode(DISABLE)`); its UUID goes into
   * `attempt.modeOff` before the call. A change that would wait for a GPU reset is refused (the rollback turns
   * MIG mode on again, which cancels the pending change).
   * @throws ClaimError with NVML's code, or when the change is pending until a reset.
   */
  private async migModeOff(ref: ClaimRef, manager: MigManager, w: WholeMigGpuDevice, attempt: MigAttempt, log: Logger): Promise<void> {
    attempt.modeOff.push(w.gpu.uuid);
    const mode = await this.migCall(ref, w, () => manager.setMigMode(w.gpu.uuid, false));
    if (mode.current || mode.resetRequired) {
      throw new ClaimError(
        ref,
        `device ${w.name} (the full GPU ${w.gpu.uuid}): turning MIG mode off did not take effect (current ${String(mode.current)}, pending ${String(mode.pending)}: ` +
          'a GPU reset would be needed); MIG mode is turned on again, request a MIG profile instead',
      );
    }
    log.info({ device: w.name, gpuUuid: w.gpu.uuid }, 'dynamic MIG: MIG mode turned off to hand out the full GPU');
  }

  /**
   * A MIG call for dynamic MIG device `p`, its rejection turned into a ClaimError naming the device and NVML's code.
   * @throws ClaimError
   */
  private async migCall<T>(ref: ClaimRef, p: PlacementDevice | WholeMigGpuDevice, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const where = p.kind === 'placement' ? `${placementLabel(p.placement)} on GPU ${p.gpu.uuid}` : `the full GPU ${p.gpu.uuid}`;
      throw new ClaimError(ref, `device ${p.name} (${where}): MIG call failed${migCodeOf(err)}: ${errorMessage(err)}; the kubelet retries`, { cause: err });
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
   * Undo what a failed attempt changed (its rollback): destroy the MIG devices it created, turn MIG mode on again
   * where it turned it off. Never rejects: failures are logged.
   * @returns how many changes could not be undone (the caller then keeps the claim's entry for recovery).
   */
  async undoAttempt(attempt: MigAttempt, log: Logger): Promise<number> {
    let left = 0;
    for (const c of attempt.created) {
      try {
        await this.dynamicMig?.manager?.destroyMigDevice(c.gpuUuid, c.gpuInstanceId);
      } catch (err) {
        left++;
        log.error({ err, gpuUuid: c.gpuUuid, gpuInstanceId: c.gpuInstanceId }, 'rollback: cannot destroy the MIG device this prepare created; its checkpoint entry is kept for recovery');
      }
    }
    if (attempt.created.length > 0) this.dynamicMig?.onInventoryChange?.();
    for (const gpuUuid of attempt.modeOff) {
      try {
        await this.migModeOn(gpuUuid, log);
      } catch (err) {
        left++;
        log.error({ err, gpuUuid }, 'rollback: cannot turn MIG mode on again; the checkpoint entry is kept for recovery');
      }
    }
    return left;
  }

  /**
   * Everything a recorded claim holds on the GPUs, given back: its MIG devices destroyed ({@link destroyOwned}),
   * then MIG mode turned on again on the GPUs its entry records as turned off (`migModeOff`). Idempotent.
   * @throws Error naming the instance or GPU when one step fails (the caller keeps the entry).
   */
  async releaseOwned(entry: Pick<CheckpointClaim, 'devices'>, log: Logger): Promise<void> {
    await this.destroyOwned(entry, log);
    for (const gpuUuid of new Set(entry.devices.flatMap((d) => (d.migModeOff === undefined ? [] : [d.migModeOff.gpuUuid])))) {
      await this.migModeOn(gpuUuid, log);
    }
  }

  /**
   * Turn MIG mode on again on a GPU whose MIG mode gpulet turned off (`nvmlDeviceGetMigMode`, then
   * `nvmlDeviceSetMigMode(ENABLE)` only when it is off). A GPU that is gone (NOT_FOUND) needs nothing. A change
   * left pending until a reset (not expected: gpulet turns it off only where no reset is needed) is logged as an
   * error and counts as done, so the claim can go.
   * @throws Error naming the GPU and NVML's code when the mode cannot be read or set (the kubelet retries).
   */
  private async migModeOn(gpuUuid: string, log: Logger): Promise<void> {
    const manager = this.dynamicMig?.manager;
    if (manager === undefined) throw new Error(`gpulet turned MIG mode off on GPU ${gpuUuid}, but this GPU backend cannot set it; start gpulet with its GPU backend`);
    let mode;
    try {
      mode = await manager.migMode(gpuUuid);
      if (mode.current) return;
      mode = await manager.setMigMode(gpuUuid, true);
    } catch (err) {
      if (err instanceof BackendError && err.migCode === 'NOT_FOUND') return;
      throw new Error(`cannot turn MIG mode on again on GPU ${gpuUuid}${migCodeOf(err)}: ${errorMessage(err)}`, { cause: err });
    } finally {
      this.dynamicMig?.onInventoryChange?.();
    }
    if (mode.current) log.info({ gpuUuid }, 'dynamic MIG: MIG mode turned on again');
    else log.error({ gpuUuid, pending: mode.pending }, 'dynamic MIG: MIG mode on is pending until a GPU reset (nvidia-smi -r, or a reboot); until then the GPU is published as a full GPU');
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
  let list: readonly GpuInstance[];
  try {
    list = await gpuInstanceList(manager, m.gpuUuid);
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

/** A GPU instance as `MigManager.gpuInstances` lists it. */
type GpuInstance = { readonly gpuInstanceId: number; readonly giProfileId: number; readonly placement: { readonly start: number; readonly size: number } };

/** Every GPU instance of the GPU: `gpuInstances` when the backend has it (it also sees a GPU instance without its compute instance), else `listMigDevices`. */
async function gpuInstanceList(manager: MigManager, gpuUuid: string): Promise<readonly GpuInstance[]> {
  return manager.gpuInstances !== undefined ? manager.gpuInstances(gpuUuid) : manager.listMigDevices(gpuUuid);
}
