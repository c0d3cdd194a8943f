/**
 * `nvmlDeviceGetAddressingMode` and `nvmlDeviceGetVbiosVersion` through the real addon on the fake
 * libnvidia-ml: each mode the library answers (HMM, ATS, None — nvml.h `nvmlDeviceAddressingModeType_t`) reaches
 * the inventory spelled as go-nvlib spells it; NOT_SUPPORTED leaves it absent with no error; a library without
 * the symbol (NVIDIA's before the call, e.g. Debian's 535; the fake built without it) still opens and discovers
 * everything else, the mode absent. The published attribute is checked in test/dra/slices/addressing-mode.test.ts.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMockInventory, GPU_MODELS, machineSpecByName } from '../../../src/gpu/mock/index.js';
import { loadAddon } from '../../../src/gpu/nvml/addon.js';
import { createNvmlBackend, type NvmlBackend } from '../../../src/gpu/nvml/index.js';
import type { AddressingMode, GpuInfo, Inventory } from '../../../src/gpu/types.js';
import { buildFakeNvmlArtifacts, writeFakeMachine, type FakeNvmlFaults } from '../../helpers/fake-nvml.js';
import { writeFakeSysfs } from '../../helpers/nvml.js';

const DEBIAN_NVML = '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1';

/** The dgx-h100 mock (GPUs 6 and 7 in MIG mode) with every GPU's addressing mode set to `mode` (or removed). */
function machine(mode: AddressingMode | undefined): Inventory {
  const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-a');
  return {
    ...inv,
    gpus: inv.gpus.map((g) => {
      const rest: GpuInfo = { ...g };
      delete (rest as { addressingMode?: AddressingMode }).addressingMode;
      return mode === undefined ? rest : { ...rest, addressingMode: mode };
    }),
  };
}

describe('NVML backend on the fake library: addressing mode and VBIOS version', () => {
  const dirs: string[] = [];
  let backend: NvmlBackend | undefined;
  afterEach(async () => {
    await backend?.shutdown();
    backend = undefined;
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** Write `inventory` (+ faults, sysfs) to a temp dir with its own copy of the fake library; env set. */
  async function setUp(inventory: Inventory, opts: { library?: 'full' | 'without-symbol'; faults?: FakeNvmlFaults }): Promise<{ library: string; sysfsRoot: string }> {
    const build = await buildFakeNvmlArtifacts();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-nvml-am-'));
    dirs.push(dir);
    const files = await writeFakeMachine(dir, inventory, opts.faults ?? {});
    await writeFakeSysfs(path.join(dir, 'sys'), inventory);
    Object.assign(process.env, files.env);
    // A copy per scenario: the fake reads its machine once per loaded instance, and a previous backend's
    // library may still be loaded (its event thread lets go after shutdown); another path is another instance.
    const library = path.join(dir, 'libnvidia-ml.so.1');
    await copyFile(opts.library === 'without-symbol' ? build.libraryWithoutAddressingMode : build.library, library);
    return { library, sysfsRoot: path.join(dir, 'sys') };
  }

  /** Discover `inventory` through the addon on `library` (the fake, or the fake without the symbol). */
  async function discover(inventory: Inventory, opts: { library?: 'full' | 'without-symbol'; faults?: FakeNvmlFaults } = {}): Promise<NvmlBackend> {
    const { library, sysfsRoot } = await setUp(inventory, opts);
    backend = createNvmlBackend({ library, sysfsRoot });
    await backend.init();
    return backend;
  }

  it.each(['HMM', 'ATS', 'None'] as const)('NVML value %s reaches every GPU of the inventory, spelled as go-nvlib does', async (mode) => {
    const b = await discover(machine(mode));
    expect(b.symbols()['nvmlDeviceGetAddressingMode']).toBe('nvmlDeviceGetAddressingMode');
    const gpus = b.inventory().gpus;
    expect(gpus).toHaveLength(8);
    expect(gpus.map((g) => g.addressingMode)).toEqual(Array(8).fill(mode));
    // The whole inventory is otherwise the machine's: nothing else moved.
    expect(b.inventory()).toEqual(machine(mode));
  });

  it('the VBIOS version is read from each GPU as NVML prints it', async () => {
    const b = await discover(machine('HMM'));
    expect(b.symbols()['nvmlDeviceGetVbiosVersion']).toBe('nvmlDeviceGetVbiosVersion');
    expect(new Set(b.inventory().gpus.map((g) => g.vbiosVersion))).toEqual(new Set([GPU_MODELS['h100-80gb'].vbiosVersion]));
  });

  it('NOT_SUPPORTED on one GPU leaves only that GPU without a mode (and without a VBIOS version)', async () => {
    const inv = machine('HMM');
    const one = inv.gpus[3]!.uuid;
    const b = await discover(inv, { faults: { notSupported: { [one]: ['nvmlDeviceGetAddressingMode', 'nvmlDeviceGetVbiosVersion'] } } });
    const gpus = b.inventory().gpus;
    expect(gpus.filter((g) => g.addressingMode === undefined).map((g) => g.uuid)).toEqual([one]);
    expect(gpus.filter((g) => g.vbiosVersion === undefined).map((g) => g.uuid)).toEqual([one]);
    expect(gpus.find((g) => g.uuid === one)).not.toHaveProperty('addressingMode');
    expect(gpus).toHaveLength(8);
  });

  it('the addon reports NOT_SUPPORTED as absence, not as a failure; the value as nvml.h numbers it', async () => {
    const inv = machine('ATS');
    const one = inv.gpus[0]!.uuid;
    const { library } = await setUp(inv, { faults: { notSupported: { [one]: ['nvmlDeviceGetAddressingMode'] } } });
    const opened = loadAddon().open(library);
    if (!opened.ok) throw new Error(opened.error);
    try {
      await opened.session.init();
      const d = await opened.session.discover();
      expect(d.gpus.map((g) => g.addressingMode)).toEqual([undefined, 2, 2, 2, 2, 2, 2, 2]); // NVML_DEVICE_ADDRESSING_MODE_ATS
      expect(d.gpus.flatMap((g) => g.errors).map((e) => e.nvmlFunction)).toEqual([]);
    } finally {
      await opened.session.shutdown();
    }
  });

  it('a machine whose NVML does not say (NOT_SUPPORTED everywhere) has no mode on any GPU', async () => {
    const b = await discover(machine(undefined));
    expect(b.inventory().gpus.some((g) => 'addressingMode' in g)).toBe(false);
    expect(b.inventory()).toEqual(machine(undefined));
  });

  it('a library without nvmlDeviceGetAddressingMode (NVIDIA before the call) opens and discovers everything else', async () => {
    const b = await discover(machine('HMM'), { library: 'without-symbol' });
    // Resolved optionally: reported as missing, not a failed open.
    expect(b.symbols()['nvmlDeviceGetAddressingMode']).toBeNull();
    expect(b.symbols()['nvmlDeviceGetVbiosVersion']).toBe('nvmlDeviceGetVbiosVersion');
    expect(b.inventory()).toEqual(machine(undefined));
    // Readings still flow.
    const s = await b.sample();
    expect(s.devices.length).toBe(8 + 10);
  });

  it.skipIf(!existsSync(DEBIAN_NVML))("Debian's real R535 libnvidia-ml opens: nvmlDeviceGetAddressingMode missing (optional), the VBIOS call resolved", async () => {
    const opened = loadAddon().open(DEBIAN_NVML);
    if (!opened.ok) throw new Error(opened.error);
    try {
      expect(opened.session.symbols['nvmlDeviceGetAddressingMode']).toBeNull();
      expect(opened.session.symbols['nvmlDeviceGetVbiosVersion']).toBe('nvmlDeviceGetVbiosVersion');
    } finally {
      await opened.session.shutdown();
    }
  });
});
