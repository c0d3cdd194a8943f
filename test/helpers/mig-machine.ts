/**
 * The fake-NVML machine of the MIG management tests: four GPUs, each for one case of NVML's MIG behaviour.
 * - 0: H100 80GB, MIG mode on, no instances (dynamic MIG creates them);
 * - 1: A100 40GB, MIG mode off (Ampere: a mode change is pending until a GPU reset);
 * - 2: a GPU without MIG (the product name of no model in the fake's tables: no GI profiles), MIG mode off;
 * - 3: H100 80GB, MIG mode off (Hopper: a mode change applies at once).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildMockInventory } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { buildFakeNvml, writeFakeMachine, type FakeMachineFiles } from './fake-nvml.js';
import { writeFakeSysfs } from './nvml.js';

/** Product name of GPU 2: NVIDIA L4 has no MIG (MIG user guide, "Supported GPUs"). */
export const NON_MIG_PRODUCT = 'NVIDIA L4';

/** The machine on disk. */
export interface MigMachine {
  readonly library: string;
  readonly inventory: Inventory;
  readonly files: FakeMachineFiles;
  readonly sysfsRoot: string;
  cleanup(): Promise<void>;
}

/** Build the fake library and write the machine (environment: merge `files.env` before the first nvmlInit). */
export async function migMachine(): Promise<MigMachine> {
  const library = await buildFakeNvml();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-mig-'));
  const built = buildMockInventory(
    { name: 'mig-cases', gpus: [{ model: 'h100-80gb', mig: [] }, { model: 'a100-40gb' }, { model: 'h100-80gb' }, { model: 'h100-80gb' }] },
    'node-mig',
  );
  const inventory: Inventory = {
    ...built,
    gpus: built.gpus.map((g) => (g.index === 2 ? { ...g, productName: NON_MIG_PRODUCT } : g)),
  };
  const files = await writeFakeMachine(dir, inventory);
  const sysfsRoot = path.join(dir, 'sys');
  await writeFakeSysfs(sysfsRoot, inventory);
  return { library, inventory, files, sysfsRoot, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
