/**
 * The allocatable devices of a node: full GPUs and static MIG devices, with their DRA device names.
 * Pure and deterministic. Shared by ResourceSlice building, claim preparation (CDI) and telemetry attribution,
 * so a device has exactly one name everywhere.
 *
 * Naming follows NVIDIA's k8s-dra-driver-gpu (docs/contracts.md §4):
 * - full GPU: `gpu-<minor>` (minor number, not index, so names survive a GPU dropping off the bus);
 * - MIG device: `gpu-<parentMinor>-mig-<profile without dots>-<giProfileId>-<placementStart>`,
 *   e.g. `gpu-0-mig-1g10gb-19-6`. The profile is mangled as NVIDIA's driver does (`migppCanonicalName`:
 *   dots removed, lower-cased, other characters outside `[a-z0-9-]` replaced by `-`, trimmed of `-`), so
 *   `1g.10gb+me` → `1g10gb-me`.
 */
import type { GpuInfo, Inventory, MigDeviceInfo } from '../gpu/types.js';

/** A device that can be allocated to a claim. */
export type AllocatableDevice =
  | { readonly kind: 'gpu'; readonly name: string; readonly uuid: string; readonly gpu: GpuInfo }
  | {
      readonly kind: 'mig';
      readonly name: string;
      readonly uuid: string;
      readonly gpu: GpuInfo;
      readonly mig: MigDeviceInfo;
    };

/** DRA device name of a full GPU: `gpu-<minor>`. */
export function gpuDeviceName(gpu: Pick<GpuInfo, 'minor'>): string {
  return `gpu-${gpu.minor}`;
}

/** DRA device name of a MIG device, e.g. `gpu-0-mig-1g10gb-19-6`. The result is a DNS label. */
export function migDeviceName(mig: Pick<MigDeviceInfo, 'parentMinor' | 'profile' | 'giProfileId' | 'placement'>): string {
  const profile = mig.profile.replaceAll('.', '').toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  return `gpu-${mig.parentMinor}-mig-${profile}-${mig.giProfileId}-${mig.placement.start}`;
}

/**
 * Every allocatable device of the inventory, in a stable order: GPUs by minor number, each followed by
 * its MIG devices by placement start. A GPU in MIG mode is not itself allocatable (its memory and SMs are
 * partitioned): only its MIG devices are listed, as NVIDIA's driver does for static MIG.
 */
export function allocatableDevices(inventory: Inventory): AllocatableDevice[] {
  const out: AllocatableDevice[] = [];
  const gpus = [...inventory.gpus].sort((a, b) => a.minor - b.minor);
  for (const gpu of gpus) {
    if (!gpu.migEnabled) {
      out.push({ kind: 'gpu', name: gpuDeviceName(gpu), uuid: gpu.uuid, gpu });
      continue;
    }
    const migs = [...gpu.migDevices].sort((a, b) => a.placement.start - b.placement.start);
    for (const mig of migs) out.push({ kind: 'mig', name: migDeviceName(mig), uuid: mig.uuid, gpu, mig });
  }
  return out;
}

/** Look-up of allocatable devices by DRA device name. */
export function devicesByName(inventory: Inventory): Map<string, AllocatableDevice> {
  return new Map(allocatableDevices(inventory).map((d) => [d.name, d]));
}
