/**
 * The addon's MIG management calls (native/nvml_mig.cc, native/session.cc) against the fake libnvidia-ml:
 * creation at an exact placement (GPU instance + its full compute instance), NVML's placement rules and error
 * codes, destruction, the half-way failure and its rollback, IN_USE, NOT_SUPPORTED, and MIG mode pending until
 * a reset. Expected values come from the MIG profile tables (test/reference/mig-profiles.md, as
 * src/gpu/mock/profiles.ts) and NVIDIA's GI numbering (`gpuInstanceId`), not from the addon.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/gpu/nvml/addon.js';
import { GPU_MODELS, gpuInstanceId } from '../../src/gpu/mock/index.js';
import { NvmlError } from '../../src/gpu/nvml/nvml-error.js';
import type { NvmlSession } from '../../src/gpu/nvml/session.js';
import { writeFakeFaults } from '../helpers/fake-nvml.js';
import { migMachine, type MigMachine } from '../helpers/mig-machine.js';

/** nvml.h return codes. */
const INVALID_ARGUMENT = 2;
const NOT_SUPPORTED = 3;
const RESET_REQUIRED = 16;
const IN_USE = 19;
const INSUFFICIENT_RESOURCES = 23;

const H100 = GPU_MODELS['h100-80gb'].migProfiles;
const profile = (name: string) => {
  const p = H100.find((x) => x.name === name);
  if (!p) throw new Error(`no H100 profile ${name}`);
  return p;
};

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<NvmlError & { rollbackError?: NvmlError }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NvmlError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('native MIG management on the fake libnvidia-ml', () => {
  let machine: MigMachine;
  let session: NvmlSession;

  beforeAll(async () => {
    machine = await migMachine();
    Object.assign(process.env, machine.files.env);
    const opened = loadAddon().open(machine.library);
    if (!opened.ok) throw new Error(opened.error);
    session = opened.session;
    await session.init();
    await session.discover();
  }, 120_000);
  afterAll(async () => {
    await session?.shutdown();
    await machine?.cleanup();
  });
  afterEach(async () => {
    await writeFakeFaults(machine.files.faultsPath, {});
    // Every test starts and ends with GPU 0 empty: destroy what is left (and prove it was).
    const left = (await session.readGpu(0)).migDevices;
    for (const m of left) await session.destroyMigDevice(0, m.gpuInstanceId ?? -1);
  });

  it('creates a GPU instance at exactly the placement asked, with its full compute instance: the MIG device NVML lists', async () => {
    const p = profile('3g.40gb');
    const r = await session.createMigDevice(0, p.id, 4, p.placementSize);
    expect(r.gpuInstanceId).toBe(gpuInstanceId({ start: 4, size: p.placementSize }));
    expect(r.gpu.migDevices).toHaveLength(1);
    const mig = r.gpu.migDevices[0]!;
    expect(mig.uuid).toMatch(/^MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(mig).toMatchObject({
      gpuInstanceId: r.gpuInstanceId,
      profileId: p.id,
      placementStart: 4,
      placementSize: p.placementSize,
      profile: {
        id: p.id,
        name: `MIG ${p.name}`,
        sliceCount: p.computeSlices,
        multiprocessorCount: p.multiprocessors,
        copyEngineCount: p.copyEngines,
        decoderCount: p.decoders,
        jpegCount: p.jpegEngines,
        ofaCount: p.ofaEngines,
        memorySizeMB: p.memoryMiB,
      },
    });
    // A later readGpu (a fresh NVML read) lists the same device; a sample reads it through the new handles.
    expect((await session.readGpu(0)).migDevices.map((m) => m.uuid)).toEqual([mig.uuid]);
    const sample = await session.sample();
    const reading = sample.devices.find((d) => d.gpu === 0 && d.mig === 0);
    expect(reading?.memTotal).toBe(p.memoryMiB * 2 ** 20);
  });

  it("offers each profile's possible placements (nvmlDeviceGetGpuInstancePossiblePlacements_v2) as the reference lists them", async () => {
    const g = await session.readGpu(0);
    for (const p of H100) {
      const facts = g.migProfiles?.find((x) => x.id === p.id);
      expect(facts, p.name).toBeDefined();
      expect(facts?.instanceCount).toBe(p.maxCount);
      expect(facts?.placements).toEqual(p.placementStarts.map((start) => ({ start, size: p.placementSize })));
    }
  });

  it('an overlapping placement is INSUFFICIENT_RESOURCES and changes nothing; a placement not possible for the profile is INVALID_ARGUMENT', async () => {
    const big = profile('3g.40gb');
    await session.createMigDevice(0, big.id, 4, big.placementSize);
    const small = profile('1g.10gb');
    const overlap = await rejection(session.createMigDevice(0, small.id, 5, small.placementSize));
    expect(overlap).toMatchObject({ code: INSUFFICIENT_RESOURCES, nvmlFunction: 'nvmlDeviceCreateGpuInstanceWithPlacement' });
    expect((await session.readGpu(0)).migDevices).toHaveLength(1);
    // 3g.40gb may start at 0 or 4 only (reference: `{0,4}:4`).
    const bad = await rejection(session.createMigDevice(0, big.id, 2, big.placementSize));
    expect(bad).toMatchObject({ code: INVALID_ARGUMENT, nvmlFunction: 'nvmlDeviceCreateGpuInstanceWithPlacement' });
  });

  it("a profile's instance maximum is INSUFFICIENT_RESOURCES (one 1g.10gb+me per GPU)", async () => {
    const me = profile('1g.10gb+me');
    await session.createMigDevice(0, me.id, 0, me.placementSize);
    const second = await rejection(session.createMigDevice(0, me.id, 1, me.placementSize));
    expect(second.code).toBe(INSUFFICIENT_RESOURCES);
  });

  it('destroy removes the compute and GPU instance; destroying it again finds nothing and succeeds', async () => {
    const p = profile('2g.20gb');
    const r = await session.createMigDevice(0, p.id, 2, p.placementSize);
    const d = await session.destroyMigDevice(0, r.gpuInstanceId);
    expect(d.found).toBe(true);
    expect(d.gpu.migDevices).toEqual([]);
    const again = await session.destroyMigDevice(0, r.gpuInstanceId);
    expect(again.found).toBe(false);
    // The memory slices are free again: the same placement can be created.
    const r2 = await session.createMigDevice(0, p.id, 2, p.placementSize);
    expect(r2.gpuInstanceId).toBe(r.gpuInstanceId);
  });

  it('a creation that fails half-way (GI made, CI not) destroys the GI again: nothing is left', async () => {
    await writeFakeFaults(machine.files.faultsPath, { fail: { nvmlGpuInstanceCreateComputeInstance: INSUFFICIENT_RESOURCES } });
    const p = profile('4g.40gb');
    const err = await rejection(session.createMigDevice(0, p.id, 0, p.placementSize));
    expect(err).toMatchObject({ code: INSUFFICIENT_RESOURCES, nvmlFunction: 'nvmlGpuInstanceCreateComputeInstance' });
    expect(err.rollbackError).toBeUndefined();
    expect((await session.readGpu(0)).migDevices).toEqual([]);
    // No GPU instance either (a GI without a CI is no MIG device, so ask for it by ID): gone.
    expect((await session.destroyMigDevice(0, gpuInstanceId({ start: 0, size: p.placementSize }))).found).toBe(false);
    await writeFakeFaults(machine.files.faultsPath, {});
    expect((await session.createMigDevice(0, p.id, 0, p.placementSize)).gpu.migDevices).toHaveLength(1);
  });

  it('when the rollback fails too, the rejection carries it as rollbackError (and the GI is left for recovery)', async () => {
    await writeFakeFaults(machine.files.faultsPath, {
      fail: { nvmlGpuInstanceCreateComputeInstance: INSUFFICIENT_RESOURCES, nvmlGpuInstanceDestroy: IN_USE },
    });
    const p = profile('1g.10gb');
    const err = await rejection(session.createMigDevice(0, p.id, 3, p.placementSize));
    expect(err.code).toBe(INSUFFICIENT_RESOURCES);
    expect(err.rollbackError).toBeInstanceOf(NvmlError);
    expect(err.rollbackError).toMatchObject({ code: IN_USE, nvmlFunction: 'nvmlGpuInstanceDestroy' });
    await writeFakeFaults(machine.files.faultsPath, {});
    expect((await session.destroyMigDevice(0, gpuInstanceId({ start: 3, size: 1 }))).found).toBe(true);
  });

  it('IN_USE: a compute instance with processes is not destroyed, and the MIG device stays', async () => {
    const p = profile('1g.20gb');
    const r = await session.createMigDevice(0, p.id, 6, p.placementSize);
    const uuid = r.gpu.migDevices[0]!.uuid!;
    await writeFakeFaults(machine.files.faultsPath, { inUse: [uuid] });
    const err = await rejection(session.destroyMigDevice(0, r.gpuInstanceId));
    expect(err).toMatchObject({ code: IN_USE, nvmlFunction: 'nvmlComputeInstanceDestroy' });
    expect((await session.readGpu(0)).migDevices.map((m) => m.uuid)).toEqual([uuid]);
  });

  it('NOT_SUPPORTED on a GPU without MIG, and on a MIG GPU with MIG mode off', async () => {
    const p = profile('1g.10gb');
    expect((await rejection(session.createMigDevice(2, p.id, 0, 1))).code).toBe(NOT_SUPPORTED);
    expect((await rejection(session.setMigMode(2, true))).code).toBe(NOT_SUPPORTED);
    expect((await rejection(session.createMigDevice(1, 19, 0, 1))).code).toBe(NOT_SUPPORTED);
  });

  it('A100: enabling MIG mode is pending until a GPU reset (activationStatus RESET_REQUIRED); H100: at once', async () => {
    const a100 = await session.setMigMode(1, true);
    expect(a100).toMatchObject({ activationStatus: RESET_REQUIRED, activationStatusName: 'NVML_ERROR_RESET_REQUIRED', current: 0, pending: 1 });
    expect(await session.migMode(1)).toEqual({ current: 0, pending: 1 });
    expect((await rejection(session.createMigDevice(1, 19, 0, 1))).code).toBe(NOT_SUPPORTED);
    const h100 = await session.setMigMode(3, true);
    expect(h100).toMatchObject({ activationStatus: 0, current: 1, pending: 1 });
    expect(h100.gpu.migProfiles?.map((x) => x.id).sort((a, b) => a - b)).toEqual(H100.map((x) => x.id).sort((a, b) => a - b));
    const r = await session.createMigDevice(3, profile('7g.80gb').id, 0, 8);
    expect(r.gpu.migDevices).toHaveLength(1);
    // Disabling MIG mode while a GPU instance exists: IN_USE; after destroying it, the mode goes off.
    expect((await rejection(session.setMigMode(3, false))).code).toBe(IN_USE);
    await session.destroyMigDevice(3, r.gpuInstanceId);
    expect(await session.setMigMode(3, false)).toMatchObject({ activationStatus: 0, current: 0, pending: 0 });
  });

  it('rejects malformed arguments before any NVML call (the addon throws a TypeError naming the argument)', async () => {
    await expect(session.createMigDevice(-1, 19, 0, 1)).rejects.toThrow(/gpu must be an unsigned 32-bit integer/);
    await expect(session.createMigDevice(0, 19, 0.5, 1)).rejects.toThrow(TypeError);
    expect((await session.readGpu(0)).migDevices).toEqual([]);
  });

  it('runs off the JS thread: the event loop turns while a (slow) creation is in flight', async () => {
    await writeFakeFaults(machine.files.faultsPath, { slowMs: { nvmlDeviceCreateGpuInstanceWithPlacement: 2000 } });
    let done = false;
    const p = profile('1g.10gb');
    const creating = session.createMigDevice(0, p.id, 0, p.placementSize).then((r) => {
      done = true;
      return r;
    });
    // A blocking call would have finished (and its promise settled) before the next event-loop turn.
    const doneAtNextTurn = await new Promise<boolean>((resolve) => setImmediate(() => resolve(done)));
    expect(doneAtNextTurn).toBe(false);
    expect((await creating).gpu.migDevices).toHaveLength(1);
  });

  it('an unknown GPU index is an error naming it, not a crash', async () => {
    await expect(session.readGpu(99)).rejects.toThrow(/no readable GPU at discovery index 99/);
  });
});

