/**
 * MIG management of the mock backend (`GpuBackend.mig`, src/gpu/types.ts `MigManager`): GPU and compute
 * instances created at exact placements, destroyed, listed; MIG mode read and set; NVML's errors; a fault switch
 * for a creation that fails half-way; and, optionally, the instances kept in a state file, so they survive an
 * agent restart (a kill -9) as a real GPU's do.
 *
 * NVML facts the mock follows (nvml.h):
 * - `nvmlDeviceCreateGpuInstanceWithPlacement` fails with NVML_ERROR_INSUFFICIENT_RESOURCES when the placement
 *   overlaps occupied memory slices ("creation of new GPU instance will fail if there is overlap with the already
 *   occupied memory slices") or the profile's instances / compute slices are used up; NVML_ERROR_INVALID_ARGUMENT
 *   for a placement that is not one of `nvmlDeviceGetGpuInstancePossiblePlacements_v2`'s; with MIG mode off it
 *   answers NVML_ERROR_NOT_SUPPORTED (mock) — the GPU has no GPU instances.
 * - A MIG device handle (`nvmlDeviceGetMigDeviceHandleByIndex`) exists per compute instance: a GPU instance
 *   without a compute instance (a creation interrupted between the two calls) is not a MIG device, so
 *   `listMigDevices` does not list it; `gpuInstances` does (`nvmlDeviceGetGpuInstances`).
 * - `nvmlGpuInstanceDestroy` answers NVML_ERROR_IN_USE while processes run on the instance (`setMigBusy`).
 * - `nvmlDeviceSetMigMode`: Hopper and newer switch at once; Ampere (A100) keeps the new mode pending until a
 *   GPU reset (`activationStatus` NVML_ERROR_RESET_REQUIRED; MIG guide "Enable MIG Mode"); the mode cannot change
 *   while GPU instances exist (NVML_ERROR_IN_USE).
 * - GPU-instance IDs follow the placement (`gpuInstanceId`, profiles.ts), so UUIDs made again at the same
 *   placement are the same (`mockMigUuid`): deterministic per node, GPU and placement.
 *
 * The state file (JSON `{"version":1,"gpus":{"<GPU uuid>":{"migEnabled","pendingMigEnabled","instances":[{"profile",
 * "placementStart","computeInstance"}]}}}`) is written (temp file, fsync, rename) on every change and read at
 * `init()`; it is absent until the first change. A file that does not parse is a BackendError at `init()`.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { z } from 'zod';
import { BackendError, type MigErrorCode } from '../../errors.js';
import { faultPoint } from '../../util/fault-points.js';
import type { GpuInfo, MigDeviceInfo, MigManager, MigPlacementRequest } from '../types.js';
import { GPU_MODELS, type GpuModelName } from './models.js';
import { gpuInstanceId } from './profiles.js';

/** One GPU instance of the mock, with or without its compute instance. */
export interface MockMigInstance {
  readonly profile: string;
  readonly placementStart: number;
  /** False for a GPU instance whose compute instance was never made (a creation interrupted half-way). */
  readonly computeInstance: boolean;
}

/** MIG state of one mock GPU. */
export interface MockMigGpuState {
  migEnabled: boolean;
  pendingMigEnabled: boolean;
  instances: MockMigInstance[];
}

/** A creation that fails half-way: the GPU instance is made, its compute instance fails with `code`. */
export interface MockMigFault {
  readonly stage: 'compute-instance';
  readonly code: MigErrorCode;
  /** Also fail the rollback's GPU-instance destroy (the GPU instance is then left behind, as NVML would). */
  readonly rollbackFails?: boolean;
}

const stateSchema = z.object({
  version: z.literal(1),
  gpus: z.record(
    z.string().max(96),
    z.object({
      migEnabled: z.boolean(),
      pendingMigEnabled: z.boolean(),
      instances: z.array(z.object({ profile: z.string().max(64), placementStart: z.number().int().min(0).max(7), computeInstance: z.boolean() })).max(16),
    }),
  ),
});

/** What the mock MIG manager needs of the backend. */
export interface MockMigHost {
  readonly nodeName: string;
  /** The UUID of GPU `index` (the state file's key). */
  uuidOf(index: number): string;
  /** The model of GPU `index`. */
  modelOf(index: number): GpuModelName;
  /** The GPU with `uuid` as the inventory lists it now. */
  gpuByUuid(uuid: string): GpuInfo | undefined;
  /** Rebuild GPU `index`'s inventory entry (MIG mode and devices) from {@link MockMig.stateOf}. */
  changed(index: number): void;
}

function migError(message: string, code: MigErrorCode): BackendError {
  return new BackendError(`mock MIG: ${message}`, { migCode: code, nvmlName: `NVML_ERROR_${code}` });
}

/** The mock's {@link MigManager} (see file doc). */
export class MockMig implements MigManager {
  private readonly states = new Map<number, MockMigGpuState>();
  private fault: MockMigFault | undefined;
  private readonly busy = new Set<string>();

  constructor(
    private readonly host: MockMigHost,
    initial: ReadonlyMap<number, MockMigGpuState>,
    private readonly stateFile: string | undefined,
  ) {
    for (const [i, s] of initial) this.states.set(i, { ...s, instances: [...s.instances] });
  }

  /**
   * Overlay the state file (when configured and present) on the initial state, by GPU UUID.
   * @throws BackendError naming the file when it cannot be read (other than ENOENT) or does not parse.
   */
  load(): void {
    if (this.stateFile === undefined) return;
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new BackendError(`mock MIG: cannot read state file ${this.stateFile}: ${(err as Error).message}`, { cause: err });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new BackendError(`mock MIG: state file ${this.stateFile} is not JSON; remove it to start from the machine's layout`, { cause: err });
    }
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success) throw new BackendError(`mock MIG: state file ${this.stateFile}: ${parsed.error.issues[0]?.message ?? 'invalid'}; remove it`);
    for (const index of this.states.keys()) {
      const saved = parsed.data.gpus[this.host.uuidOf(index)];
      if (saved !== undefined) this.states.set(index, { ...saved, instances: [...saved.instances] });
    }
  }

  /** The MIG state of GPU `index` (a copy). */
  stateOf(index: number): MockMigGpuState {
    const s = this.states.get(index);
    if (s === undefined) throw new BackendError(`mock MIG: no GPU with index ${index}`);
    return { ...s, instances: [...s.instances] };
  }

  /** Arm (or with undefined, disarm) a fault for the next creation. */
  injectFault(fault: MockMigFault | undefined): void {
    this.fault = fault;
  }

  /** Mark a MIG device busy (processes on it): its destroy answers IN_USE until cleared. */
  setMigBusy(migUuid: string, busy: boolean): void {
    if (busy) this.busy.add(migUuid);
    else this.busy.delete(migUuid);
  }

  /** Apply a pending MIG mode (a GPU reset, `nvidia-smi -r`). */
  applyPending(index: number): void {
    const s = this.states.get(index);
    if (s === undefined || s.migEnabled === s.pendingMigEnabled) return;
    s.migEnabled = s.pendingMigEnabled;
    this.save(index);
  }

  createMigDevice(gpuUuid: string, req: MigPlacementRequest): Promise<MigDeviceInfo> {
    return this.run(() => {
      const { index, state } = this.gpu(gpuUuid);
      if (!state.migEnabled) throw migError(`GPU ${gpuUuid} is not in MIG mode (NVML_ERROR_NOT_SUPPORTED); enable MIG mode first`, 'NOT_SUPPORTED');
      const model = GPU_MODELS[this.host.modelOf(index)];
      const profile = model.migProfiles.find((p) => p.id === req.giProfileId);
      if (profile === undefined) throw migError(`GPU ${gpuUuid} has no GI profile ${req.giProfileId}`, 'INVALID_ARGUMENT');
      if (req.size !== profile.placementSize || !profile.placementStarts.includes(req.start)) {
        throw migError(`${profile.name} cannot be placed at ${req.start}:${req.size}; starts: ${profile.placementStarts.join(', ')}`, 'INVALID_ARGUMENT');
      }
      const problem = this.conflict(index, state, profile.name, req.start, req.size);
      if (problem !== undefined) throw migError(`GPU ${gpuUuid}: ${profile.name} at ${req.start}:${req.size}: ${problem}`, 'INSUFFICIENT_RESOURCES');
      state.instances.push({ profile: profile.name, placementStart: req.start, computeInstance: false });
      this.save(index);
      faultPoint('mig:after-gpu-instance');
      const fault = this.fault;
      if (fault !== undefined) {
        this.fault = undefined;
        if (!fault.rollbackFails) {
          state.instances = state.instances.filter((i) => i.placementStart !== req.start || i.profile !== profile.name);
          this.save(index);
        }
        throw migError(`GPU ${gpuUuid}: compute instance on ${profile.name} at ${req.start} failed (injected)${fault.rollbackFails ? '; its GPU instance could not be destroyed' : '; its GPU instance was destroyed'}`, fault.code);
      }
      state.instances = state.instances.map((i) => (i.placementStart === req.start && i.profile === profile.name ? { ...i, computeInstance: true } : i));
      this.save(index);
      const made = this.host.gpuByUuid(gpuUuid)?.migDevices.find((m) => m.placement.start === req.start && m.giProfileId === req.giProfileId);
      if (made === undefined) throw migError(`GPU ${gpuUuid}: created instance not listed (mock bug)`, 'UNKNOWN');
      return made;
    });
  }

  destroyMigDevice(gpuUuid: string, giId: number): Promise<void> {
    return this.run(() => {
      const { index, state } = this.gpu(gpuUuid);
      const model = GPU_MODELS[this.host.modelOf(index)];
      const at = state.instances.find((i) => {
        const p = model.migProfiles.find((q) => q.name === i.profile);
        return p !== undefined && gpuInstanceId({ start: i.placementStart, size: p.placementSize }) === giId;
      });
      if (at === undefined) return; // NOT_FOUND: already gone
      const dev = this.host.gpuByUuid(gpuUuid)?.migDevices.find((m) => m.gpuInstanceId === giId);
      if (dev !== undefined && this.busy.has(dev.uuid)) throw migError(`GPU ${gpuUuid}: GPU instance ${giId} (${dev.uuid}) has processes running`, 'IN_USE');
      state.instances = state.instances.filter((i) => i !== at);
      this.save(index);
    });
  }

  listMigDevices(gpuUuid: string): Promise<MigDeviceInfo[]> {
    return this.run(() => {
      this.gpu(gpuUuid);
      return [...(this.host.gpuByUuid(gpuUuid)?.migDevices ?? [])];
    });
  }

  /** Every GPU instance, with or without a compute instance (`nvmlDeviceGetGpuInstances` per profile). */
  gpuInstances(gpuUuid: string): Promise<Array<{ gpuInstanceId: number; giProfileId: number; placement: { start: number; size: number } }>> {
    return this.run(() => {
      const { index, state } = this.gpu(gpuUuid);
      const model = GPU_MODELS[this.host.modelOf(index)];
      return state.instances.flatMap((i) => {
        const p = model.migProfiles.find((q) => q.name === i.profile);
        if (p === undefined) return [];
        const placement = { start: i.placementStart, size: p.placementSize };
        return [{ gpuInstanceId: gpuInstanceId(placement), giProfileId: p.id, placement }];
      });
    });
  }

  migMode(gpuUuid: string): Promise<{ readonly current: boolean; readonly pending: boolean }> {
    return this.run(() => {
      const { state } = this.gpu(gpuUuid);
      return { current: state.migEnabled, pending: state.pendingMigEnabled };
    });
  }

  setMigMode(gpuUuid: string, enabled: boolean): Promise<{ readonly current: boolean; readonly pending: boolean; readonly resetRequired: boolean }> {
    return this.run(() => {
      const { index, state } = this.gpu(gpuUuid);
      if (state.instances.length > 0 && state.migEnabled !== enabled) {
        throw migError(`GPU ${gpuUuid} has ${state.instances.length} GPU instances; destroy them before changing MIG mode`, 'IN_USE');
      }
      state.pendingMigEnabled = enabled;
      const resetRequired = GPU_MODELS[this.host.modelOf(index)].architecture === 'Ampere' && state.migEnabled !== enabled;
      if (!resetRequired) state.migEnabled = enabled;
      this.save(index);
      return { current: state.migEnabled, pending: state.pendingMigEnabled, resetRequired };
    });
  }

  /** Why an instance of `profile` at `start:size` cannot join GPU `index`'s instances, or undefined. */
  private conflict(index: number, state: MockMigGpuState, profile: string, start: number, size: number): string | undefined {
    const model = GPU_MODELS[this.host.modelOf(index)];
    let compute = Number(/^(\d+)g\./.exec(profile)?.[1] ?? '1');
    let sameProfile = 1;
    for (const i of state.instances) {
      const p = model.migProfiles.find((q) => q.name === i.profile);
      if (p === undefined) continue;
      if (i.placementStart < start + size && start < i.placementStart + p.placementSize) return `overlaps ${i.profile} at ${i.placementStart}:${p.placementSize}`;
      compute += Number(/^(\d+)g\./.exec(i.profile)?.[1] ?? '1');
      if (i.profile === profile) sameProfile++;
      if (/\+me$/.test(profile) && /\+me$/.test(i.profile)) return `the media extensions are taken by ${i.profile} at ${i.placementStart}`;
    }
    const spec = model.migProfiles.find((q) => q.name === profile);
    if (spec !== undefined && sameProfile > spec.maxCount) return `at most ${spec.maxCount} instances of ${profile}`;
    if (compute > 7) return `needs ${compute} of 7 compute slices`;
    return undefined;
  }

  private gpu(uuid: string): { index: number; state: MockMigGpuState } {
    const gpu = this.host.gpuByUuid(uuid);
    const state = gpu === undefined ? undefined : this.states.get(gpu.index);
    if (gpu === undefined || state === undefined) throw migError(`no GPU with UUID ${uuid} on node ${this.host.nodeName}`, 'NOT_FOUND');
    return { index: gpu.index, state };
  }

  /** Run a synchronous MIG call as a promise (a throw becomes the rejection). */
  private run<T>(f: () => T): Promise<T> {
    try {
      return Promise.resolve(f());
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Rebuild GPU `index`'s inventory entry and persist every GPU's state (temp file, fsync, rename). */
  private save(index: number): void {
    this.host.changed(index);
    if (this.stateFile === undefined) return;
    const gpus: Record<string, MockMigGpuState> = {};
    for (const [i, s] of this.states) gpus[this.host.uuidOf(i)] = s;
    const tmp = `${this.stateFile}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ version: 1, gpus }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.stateFile);
  }
}
