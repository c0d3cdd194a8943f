/**
 * The fake libnvidia-ml, driven by a mock Inventory, seen through a C driver that dlopen()s it the way
 * gpulet's addon does: life cycle, identities, MIG handles and profiles (against the reference MIG tables
 * in src/gpu/mock/profiles.ts), versioned structs, buffer sizes, and error texts (against NVIDIA's real
 * library from Debian when installed).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMockInventory, GPU_MODELS, machineSpecByName, validateMachineSpec } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { runDriver } from '../fixtures/fake-nvml/driver.js';
import { buildFakeNvmlArtifacts, writeFakeMachine, type FakeNvmlBuild } from '../helpers/fake-nvml.js';

const REAL_NVML = '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1';
const MIB = 1024 * 1024;
// nvml.h values (checked against NVIDIA's header by test/native/nvml-abi.test.ts).
const NVML = { SUCCESS: 0, UNINITIALIZED: 1, INVALID_ARGUMENT: 2, NOT_SUPPORTED: 3, NOT_FOUND: 6, INSUFFICIENT_SIZE: 7, DRIVER_NOT_LOADED: 9, ARGUMENT_VERSION_MISMATCH: 25 };
const BRAND_NVIDIA = 14;
const ARCH = { Ampere: 7, Hopper: 9 } as const;
/** NVML_GPU_INSTANCE_PROFILE_* index of each GPU-instance profile ID (nvml.h; IDs from nvidia-smi mig -lgip). */
const PROFILE_INDEX: Readonly<Record<number, number>> = { 19: 0, 14: 1, 9: 2, 5: 3, 0: 4, 20: 7, 15: 9 };

interface MigOut {
  uuid: string; handleDistinct: boolean; parentRc: number; parentIsGpu: boolean; gpuInstanceId: number;
  computeInstanceId: number; giRc: number; infoRc: number; infoDeviceIsGpu: boolean; profileId: number;
  placement: { start: number; size: number }; memRc: number; memoryTotal: number; utilRc: number;
  profileIndex: number;
  profile: { id: number; name: string; sliceCount: number; instanceCount: number; multiprocessorCount: number;
    copyEngineCount: number; decoderCount: number; jpegCount: number; ofaCount: number; memorySizeMB: number };
}
interface GpuOut {
  index: number; stableHandle: boolean; uuid: string; name: string; serial: string; minor: number; brand: number;
  architecture: number; cc: [number, number]; busId: string; busIdLegacy: string; pciDeviceId: number;
  pciSubSystemId: number; multiprocessors: number; memoryTotal: number; reserved: number; powerLimit: number;
  migMode: [number, number]; migs: MigOut[];
}
interface InventoryOut { driverVersion: string; nvmlVersion: string; cudaDriverVersion: number; gpus: GpuOut[] }

/** NVML's bus ID form of a sysfs bus ID: `0000:18:00.0` → `00000000:18:00.0` (nvml.h NVML_DEVICE_PCI_BUS_ID_FMT). */
function nvmlBusId(sysfs: string): string {
  const [dom = '', bus = '', rest = ''] = sysfs.split(':');
  return `${dom.padStart(8, '0')}:${bus}:${rest}`.toUpperCase();
}

function modelOf(productName: string): (typeof GPU_MODELS)[keyof typeof GPU_MODELS] {
  const m = Object.values(GPU_MODELS).find((x) => x.productName === productName);
  if (!m) throw new Error(`no model ${productName}`);
  return m;
}

describe('fake libnvidia-ml: discovery', () => {
  let build: FakeNvmlBuild;
  const dirs: string[] = [];
  const machine = async (inv: Inventory): Promise<Record<string, string>> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-fake-nvml-'));
    dirs.push(dir);
    return (await writeFakeMachine(dir, inv)).env;
  };
  const inventoryOf = async (inv: Inventory): Promise<InventoryOut> => {
    const r = await runDriver(build.driver, build.library, ['inventory'], await machine(inv));
    expect(r.code, r.stderr).toBe(0);
    return r.lines[0] as InventoryOut;
  };

  beforeAll(async () => {
    build = await buildFakeNvmlArtifacts();
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('init/shutdown are ref-counted and every call before init is NVML_ERROR_UNINITIALIZED', async () => {
    const env = await machine(buildMockInventory(machineSpecByName('h100-80gb'), 'n1'));
    const r = await runDriver(build.driver, build.library, ['lifecycle'], env);
    expect(r.lines[0]).toEqual({
      beforeInit: NVML.UNINITIALIZED, init1: 0, init2: 0, shutdown1: 0, afterOneShutdown: 0, shutdown2: 0,
      afterAllShutdowns: NVML.UNINITIALIZED, extraShutdown: NVML.UNINITIALIZED, reinit: 0, afterReinit: 0, count: 1,
    });
  });

  it('dgx-h100: devices, UUIDs, serials, PCI, memory, power limit and MIG layout equal the mock inventory', async () => {
    const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-fake');
    const out = await inventoryOf(inv);
    expect(out).toMatchObject({ driverVersion: inv.system.driverVersion, nvmlVersion: inv.system.nvmlVersion, cudaDriverVersion: inv.system.cudaDriverVersion });
    expect(out.gpus.map((g) => g.uuid)).toEqual(inv.gpus.map((g) => g.uuid));
    for (const [i, g] of inv.gpus.entries()) {
      const o = out.gpus[i];
      if (!o) throw new Error(`GPU ${i} missing`);
      const model = modelOf(g.productName);
      expect(o).toMatchObject({
        stableHandle: true, name: g.productName, serial: g.serial, minor: g.minor, brand: BRAND_NVIDIA,
        architecture: ARCH.Hopper, cc: [g.cudaComputeCapability.major, g.cudaComputeCapability.minor],
        busId: nvmlBusId(g.pci.busId), busIdLegacy: nvmlBusId(g.pci.busId).slice(4),
        pciDeviceId: g.pci.pciDeviceId, pciSubSystemId: g.pci.pciSubSystemId, multiprocessors: g.multiprocessors,
        memoryTotal: g.memoryBytes, reserved: model.reservedMiB * MIB, powerLimit: g.powerLimitMilliwatts,
        migMode: g.migEnabled ? [1, 1] : [0, 0],
      });
      expect(o.migs.map((m) => m.uuid)).toEqual(g.migDevices.map((m) => m.uuid));
    }
  });

  it('MIG handles are distinct from GPU handles, lead back to their parent, and carry the reference profile facts', async () => {
    const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-fake');
    const out = await inventoryOf(inv);
    let checked = 0;
    for (const [i, g] of inv.gpus.entries()) {
      const model = modelOf(g.productName);
      for (const [m, mig] of g.migDevices.entries()) {
        const o = out.gpus[i]?.migs[m];
        const ref = model.migProfiles.find((p) => p.name === mig.profile);
        if (!o || !ref) throw new Error(`MIG ${i}/${m} missing`);
        expect(o).toMatchObject({
          handleDistinct: true, parentRc: 0, parentIsGpu: true, giRc: 0, infoRc: 0, infoDeviceIsGpu: true,
          gpuInstanceId: mig.gpuInstanceId, computeInstanceId: mig.computeInstanceId, profileId: ref.id,
          placement: mig.placement, memRc: 0, memoryTotal: mig.memoryBytes, utilRc: NVML.NOT_SUPPORTED,
          profileIndex: PROFILE_INDEX[ref.id],
          profile: {
            id: ref.id, name: `MIG ${ref.name}`, sliceCount: ref.computeSlices, instanceCount: ref.maxCount,
            multiprocessorCount: ref.multiprocessors, copyEngineCount: ref.copyEngines, decoderCount: ref.decoders,
            jpegCount: ref.jpegEngines, ofaCount: ref.ofaEngines, memorySizeMB: ref.memoryMiB,
          },
        });
        checked++;
      }
    }
    expect(checked).toBe(10);
  });

  it('A100 40GB with +me and double-memory 1g profiles: found at the _REV1 and _REV2 profile indexes', async () => {
    const spec = validateMachineSpec({
      gpus: [{ model: 'a100-40gb', mig: [{ profile: '1g.10gb', placementStart: 0 }, { profile: '1g.5gb+me', placementStart: 2 }, { profile: '3g.20gb', placementStart: 4 }] }],
    });
    const out = await inventoryOf(buildMockInventory(spec, 'node-a100'));
    const migs = out.gpus[0]?.migs ?? [];
    expect(out.gpus[0]?.architecture).toBe(ARCH.Ampere);
    expect(migs.map((m) => [m.profile.name, m.profileIndex])).toEqual([['MIG 1g.10gb', 9], ['MIG 1g.5gb+me', 7], ['MIG 3g.20gb', 2]]);
  });

  it('versioned structs, buffer sizes, bad handles and per-entry field-value returns behave as NVML documents', async () => {
    const env = await machine(buildMockInventory(machineSpecByName('h100-80gb'), 'n1'));
    const r = await runDriver(build.driver, build.library, ['checks'], env);
    expect(r.code, r.stderr).toBe(0);
    const o = r.lines[0] as Record<string, unknown>;
    expect(o).toMatchObject({
      memV2WrongVersion: NVML.ARGUMENT_VERSION_MISMATCH, memV2: 0, memV1: 0, v1UsedPlusFree: true,
      v2Reserved: GPU_MODELS['h100-80gb'].reservedMiB * MIB, profileWrongVersion: NVML.ARGUMENT_VERSION_MISMATCH,
      nameTooSmall: NVML.INSUFFICIENT_SIZE, uuidInV1Buffer: 0, driverTooSmall: NVML.INSUFFICIENT_SIZE,
      badHandle: NVML.INVALID_ARGUMENT, migIndexOnFullGpu: NVML.NOT_FOUND, gpuInstanceOnFullGpu: NVML.NOT_SUPPORTED,
      handleIndexOutOfRange: NVML.INVALID_ARGUMENT, fieldsRc: 0,
      // nvml.h 13.5: a wrong `version` is ARGUMENT_VERSION_MISMATCH; the mock H100 is HMM (1); VBIOS buffer 32.
      addressingModeWrongVersion: NVML.ARGUMENT_VERSION_MISMATCH, addressingModeRc: 0, addressingMode: 1,
      vbiosTooSmall: NVML.INSUFFICIENT_SIZE, vbiosRc: 0, vbios: GPU_MODELS['h100-80gb'].vbiosVersion,
    });
    const [temp, energy, nvlink, replay] = o['fields'] as number[][];
    expect(temp?.slice(0, 2)).toEqual([0, 1]); // NVML_VALUE_TYPE_UNSIGNED_INT
    expect(temp?.[2]).toBeGreaterThan(20);
    expect(energy?.slice(0, 2)).toEqual([0, 3]); // NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
    expect(nvlink).toEqual([NVML.NOT_SUPPORTED]);
    expect(replay?.[0]).toBe(0);
  });

  it('exports every symbol of the resolution table under both names, like NVIDIA\'s library', async () => {
    const fake = await runDriver(build.driver, build.library, ['symbols'], {});
    const table = fake.lines[0] as Record<string, [number, number]>;
    expect(Object.keys(table).length).toBeGreaterThanOrEqual(46);
    expect(Object.entries(table).filter(([, v]) => v[0] !== 1 || v[1] !== 1)).toEqual([]);
    if (existsSync(REAL_NVML)) {
      const real = await runDriver(build.driver, REAL_NVML, ['symbols'], {});
      expect(Object.keys(real.lines[0] as object)).toEqual(Object.keys(table));
    }
  });

  it('the variant without nvmlDeviceGetAddressingMode lacks exactly that symbol, as Debian\'s R535 library does', async () => {
    const without = (await runDriver(build.driver, build.libraryWithoutAddressingMode, ['symbols'], {})).lines[0] as Record<string, [number, number]>;
    expect(Object.entries(without).filter(([, v]) => v[0] !== 1 || v[1] !== 1).map(([k]) => k)).toEqual(['nvmlDeviceGetAddressingMode']);
    const env = await machine(buildMockInventory(machineSpecByName('h100-80gb'), 'n1'));
    const r = await runDriver(build.driver, build.libraryWithoutAddressingMode, ['checks'], env);
    expect(r.lines[0]).toMatchObject({ addressingModeRc: -1, vbiosRc: 0 }); // -1: the driver found no symbol
    if (existsSync(REAL_NVML)) {
      const real = (await runDriver(build.driver, REAL_NVML, ['symbols'], {})).lines[0] as Record<string, [number, number]>;
      expect(real['nvmlDeviceGetAddressingMode']).toEqual([0, 0]);
      expect(real['nvmlDeviceGetVbiosVersion']).toEqual([1, 1]);
    }
  });

  it.skipIf(!existsSync(REAL_NVML))('nvmlErrorString texts equal those of NVIDIA\'s libnvidia-ml (Debian libnvidia-ml1)', async () => {
    const env = await machine(buildMockInventory(machineSpecByName('h100-80gb'), 'n1'));
    const fake = (await runDriver(build.driver, build.library, ['init'], env)).lines[0] as { errorStrings: object };
    const real = (await runDriver(build.driver, REAL_NVML, ['init'], {})).lines[0] as { init: number; text: string; errorStrings: object };
    // No NVIDIA driver on this machine: the real library fails exactly as the fake's initError 9 will.
    expect(real).toMatchObject({ init: NVML.DRIVER_NOT_LOADED, text: 'Driver Not Loaded' });
    expect(fake.errorStrings).toEqual(real.errorStrings);
  });
});
