/**
 * The mock backend's MIG management (src/gpu/mock/mig.ts): creation at exact placements with NVML's errors,
 * destroy (idempotent, IN_USE), MIG mode (Hopper at once, A100 pending until a reset), the half-way fault,
 * the inventory following every change, deterministic UUIDs, and the state file across a restart.
 * Property: for random sequences of creations and destructions on every MIG-capable model, the mock accepts a
 * creation exactly when the placement oracle (`fitsHardwareRules`, src/model/mig-placements.ts, itself proven
 * against the MIG guide's tables) accepts it — two implementations of the rules, checked against each other.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/errors.js';
import { createMockBackend, GPU_MODELS, type GpuModelName, type MockBackend } from '../../../src/gpu/mock/index.js';
import { fitsHardwareRules, placementOfInstance, possiblePlacements } from '../../../src/model/mig-placements.js';
import { geometryOf, MIG_MODELS } from '../../helpers/dynamic-mig.js';

const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(() => undefined, (err: unknown) => (err instanceof BackendError ? err.migCode : `not a BackendError: ${String(err)}`));

describe('mock MIG manager', () => {
  let dir: string;
  let backend: MockBackend;
  /** A one-GPU node of `model`, MIG mode on (no instances) unless `migOff`. */
  const mk = async (model: GpuModelName, migOff = false): Promise<MockBackend> => {
    const b = createMockBackend({ machine: { gpus: [{ model, ...(migOff ? {} : { mig: [] }) }] }, nodeName: 'node-a', migStateFile: join(dir, 'mig.json') });
    await b.init();
    return b;
  };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpulet-mig-'));
    backend = await mk('h100-80gb');
  });
  afterEach(async () => {
    await backend.shutdown();
    await rm(dir, { recursive: true, force: true });
  });
  const uuid = (): string => backend.inventory().gpus[0]!.uuid;

  it('creates at exactly the placement; the inventory lists it; NVML errors for taken, impossible and unknown', async () => {
    const made = await backend.mig.createMigDevice(uuid(), { giProfileId: 9, start: 4, size: 4 }); // 3g.40gb
    expect(made).toMatchObject({ profile: '3g.40gb', giProfileId: 9, placement: { start: 4, size: 4 }, parentUuid: uuid() });
    expect(made.uuid).toMatch(/^MIG-[0-9a-f]{8}-/);
    expect(backend.inventory().gpus[0]!.migDevices).toEqual([made]);
    expect(await backend.mig.listMigDevices(uuid())).toEqual([made]);
    expect(await codeOf(backend.mig.createMigDevice(uuid(), { giProfileId: 19, start: 5, size: 1 }))).toBe('INSUFFICIENT_RESOURCES'); // overlaps 4:4
    expect(await codeOf(backend.mig.createMigDevice(uuid(), { giProfileId: 9, start: 2, size: 4 }))).toBe('INVALID_ARGUMENT'); // not a placement
    expect(await codeOf(backend.mig.createMigDevice(uuid(), { giProfileId: 99, start: 0, size: 1 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(backend.mig.createMigDevice('GPU-nope', { giProfileId: 19, start: 0, size: 1 }))).toBe('NOT_FOUND');
  });

  it('same placement, same UUID (deterministic per node, GPU and placement); destroy is idempotent; IN_USE while busy', async () => {
    const a = await backend.mig.createMigDevice(uuid(), { giProfileId: 19, start: 2, size: 1 });
    backend.mig.setMigBusy(a.uuid, true);
    expect(await codeOf(backend.mig.destroyMigDevice(uuid(), a.gpuInstanceId))).toBe('IN_USE');
    backend.mig.setMigBusy(a.uuid, false);
    await backend.mig.destroyMigDevice(uuid(), a.gpuInstanceId);
    await backend.mig.destroyMigDevice(uuid(), a.gpuInstanceId); // gone: resolves
    expect(backend.inventory().gpus[0]!.migDevices).toEqual([]);
    const b = await backend.mig.createMigDevice(uuid(), { giProfileId: 19, start: 2, size: 1 });
    expect(b.uuid).toBe(a.uuid);
  });

  it('MIG mode off: creation NOT_SUPPORTED; Hopper turns it on at once, A100 only after a reset', async () => {
    const h100 = await mk('h100-80gb', true);
    const h = h100.inventory().gpus[0]!;
    expect(h.migEnabled).toBe(false);
    expect(await codeOf(h100.mig.createMigDevice(h.uuid, { giProfileId: 19, start: 0, size: 1 }))).toBe('NOT_SUPPORTED');
    expect(await h100.mig.setMigMode(h.uuid, true)).toEqual({ current: true, pending: true, resetRequired: false });
    expect(h100.inventory().gpus[0]!.migEnabled).toBe(true);
    await h100.shutdown();

    await rm(join(dir, 'mig.json'), { force: true });
    const a100 = await mk('a100-40gb', true);
    const a = a100.inventory().gpus[0]!;
    expect(await a100.mig.setMigMode(a.uuid, true)).toEqual({ current: false, pending: true, resetRequired: true });
    expect(await a100.mig.migMode(a.uuid)).toEqual({ current: false, pending: true });
    expect(a100.inventory().gpus[0]!.migEnabled).toBe(false);
    a100.mig.applyPending(0);
    expect(a100.inventory().gpus[0]!.migEnabled).toBe(true);
    await a100.mig.createMigDevice(a.uuid, { giProfileId: 19, start: 0, size: 1 });
    expect(await codeOf(a100.mig.setMigMode(a.uuid, false))).toBe('IN_USE');
    await a100.shutdown();
  });

  it('the half-way fault: the compute instance fails, the GPU instance is destroyed again (or left, when told)', async () => {
    backend.mig.injectFault({ stage: 'compute-instance', code: 'INSUFFICIENT_RESOURCES' });
    expect(await codeOf(backend.mig.createMigDevice(uuid(), { giProfileId: 19, start: 0, size: 1 }))).toBe('INSUFFICIENT_RESOURCES');
    expect(await backend.mig.gpuInstances(uuid())).toEqual([]);
    backend.mig.injectFault({ stage: 'compute-instance', code: 'UNKNOWN', rollbackFails: true });
    expect(await codeOf(backend.mig.createMigDevice(uuid(), { giProfileId: 19, start: 0, size: 1 }))).toBe('UNKNOWN');
    expect((await backend.mig.gpuInstances(uuid())).map((g) => g.placement)).toEqual([{ start: 0, size: 1 }]);
    expect(await backend.mig.listMigDevices(uuid())).toEqual([]); // a GPU instance without compute instance is no MIG device
  });

  it('samples follow the instances: a new MIG device is sampled, a destroyed one is not; GPU energy never goes back', async () => {
    let t = 1_700_000_000_000;
    const b = createMockBackend({ machine: { gpus: [{ model: 'h100-80gb', mig: [] }] }, nodeName: 'node-a', clock: () => t });
    await b.init();
    const gpu = b.inventory().gpus[0]!.uuid;
    const energy = async (): Promise<number> => (await b.sample()).devices.find((d) => d.uuid === gpu)!.energyMillijoules!;
    const e0 = await energy();
    t += 10_000;
    const made = await b.mig.createMigDevice(gpu, { giProfileId: 19, start: 0, size: 1 });
    expect((await b.sample()).devices.map((d) => d.uuid)).toEqual([gpu, made.uuid]);
    const e1 = await energy();
    expect(e1).toBeGreaterThanOrEqual(e0);
    t += 10_000;
    await b.mig.destroyMigDevice(gpu, made.gpuInstanceId);
    expect((await b.sample()).devices.map((d) => d.uuid)).toEqual([gpu]);
    expect(await energy()).toBeGreaterThanOrEqual(e1);
    await b.shutdown();
  });

  it('a restarted backend on the same state file has the same instances (a GPU keeps them across an agent restart)', async () => {
    const made = await backend.mig.createMigDevice(uuid(), { giProfileId: 14, start: 0, size: 2 });
    const again = await mk('h100-80gb');
    expect(again.inventory().gpus[0]!.migDevices).toEqual([made]);
    await again.shutdown();
  });

  it.each(MIG_MODELS)('%s: the mock accepts a creation exactly when fitsHardwareRules does', async (model) => {
    const geometry = geometryOf(model);
    const all = possiblePlacements(geometry);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ create: fc.boolean(), pick: fc.nat() }), { maxLength: 24 }), async (steps) => {
        await rm(join(dir, 'mig.json'), { force: true });
        const b = await mk(model);
        const gpu = b.inventory().gpus[0]!.uuid;
        for (const step of steps) {
          const existing = b.inventory().gpus[0]!.migDevices;
          if (!step.create && existing.length > 0) {
            await b.mig.destroyMigDevice(gpu, existing[step.pick % existing.length]!.gpuInstanceId);
            continue;
          }
          const p = all[step.pick % all.length]!;
          const oracle = fitsHardwareRules(geometry, existing.map((m) => placementOfInstance(geometry, m)!), p);
          const code = await codeOf(b.mig.createMigDevice(gpu, { giProfileId: p.profile.id, start: p.start, size: p.profile.placementSize }));
          expect(code === undefined, `${p.profile.name}@${p.start} beside ${existing.map((m) => `${m.profile}@${m.placement.start}`).join(',')}: ${oracle.ok ? 'ok' : oracle.reason}`).toBe(oracle.ok);
          if (code !== undefined) expect(code).toBe('INSUFFICIENT_RESOURCES');
        }
        await b.shutdown();
      }),
      { numRuns: 40 },
    );
    expect(GPU_MODELS[model].migProfiles.length).toBeGreaterThan(0);
  });
});
