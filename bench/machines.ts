/**
 * Machines and ownership the benchmarks use besides the built-in `dgx-h100`.
 * - `h100x8-mig56`: 8 × H100 80GB, every GPU in MIG mode with seven `1g.10gb` instances at placements 0..6
 *   (the densest H100 layout, test/reference/mig-profiles.md: 1g.10gb max 7) = 8 GPUs + 56 MIG devices, the
 *   "8 GPUs and 56 MIG devices" of issue 5 item 3.
 * - {@link ownEveryDevice}: every allocatable device held by its own claim with one pod, the worst case for
 *   attribute churn (every point of an owned device gets fresh attributes per collection).
 */
import { randomUUID } from 'node:crypto';
import { objectRefSchema } from '../src/model/claim-ref.js';
import { allocatableDevices } from '../src/model/devices.js';
import type { DeviceOwner, OwnershipSource } from '../src/model/types.js';
import type { MachineSpec, MigInstanceSpec } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';

/** 8 × H100 80GB, each with seven 1g.10gb MIG devices: 8 GPUs + 56 MIG devices (56 allocatable). */
export const H100X8_MIG56: MachineSpec = {
  name: 'h100x8-mig56',
  gpus: Array.from({ length: 8 }, () => ({
    model: 'h100-80gb' as const,
    mig: Array.from({ length: 7 }, (_, i): MigInstanceSpec => ({ profile: '1g.10gb', placementStart: i })),
  })),
};

/** Ownership with every allocatable device of `inventory` held by its own claim and one pod. */
export function ownEveryDevice(inventory: Inventory): OwnershipSource {
  const owners = new Map<string, DeviceOwner[]>();
  for (const [i, d] of allocatableDevices(inventory).entries()) {
    const claim = objectRefSchema.parse({ namespace: 'bench', name: `claim-${i}`, uid: randomUUID() });
    const pod = objectRefSchema.parse({ namespace: 'bench', name: `pod-${i}`, uid: randomUUID() });
    owners.set(d.uuid, [{ claim, pods: [pod], deviceName: d.name, uuid: d.uuid }]);
  }
  return { owners: () => owners };
}
