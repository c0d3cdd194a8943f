/**
 * Placement devices of dynamic MIG GPUs (issue 12): the published devices `gpu-<minor>-mig-<profile>-<giProfileId>-
 * <start>` that stand for a MIG instance not made yet. `allocatableDevices` (devices.ts) lists what exists; a
 * claim allocated a placement device resolves here instead, so prepare can create the instance. Pure.
 */
import type { GpuInfo, Inventory } from '../gpu/types.js';
import { allocatableDevices, gpuDeviceName, migDeviceName, type AllocatableDevice } from './devices.js';
import { possiblePlacements, type MigGeometry, type MigPlacement } from './mig-placements.js';

/** A possible MIG placement of a dynamic GPU, allocated by name before its instance exists. */
export interface PlacementDevice {
  readonly kind: 'placement';
  readonly name: string;
  /** The parent GPU. */
  readonly gpu: GpuInfo;
  readonly geometry: MigGeometry;
  readonly placement: MigPlacement;
}

/**
 * The full GPU `gpu-<minor>` of a dynamic GPU in MIG mode: published (consuming every counter; not on a GPU that
 * needs a reset to leave MIG mode) but not an allocatable device of the inventory while MIG mode is on; prepare
 * hands it out by turning MIG mode off for the claim (src/state/mig-ops.ts), after which the inventory lists it.
 */
export interface WholeMigGpuDevice {
  readonly kind: 'whole-gpu';
  readonly name: string;
  readonly gpu: GpuInfo;
  readonly geometry: MigGeometry;
}

/** What a claim's device name may resolve to at prepare: an existing device, a placement to create, or a full GPU in MIG mode. */
export type PrepareDevice = AllocatableDevice | PlacementDevice | WholeMigGpuDevice;

/** The device name of a placement on GPU `minor`. */
export function placementDeviceName(minor: number, p: MigPlacement): string {
  return migDeviceName({ parentMinor: minor, profile: p.profile.name, giProfileId: p.profile.id, placement: { start: p.start, size: p.profile.placementSize } });
}

/**
 * Every device a claim may name at prepare: the existing devices (`allocatableDevices`) and, for each GPU that
 * `geometryOf` says is dynamic, each possible placement that is not an existing instance's name.
 * @param geometryOf the MIG geometry of a dynamic GPU; undefined for a static one.
 */
export function prepareDevicesByName(inventory: Inventory, geometryOf: (gpu: GpuInfo) => MigGeometry | undefined): Map<string, PrepareDevice> {
  const out = new Map<string, PrepareDevice>();
  for (const gpu of [...inventory.gpus].sort((a, b) => a.minor - b.minor)) {
    const geometry = geometryOf(gpu);
    if (geometry === undefined) continue;
    if (gpu.migEnabled) out.set(gpuDeviceName(gpu), { kind: 'whole-gpu', name: gpuDeviceName(gpu), gpu, geometry });
    for (const placement of possiblePlacements(geometry)) {
      const name = placementDeviceName(gpu.minor, placement);
      out.set(name, { kind: 'placement', name, gpu, geometry, placement });
    }
  }
  for (const d of allocatableDevices(inventory)) out.set(d.name, d); // an existing instance wins over its placement
  return out;
}
