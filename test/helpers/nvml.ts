/**
 * Helpers of the NVML backend tests: the fake libnvidia-ml (test/helpers/fake-nvml.ts) driven by a mock
 * machine, and a fake sysfs tree so PCIe roots resolve as on a real node.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildMockInventory, machineSpecByName, type MachineSpec } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { buildFakeNvml, writeFakeMachine, type FakeMachineFiles, type FakeNvmlFaults } from './fake-nvml.js';

/** A fake machine on disk. */
export interface FakeSetup {
  readonly dir: string;
  readonly library: string;
  readonly inventory: Inventory;
  readonly files: FakeMachineFiles;
  /** Root of a sysfs tree where each GPU's bus ID links under its PCIe root, as on a real node. */
  readonly sysfsRoot: string;
  cleanup(): Promise<void>;
}

/**
 * `<root>/bus/pci/devices/<busId>` → `<root>/devices/<pcieRoot>/<bridge>/<busId>`, the layout Linux uses
 * (a GPU behind a switch port under its root complex).
 */
export async function writeFakeSysfs(root: string, inventory: Inventory): Promise<void> {
  await mkdir(path.join(root, 'bus', 'pci', 'devices'), { recursive: true });
  for (const g of inventory.gpus) {
    const domain = g.pci.pcieRoot.replace(/^pci/, '').split(':')[0] ?? '0000';
    const target = path.join(root, 'devices', g.pci.pcieRoot, `${domain}:00:01.0`, g.pci.busId);
    await mkdir(target, { recursive: true });
    await symlink(path.relative(path.join(root, 'bus', 'pci', 'devices'), target), path.join(root, 'bus', 'pci', 'devices', g.pci.busId));
  }
}

/**
 * Build the fake, write `machine` (a built-in name, default dgx-h100, or a MachineSpec) for `nodeName` with `faults`
 * (and `driverVersion`, default the mock's), and a fake sysfs.
 */
export async function fakeSetup(opts: { machine?: string | MachineSpec; nodeName?: string; faults?: FakeNvmlFaults; driverVersion?: string } = {}): Promise<FakeSetup> {
  const library = await buildFakeNvml();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-nvml-'));
  const machine = opts.machine ?? 'dgx-h100';
  const built = buildMockInventory(typeof machine === 'string' ? machineSpecByName(machine) : machine, opts.nodeName ?? 'node-a');
  // `driverVersion`: what nvmlSystemGetDriverVersion answers (e.g. the version of the NVIDIA userspace installed).
  const inventory = opts.driverVersion === undefined ? built : { ...built, system: { ...built.system, driverVersion: opts.driverVersion } };
  const files = await writeFakeMachine(dir, inventory, opts.faults ?? {});
  const sysfsRoot = path.join(dir, 'sys');
  await writeFakeSysfs(sysfsRoot, inventory);
  return { dir, library, inventory, files, sysfsRoot, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
