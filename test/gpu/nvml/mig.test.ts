/**
 * `GpuBackend.mig` of the NVML backend through the real addon on the fake libnvidia-ml: results in gpulet's
 * model (MigDeviceInfo), the inventory and samples following instances as they come and go, NVML's errors as
 * BackendError.migCode with advice, the half-way failure rolled back, per-GPU ordering, MIG mode pending until a
 * reset, and each GPU's MIG profiles with possible placements as NVML reports them (equal to the reference
 * tables of test/reference/mig-profiles.md, which the fake serves).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/errors.js';
import { GPU_MODELS, gpuInstanceId } from '../../../src/gpu/mock/index.js';
import { createNvmlBackend, type NvmlBackend } from '../../../src/gpu/nvml/index.js';
import type { MigManager } from '../../../src/gpu/types.js';
import { writeFakeFaults } from '../../helpers/fake-nvml.js';
import { migMachine, type MigMachine } from '../../helpers/mig-machine.js';

const H100 = GPU_MODELS['h100-80gb'].migProfiles;
const profile = (name: string) => {
  const p = H100.find((x) => x.name === name);
  if (!p) throw new Error(`no H100 profile ${name}`);
  return p;
};

async function backendError(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BackendError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('NVML backend: MIG management (GpuBackend.mig)', () => {
  let machine: MigMachine;
  let backend: NvmlBackend;
  let mig: MigManager;
  let gpu0: string;

  beforeAll(async () => {
    machine = await migMachine();
    Object.assign(process.env, machine.files.env);
    backend = createNvmlBackend({ library: machine.library, sysfsRoot: machine.sysfsRoot });
    await backend.init();
    mig = backend.mig;
    gpu0 = machine.inventory.gpus[0]!.uuid;
  }, 120_000);
  afterAll(async () => {
    await backend?.shutdown();
    await machine?.cleanup();
  });
  afterEach(async () => {
    await writeFakeFaults(machine.files.faultsPath, {});
    for (const m of await mig.listMigDevices(gpu0)) await mig.destroyMigDevice(gpu0, m.gpuInstanceId);
  });

  it('createMigDevice returns the new MIG device as discovery lists it; inventory and samples include it', async () => {
    const p = profile('3g.40gb');
    const gpu = machine.inventory.gpus[0]!;
    const created = await mig.createMigDevice(gpu0, { giProfileId: p.id, start: 4, size: p.placementSize });
    expect(created).toMatchObject({
      parentUuid: gpu0,
      parentMinor: gpu.minor,
      profile: p.name,
      giProfileId: p.id,
      placement: { start: 4, size: p.placementSize },
      gpuInstanceId: gpuInstanceId({ start: 4, size: p.placementSize }),
      multiprocessors: p.multiprocessors,
      copyEngines: p.copyEngines,
      decoders: p.decoders,
      encoders: p.encoders,
      jpegEngines: p.jpegEngines,
      ofaEngines: p.ofaEngines,
      memoryBytes: p.memoryMiB * 2 ** 20,
    });
    expect(created.uuid).toMatch(/^MIG-/);
    expect(await mig.listMigDevices(gpu0)).toEqual([created]);
    expect(backend.inventory().gpus[0]?.migDevices).toEqual([created]);
    const sample = await backend.sample();
    expect(sample.devices.find((d) => d.uuid === created.uuid)?.memoryTotalBytes).toBe(created.memoryBytes);

    await mig.destroyMigDevice(gpu0, created.gpuInstanceId);
    expect(backend.inventory().gpus[0]?.migDevices).toEqual([]);
    expect((await backend.sample()).devices.map((d) => d.uuid)).not.toContain(created.uuid);
    await expect(mig.destroyMigDevice(gpu0, created.gpuInstanceId)).resolves.toBeUndefined();
  });

  it('NVML errors become migCodes with advice: INSUFFICIENT_RESOURCES, INVALID_ARGUMENT, NOT_SUPPORTED, NO_PERMISSION, NOT_FOUND', async () => {
    const big = profile('4g.40gb');
    await mig.createMigDevice(gpu0, { giProfileId: big.id, start: 0, size: big.placementSize });
    const overlap = await backendError(mig.createMigDevice(gpu0, { giProfileId: profile('1g.10gb').id, start: 2, size: 1 }));
    expect(overlap).toMatchObject({ migCode: 'INSUFFICIENT_RESOURCES', nvmlName: 'NVML_ERROR_INSUFFICIENT_RESOURCES' });
    expect(overlap.message).toContain(gpu0);
    expect(overlap.message).toContain('nvmlDeviceCreateGpuInstanceWithPlacement');
    const invalid = await backendError(mig.createMigDevice(gpu0, { giProfileId: profile('3g.40gb').id, start: 2, size: 4 }));
    expect(invalid.migCode).toBe('INVALID_ARGUMENT');
    const nonMig = machine.inventory.gpus[2]!.uuid;
    expect((await backendError(mig.createMigDevice(nonMig, { giProfileId: 19, start: 0, size: 1 }))).migCode).toBe('NOT_SUPPORTED');
    expect((await backendError(mig.setMigMode(nonMig, true))).migCode).toBe('NOT_SUPPORTED');
    await writeFakeFaults(machine.files.faultsPath, { fail: { nvmlDeviceCreateGpuInstanceWithPlacement: 4 } });
    const denied = await backendError(mig.createMigDevice(gpu0, { giProfileId: 19, start: 6, size: 1 }));
    expect(denied.migCode).toBe('NO_PERMISSION');
    expect(denied.message).toContain('CAP_SYS_ADMIN');
    expect((await backendError(mig.listMigDevices('GPU-not-here'))).migCode).toBe('NOT_FOUND');
    expect((await backendError(mig.createMigDevice(gpu0, { giProfileId: 19, start: -1, size: 1 }))).migCode).toBe('INVALID_ARGUMENT');
  });

  it('a creation that fails half-way is rolled back: rejected with the compute-instance error, nothing left', async () => {
    await writeFakeFaults(machine.files.faultsPath, { fail: { nvmlGpuInstanceCreateComputeInstance: 23 } });
    const err = await backendError(mig.createMigDevice(gpu0, { giProfileId: 19, start: 0, size: 1 }));
    expect(err.migCode).toBe('INSUFFICIENT_RESOURCES');
    expect(err.message).toContain('nvmlGpuInstanceCreateComputeInstance');
    expect(err.message).toContain('destroyed again');
    expect(await mig.listMigDevices(gpu0)).toEqual([]);
    await writeFakeFaults(machine.files.faultsPath, {});
    // The placement is free: the same creation succeeds now.
    expect((await mig.createMigDevice(gpu0, { giProfileId: 19, start: 0, size: 1 })).placement).toEqual({ start: 0, size: 1 });
  });

  it('gpuInstances lists every GPU instance, the one a half-way failure left without a compute instance included', async () => {
    const half = profile('2g.20gb');
    const whole = await mig.createMigDevice(gpu0, { giProfileId: 19, start: 6, size: 1 });
    // The compute instance fails and so does the rollback's nvmlGpuInstanceDestroy: a GI is left without a CI.
    await writeFakeFaults(machine.files.faultsPath, { fail: { nvmlGpuInstanceCreateComputeInstance: 23, nvmlGpuInstanceDestroy: 999 } });
    const err = await backendError(mig.createMigDevice(gpu0, { giProfileId: half.id, start: 2, size: half.placementSize }));
    expect(err.message).toContain('nvmlGpuInstanceCreateComputeInstance');
    await writeFakeFaults(machine.files.faultsPath, {});
    const leftId = gpuInstanceId({ start: 2, size: half.placementSize });
    // Not a MIG device (no compute instance), so listMigDevices does not show it; gpuInstances does.
    expect((await mig.listMigDevices(gpu0)).map((m) => m.gpuInstanceId)).toEqual([whole.gpuInstanceId]);
    const listed = await mig.gpuInstances!(gpu0);
    expect([...listed].sort((a, b) => a.gpuInstanceId - b.gpuInstanceId)).toEqual(
      [
        { gpuInstanceId: whole.gpuInstanceId, giProfileId: 19, placement: { start: 6, size: 1 } },
        { gpuInstanceId: leftId, giProfileId: half.id, placement: { start: 2, size: half.placementSize } },
      ].sort((a, b) => a.gpuInstanceId - b.gpuInstanceId),
    );
    // Recovery's cleanup: the destroy removes the GI without a CI; then gpuInstances no longer lists it.
    await mig.destroyMigDevice(gpu0, leftId);
    expect((await mig.gpuInstances!(gpu0)).map((g) => g.gpuInstanceId)).toEqual([whole.gpuInstanceId]);
  });

  it('IN_USE: destroy of a MIG device with processes rejects and the device stays in the inventory', async () => {
    const created = await mig.createMigDevice(gpu0, { giProfileId: 19, start: 1, size: 1 });
    await writeFakeFaults(machine.files.faultsPath, { inUse: [created.uuid] });
    const err = await backendError(mig.destroyMigDevice(gpu0, created.gpuInstanceId));
    expect(err.migCode).toBe('IN_USE');
    expect(backend.inventory().gpus[0]?.migDevices.map((m) => m.uuid)).toEqual([created.uuid]);
  });

  it('calls on one GPU run in the order made: a destroy issued right after its create finds the instance', async () => {
    const p = profile('2g.20gb');
    const create = mig.createMigDevice(gpu0, { giProfileId: p.id, start: 2, size: p.placementSize });
    const destroy = mig.destroyMigDevice(gpu0, gpuInstanceId({ start: 2, size: p.placementSize }));
    const list = mig.listMigDevices(gpu0);
    await create;
    await destroy;
    expect(await list).toEqual([]);
  });

  it('MIG mode: A100 pending until a reset (resetRequired); H100 at once, and its profiles appear', async () => {
    const a100 = machine.inventory.gpus[1]!.uuid;
    expect(await mig.migMode(a100)).toEqual({ current: false, pending: false });
    expect(await mig.setMigMode(a100, true)).toEqual({ current: false, pending: true, resetRequired: true });
    expect(await mig.migMode(a100)).toEqual({ current: false, pending: true });
    expect(backend.migProfiles(a100)).toBeUndefined();
    const h100 = machine.inventory.gpus[3]!.uuid;
    expect(backend.migProfiles(h100)).toBeUndefined();
    expect(await mig.setMigMode(h100, true)).toEqual({ current: true, pending: true, resetRequired: false });
    expect(backend.inventory().gpus[3]?.migEnabled).toBe(true);
    const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
    expect([...(backend.migProfiles(h100) ?? [])].sort(byId)).toEqual([...H100].sort(byId));
    expect(await mig.setMigMode(h100, false)).toEqual({ current: false, pending: false, resetRequired: false });
  });

  it("supplies each MIG GPU's profiles with possible placements in the MigProfileSpec shape: the reference table", () => {
    const got = backend.migProfiles(gpu0);
    expect(got).toBeDefined();
    const byId = (a: { id: number }, b: { id: number }) => a.id - b.id;
    expect([...(got ?? [])].sort(byId)).toEqual([...H100].sort(byId));
  });
});
