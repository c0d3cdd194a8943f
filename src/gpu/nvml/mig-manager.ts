/**
 * `GpuBackend.mig` of the NVML backend: MIG management through the native session (native/nvml_mig.cc), whose
 * calls run on libuv worker threads under the session mutex (so they never overlap each other or a sample).
 * Calls for one GPU are also queued here, in order, so a destroy never starts before the create it follows.
 *
 * After every call that changes a GPU (and `listMigDevices`), the addon reads the GPU again and replaces its
 * handles; the backend's inventory is updated from that read (`MigHost.applyGpu`), so `inventory()` and samples
 * follow the instances as they come and go. Failures are {@link BackendError}s with a `migCode` (map-mig.ts).
 */
import { BackendError } from '../../errors.js';
import type { GpuInfo, MigDeviceInfo, MigManager, MigPlacementRequest } from '../types.js';
import { migError } from './map-mig.js';
import type { NvmlGpuFacts } from './native-types.js';
import { NvmlError, NVML_RETURN } from './nvml-error.js';
import type { NvmlSession } from './session.js';

/** What the manager needs from its backend. */
export interface MigHost {
  /** Library path, for errors. */
  readonly library: string;
  /** The initialized session. @throws BackendError before init() or after shutdown() */
  requireSession(): NvmlSession;
  /** Discovery index of GPU `gpuUuid`, or undefined when the node has no such GPU. */
  positionOf(gpuUuid: string): number | undefined;
  /**
   * Take `facts` (GPU `position` read again) into the inventory; returns the GPU as the inventory now lists it
   * (undefined when the read failed: the inventory keeps its previous entry).
   */
  applyGpu(position: number, facts: NvmlGpuFacts): GpuInfo | undefined;
}

/** `NVML_ERROR_RESET_REQUIRED` (nvml.h): `activationStatus` of a mode change pending until a GPU reset. */
const RESET_REQUIRED = NVML_RETURN.ERROR_RESET_REQUIRED;

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** {@link MigManager} over an NVML session. */
export class NvmlMigManager implements MigManager {
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly host: MigHost) {}

  /** Run `op` after every earlier call for `gpuUuid` has settled. */
  private serial<T>(gpuUuid: string, op: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(gpuUuid) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.catch(() => undefined);
    this.queues.set(gpuUuid, tail);
    void tail.then(() => {
      if (this.queues.get(gpuUuid) === tail) this.queues.delete(gpuUuid);
    });
    return next;
  }

  private position(what: string, gpuUuid: string): number {
    const pos = this.host.positionOf(gpuUuid);
    if (pos === undefined) {
      throw new BackendError(`${what} on GPU ${gpuUuid} failed: this node has no such GPU (NVML discovery): check the UUID`, {
        library: this.host.library,
        migCode: 'NOT_FOUND',
      });
    }
    return pos;
  }

  /** Read the GPU again after a failed change (best effort: the failure is what the caller hears about). */
  private async reread(pos: number): Promise<void> {
    try {
      this.host.applyGpu(pos, await this.host.requireSession().readGpu(pos));
    } catch {
      // The GPU stays as last read; the next successful call reads it again.
    }
  }

  createMigDevice(gpuUuid: string, req: MigPlacementRequest): Promise<MigDeviceInfo> {
    const what = `creating MIG device (GI profile ${String(req.giProfileId)} at ${String(req.start)}:${String(req.size)})`;
    return this.serial(gpuUuid, async () => {
      if (!isUint(req.giProfileId) || !isUint(req.start) || !isUint(req.size) || req.size === 0) {
        throw new BackendError(`${what} on GPU ${gpuUuid} failed: giProfileId, start and size must be unsigned integers (size > 0)`, {
          library: this.host.library,
          migCode: 'INVALID_ARGUMENT',
        });
      }
      const pos = this.position(what, gpuUuid);
      const session = this.host.requireSession();
      let created;
      try {
        created = await session.createMigDevice(pos, req.giProfileId, req.start, req.size);
      } catch (err) {
        await this.reread(pos);
        throw migError(what, gpuUuid, err, this.host.library);
      }
      const gpu = this.host.applyGpu(pos, created.gpu);
      const mig = gpu?.migDevices.find((m) => m.gpuInstanceId === created.gpuInstanceId);
      if (mig !== undefined) return mig;
      // Created, but the read-back does not list it (unreadable): undo, so nothing half-made stays.
      let undo: string;
      try {
        const d = await session.destroyMigDevice(pos, created.gpuInstanceId);
        this.host.applyGpu(pos, d.gpu);
        undo = 'it was destroyed again';
      } catch (err) {
        undo = `destroying it again failed too (${migError('destroying it', gpuUuid, err, this.host.library).message})`;
      }
      throw new BackendError(
        `${what} on GPU ${gpuUuid}: GPU instance ${created.gpuInstanceId} was created but reading its MIG device back failed (see the NVML discovery problems in the log); ${undo}`,
        { library: this.host.library, migCode: 'UNKNOWN' },
      );
    });
  }

  destroyMigDevice(gpuUuid: string, gpuInstanceId: number): Promise<void> {
    const what = `destroying MIG device (GPU instance ${String(gpuInstanceId)})`;
    return this.serial(gpuUuid, async () => {
      if (!isUint(gpuInstanceId)) {
        throw new BackendError(`${what} on GPU ${gpuUuid} failed: gpuInstanceId must be an unsigned integer`, {
          library: this.host.library,
          migCode: 'INVALID_ARGUMENT',
        });
      }
      const pos = this.position(what, gpuUuid);
      try {
        const r = await this.host.requireSession().destroyMigDevice(pos, gpuInstanceId);
        this.host.applyGpu(pos, r.gpu);
      } catch (err) {
        await this.reread(pos);
        throw migError(what, gpuUuid, err, this.host.library);
      }
    });
  }

  listMigDevices(gpuUuid: string): Promise<MigDeviceInfo[]> {
    const what = 'listing MIG devices';
    return this.serial(gpuUuid, async () => {
      const pos = this.position(what, gpuUuid);
      let gpu;
      try {
        gpu = this.host.applyGpu(pos, await this.host.requireSession().readGpu(pos));
      } catch (err) {
        throw migError(what, gpuUuid, err, this.host.library);
      }
      if (gpu === undefined) {
        throw new BackendError(`${what} on GPU ${gpuUuid} failed: the GPU could not be read (see the NVML discovery problems in the log)`, {
          library: this.host.library,
          migCode: 'UNKNOWN',
        });
      }
      return [...gpu.migDevices];
    });
  }

  /**
   * Every GPU instance of the GPU, with or without a compute instance (`nvmlDeviceGetGpuInstances` per GI
   * profile, `nvmlGpuInstanceGetInfo`): recovery finds with it a GPU instance whose creation stopped before its
   * compute instance (it is no MIG device, so `listMigDevices` does not show it).
   * @throws BackendError with a `migCode` (e.g. NOT_SUPPORTED with MIG mode off, NO_PERMISSION without root)
   */
  gpuInstances(gpuUuid: string): Promise<Array<{ readonly gpuInstanceId: number; readonly giProfileId: number; readonly placement: { readonly start: number; readonly size: number } }>> {
    const what = 'listing GPU instances';
    return this.serial(gpuUuid, async () => {
      const pos = this.position(what, gpuUuid);
      try {
        const listed = await this.host.requireSession().gpuInstances(pos);
        return listed.map((g) => ({ gpuInstanceId: g.gpuInstanceId, giProfileId: g.giProfileId, placement: { start: g.start, size: g.size } }));
      } catch (err) {
        throw migError(what, gpuUuid, err, this.host.library);
      }
    });
  }

  migMode(gpuUuid: string): Promise<{ readonly current: boolean; readonly pending: boolean }> {
    const what = 'reading MIG mode';
    return this.serial(gpuUuid, async () => {
      const pos = this.position(what, gpuUuid);
      try {
        const m = await this.host.requireSession().migMode(pos);
        return { current: m.current === 1, pending: m.pending === 1 };
      } catch (err) {
        throw migError(what, gpuUuid, err, this.host.library);
      }
    });
  }

  setMigMode(gpuUuid: string, enabled: boolean): Promise<{ readonly current: boolean; readonly pending: boolean; readonly resetRequired: boolean }> {
    const what = `${enabled ? 'enabling' : 'disabling'} MIG mode`;
    return this.serial(gpuUuid, async () => {
      const pos = this.position(what, gpuUuid);
      let r;
      try {
        r = await this.host.requireSession().setMigMode(pos, enabled);
      } catch (err) {
        await this.reread(pos);
        throw migError(what, gpuUuid, err, this.host.library);
      }
      this.host.applyGpu(pos, r.gpu);
      const current = r.current === 1;
      const pending = r.pending === 1;
      if (r.activationStatus !== 0 && r.activationStatus !== RESET_REQUIRED) {
        // nvml.h: activationStatus "would return the appropriate error code upon unsuccessful activation".
        const status = new NvmlError(r.activationStatusName, r.activationStatus, r.activationStatusName, 'nvmlDeviceSetMigMode (activationStatus)');
        throw migError(what, gpuUuid, status, this.host.library);
      }
      return { current, pending, resetRequired: r.activationStatus === RESET_REQUIRED || pending !== current };
    });
  }
}
