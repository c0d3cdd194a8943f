/**
 * Dynamic MIG prepare and unprepare (issue 12 item 3) through the claim state wired as main wires it, over real
 * files (temp dirs), with the mock backend's MIG manager (src/gpu/mock/mig.ts) on a one-H100 node in MIG mode:
 * prepare of a placement device creates the instance at exactly that placement and writes its UUID and MIG caps
 * nodes into the CDI spec; unprepare destroys it; an instance gpulet did not create is never destroyed; a
 * placement the hardware rules refuse, or a creation failing half-way, fails the claim with nothing left; and
 * start-up recovery rolls back the intent of a crashed prepare (the crash reproduced by writing the checkpoint
 * entry and the instance a crash at each step leaves; the kill -9 runs are test/agent/dynamic-mig-crash.test.ts).
 *
 * Independent facts: the expected placements come from the device names (NVIDIA's `gpu-<minor>-mig-<profile>-
 * <giProfileId>-<start>`); cap minors from the kernel module's mig-minors layout (3 + 135·minor + 9·GI, +1+CI);
 * the instances on the "GPU" are read from the mock's own list, not from gpulet's checkpoint.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMockBackend, type MockBackend } from '../../src/gpu/mock/index.js';
import { pino } from 'pino';
import { silentLogger } from '../../src/log.js';
import type { ClaimList } from '../../src/state/claim-source.js';
import type { GpuModelName } from '../../src/gpu/mock/models.js';
import { migModeOffGpus, ownMigDeviceNames } from '../../src/state/mig-ops.js';
import { initAndReconcile } from '../../src/state/reconcile.js';
import { allocatedClaim, claimState, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState } from '../helpers/claims.js';
import { geometryOf } from '../helpers/dynamic-mig.js';

/** MemoryClaimSource that lists too (the rebuild after a lost checkpoint). */
class ListingSource extends MemoryClaimSource {
  async *listPages(): AsyncGenerator<ClaimList> {
    await Promise.resolve();
    yield this.listAll();
  }
}

const POD = { resource: 'pods', name: 'p', uid: '9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4' };
/** 1g.10gb (GI profile 19) at memory slice 3; 3g.40gb (GI profile 9) at 4; 4g.40gb (GI profile 5) at 0. */
const SMALL = 'gpu-0-mig-1g10gb-19-3';
const HALF = 'gpu-0-mig-3g40gb-9-4';
const FOUR = 'gpu-0-mig-4g40gb-5-0';

describe('dynamic MIG: prepare creates, unprepare destroys (mock backend)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let backend: MockBackend;
  let source: ListingSource;
  let changes: number;

  let model: GpuModelName;
  const startBackend = async (m: GpuModelName): Promise<void> => {
    model = m;
    backend = createMockBackend({ machine: { gpus: [{ model: m, mig: [] }] }, nodeName: NODE, migStateFile: join(dir, 'mig.json') });
    await backend.init();
  };
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    await startBackend('h100-80gb');
    source = new ListingSource();
    changes = 0;
  });
  afterEach(async () => {
    await backend.shutdown();
    await cleanup();
  });

  const state = (logger = silentLogger()): ClaimState =>
    claimState({
      driverName: DRIVER,
      poolName: NODE,
      inventory: () => backend.inventory(),
      claimSource: source,
      cdiDir: join(dir, 'cdi'),
      devRoot: join(dir, 'dev'),
      checkpointPath: join(dir, 'checkpoint.json'),
      logger,
      readBootId: () => Promise.resolve('boot-1'),
      dynamicMig: { geometryOf: () => geometryOf(model), manager: backend.mig, onInventoryChange: () => changes++ },
    });
  const gpuUuid = (): string => backend.inventory().gpus[0]!.uuid;
  const instances = async () => (await backend.mig.gpuInstances(gpuUuid())).map((i) => `${i.giProfileId}@${i.placement.start}`).sort();
  const claimFor = (devices: string[]) => {
    const ref = newRef(`c-${Math.random().toString(36).slice(2, 8)}`);
    source.put(allocatedClaim(ref, devices.map((device) => ({ device })), { reservedFor: [POD] }));
    return ref;
  };
  const spec = async (uid: string) => JSON.parse(await readFile(join(dir, 'cdi', `k8s.${DRIVER}-claim_${uid}.json`), 'utf8')) as { devices: { containerEdits: { env: string[]; deviceNodes: { path: string }[] } }[] };
  type Claims = Record<string, { state: string; devices: { mig?: unknown; uuid: string }[] }>;
  const checkpoint = async (): Promise<Claims> =>
    readFile(join(dir, 'checkpoint.json'), 'utf8').then((t) => JSON.parse(t).claims as Claims, () => ({}));

  it('prepare creates the instance at exactly the placement; its UUID and caps nodes are in the CDI spec; unprepare destroys it', async () => {
    const s = state();
    await s.store.init();
    const ref = claimFor([SMALL]);
    const answer = (await s.preparer.prepare([ref])).get(ref.uid)!;
    expect(answer.error).toBeUndefined();
    expect(await instances()).toEqual(['19@3']);
    const mig = backend.inventory().gpus[0]!.migDevices[0]!;
    expect(mig.placement).toEqual({ start: 3, size: 1 });
    const doc = await spec(ref.uid);
    const edits = doc.devices[0]!.containerEdits;
    expect(edits.env).toContain(`GPULET_DEVICE_GPU_0_MIG_1G10GB_19_3=${mig.uuid}`);
    const gi = 3 + 135 * 0 + 9 * mig.gpuInstanceId;
    expect(edits.deviceNodes.map((n) => n.path)).toEqual(
      expect.arrayContaining([`/dev/nvidia-caps/nvidia-cap${gi}`, `/dev/nvidia-caps/nvidia-cap${gi + 1 + mig.computeInstanceId}`]),
    );
    const entry = (await checkpoint())[ref.uid]!;
    expect(entry.state).toBe('PrepareCompleted');
    expect(entry.devices[0]).toMatchObject({ uuid: mig.uuid, mig: { gpuUuid: gpuUuid(), giProfileId: 19, start: 3, size: 1, gpuInstanceId: mig.gpuInstanceId } });
    expect([...ownMigDeviceNames(s.store.entries())]).toEqual([SMALL]);
    // telemetry attributes the new MIG device's readings to the claim, under the placement device's name
    expect(s.ownership.owners().get(mig.uuid)?.map((o) => [o.deviceName, o.claim.uid])).toEqual([[SMALL, ref.uid]]);
    expect(changes).toBe(1);
    // prepared again: answered from the record, nothing created
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    expect(await instances()).toEqual(['19@3']);

    expect((await s.preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    expect(await instances()).toEqual([]);
    expect(await checkpoint()).toEqual({});
    expect(changes).toBe(2);
  });

  it('never destroys an instance gpulet did not create; a placement the hardware rules refuse fails cleanly with the rule', async () => {
    const foreign = await backend.mig.createMigDevice(gpuUuid(), { giProfileId: 9, start: 0, size: 4 }); // 3g.40gb at 0:4, an administrator's
    const s = state();
    await s.store.init();
    const refused = claimFor([FOUR]); // 4g.40gb at 0:4 overlaps it
    const answer = (await s.preparer.prepare([refused])).get(refused.uid)!;
    expect(answer.error).toMatch(/memory-slices: .*overlaps/);
    expect(answer.error).toContain(FOUR);
    expect(await checkpoint()).toEqual({});
    expect(await instances()).toEqual(['9@0']);

    const ok = claimFor([HALF]);
    expect((await s.preparer.prepare([ok])).get(ok.uid)?.error).toBeUndefined();
    expect(await instances()).toEqual(['9@0', '9@4']);
    expect([...ownMigDeviceNames(s.store.entries())]).toEqual([HALF]);
    expect((await s.preparer.unprepare([ok])).get(ok.uid)).toEqual({});
    expect(await instances()).toEqual(['9@0']);
    expect(backend.inventory().gpus[0]!.migDevices.map((m) => m.uuid)).toEqual([foreign.uuid]);
  });

  it('an instance that cannot be destroyed (IN_USE) fails the unprepare and keeps the claim; the retry destroys it', async () => {
    const s = state();
    await s.store.init();
    const ref = claimFor([SMALL]);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    const mig = backend.inventory().gpus[0]!.migDevices[0]!;
    backend.mig.setMigBusy(mig.uuid, true);
    expect((await s.preparer.unprepare([ref])).get(ref.uid)?.error).toContain('IN_USE');
    expect(await instances()).toEqual(['19@3']);
    expect(s.store.entries()[ref.uid]).toBeDefined();
    backend.mig.setMigBusy(mig.uuid, false);
    expect((await s.preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    expect(await instances()).toEqual([]);
    expect(await checkpoint()).toEqual({});
  });

  it('the full GPU of a dynamic H100 in MIG mode: prepare turns MIG mode off and writes the full-GPU spec; unprepare turns it on again', async () => {
    const s = state();
    await s.store.init();
    const gpu = backend.inventory().gpus[0]!;
    expect(gpu.migEnabled).toBe(true);
    const ref = claimFor(['gpu-0']);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    // MIG mode off on the GPU itself (the mock's mode, not gpulet's inventory), and the inventory follows
    expect(await backend.mig.migMode(gpu.uuid)).toEqual({ current: false, pending: false });
    expect(backend.inventory().gpus[0]!.migEnabled).toBe(false);
    expect(changes).toBeGreaterThan(0); // the slices and telemetry are told (main: a fresh sample)
    // a sample now reads the full GPU as one (GPU utilization: NVML answers it only outside MIG mode)
    expect((await backend.sample()).devices.find((d) => d.uuid === gpu.uuid)?.gpuUtilizationPercent).toBeTypeOf('number');
    // the normal full-GPU spec: its UUID and /dev/nvidia0, no MIG caps nodes
    const edits = (await spec(ref.uid)).devices[0]!.containerEdits;
    expect(edits.env).toContain(`GPULET_DEVICE_GPU_0=${gpu.uuid}`);
    expect(edits.deviceNodes.map((n) => n.path)).toContain('/dev/nvidia0');
    expect(edits.deviceNodes.some((n) => n.path.includes('nvidia-caps'))).toBe(false);
    const entry = (await checkpoint())[ref.uid]!;
    expect(entry.state).toBe('PrepareCompleted');
    expect(entry.devices[0]).toMatchObject({ deviceName: 'gpu-0', uuid: gpu.uuid, migModeOff: { gpuUuid: gpu.uuid } });
    expect([...migModeOffGpus(s.store.entries())]).toEqual([gpu.uuid]);
    expect(s.ownership.owners().get(gpu.uuid)?.map((o) => [o.deviceName, o.claim.uid])).toEqual([['gpu-0', ref.uid]]);
    // prepared again: answered from the record
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    // a placement on it meanwhile (the counters forbid it; an allocation from a stale slice) fails, nothing made
    const stale = claimFor([SMALL]);
    expect((await s.preparer.prepare([stale])).get(stale.uid)?.error).toMatch(/MIG mode is off/);
    expect(await instances()).toEqual([]);

    expect((await s.preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    expect(await backend.mig.migMode(gpu.uuid)).toEqual({ current: true, pending: true });
    expect(backend.inventory().gpus[0]!.migEnabled).toBe(true);
    expect((await backend.sample()).devices.find((d) => d.uuid === gpu.uuid)?.gpuUtilizationPercent).toBeUndefined();
    expect(await checkpoint()).toEqual({});
    // and the GPU takes placements again
    expect((await s.preparer.prepare([stale])).get(stale.uid)?.error).toBeUndefined();
    expect(await instances()).toEqual(['19@3']);
  });

  it('a full-GPU prepare failing after MIG mode went off (the CDI spec cannot be written) turns MIG mode on again', async () => {
    const s = state();
    await s.store.init();
    await writeFile(join(dir, 'cdi'), 'not a directory'); // the CDI dir is a file: the spec write fails
    const ref = claimFor(['gpu-0']);
    const modes: boolean[] = [];
    const set = backend.mig.setMigMode.bind(backend.mig);
    backend.mig.setMigMode = async (uuid, enabled) => {
      modes.push(enabled);
      return set(uuid, enabled);
    };
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toMatch(/rolled back|cdi/i);
    expect(modes).toEqual([false, true]); // off for the claim, on again by the rollback
    expect(await backend.mig.migMode(gpuUuid())).toEqual({ current: true, pending: true });
    expect(backend.inventory().gpus[0]!.migEnabled).toBe(true);
    expect(await checkpoint()).toEqual({});
  });

  it('the full GPU beside an existing instance is refused with the rule; MIG mode and the instance stay', async () => {
    await backend.mig.createMigDevice(gpuUuid(), { giProfileId: 19, start: 6, size: 1 }); // an administrator's
    const s = state();
    await s.store.init();
    const ref = claimFor(['gpu-0']);
    const error = (await s.preparer.prepare([ref])).get(ref.uid)?.error;
    expect(error).toMatch(/device gpu-0 \(the full GPU .*\) cannot be handed out: whole-gpu: the whole GPU cannot be used beside MIG instance 1g\.10gb/);
    expect(await backend.mig.migMode(gpuUuid())).toMatchObject({ current: true });
    expect(await instances()).toEqual(['19@6']);
    expect(await checkpoint()).toEqual({});
  });

  it('the full GPU of an A100 in MIG mode (leaving it needs a reset) is refused before any MIG call', async () => {
    await backend.shutdown();
    await startBackend('a100-40gb');
    const s = state();
    await s.store.init();
    const ref = claimFor(['gpu-0']);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toMatch(/turning MIG mode off on this Ampere GPU needs a GPU reset/);
    expect(await backend.mig.migMode(gpuUuid())).toEqual({ current: true, pending: true });
    expect(await checkpoint()).toEqual({});
  });

  // What a crash at each step of a full-GPU prepare leaves (the intent; MIG mode off or not yet), then recovery.
  it.each([{ step: 'mig:after-intent', off: false }, { step: 'mig:after-mode-off', off: true }])(
    'crash at $step of a full-GPU prepare: recovery turns MIG mode on again and removes the entry',
    async ({ off }) => {
      const first = state();
      await first.store.init();
      const ref = newRef('crashed-full');
      const uuid = gpuUuid();
      await first.store.locked(() =>
        first.store.commit(ref.uid, {
          ...ref,
          state: 'PrepareMigCreating',
          devices: [{ requestNames: ['gpu'], poolName: NODE, deviceName: 'gpu-0', uuid, cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-gpu-0`], migModeOff: { gpuUuid: uuid } }],
          pods: [],
          configs: [],
        }),
      );
      if (off) await backend.mig.setMigMode(uuid, false);
      const restarted = state();
      const { report } = await initAndReconcile({ store: restarted.store, recovery: restarted.recovery, source, logger: silentLogger() });
      expect(report.rolledBack).toEqual([ref.uid]);
      expect(await backend.mig.migMode(uuid)).toMatchObject({ current: true });
      expect(await checkpoint()).toEqual({});
    },
  );

  it('an instance gpulet made whose checkpoint was lost: the rebuilt claim uses it as a static device, and gpulet never destroys it', async () => {
    const s = state();
    await s.store.init();
    const ref = claimFor([HALF]);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    const made = backend.inventory().gpus[0]!.migDevices[0]!;
    // the checkpoint is lost (deleted); the instance and the claim's spec are still there
    await rm(join(dir, 'checkpoint.json'));
    const lines: { msg: string; device?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const restarted = state(logger);
    const { report } = await initAndReconcile({ store: restarted.store, recovery: restarted.recovery, source, logger: silentLogger() });
    expect(report.rebuilt).toEqual([ref.uid]);
    // the log says whose it is not, and how to free it
    expect(lines.filter((l) => /not recorded as created by gpulet/.test(l.msg)).map((l) => l.device)).toEqual([HALF]);
    // prepared again from the API server's claim, with the instance that is there: its UUID, no ownership
    const entry = (await checkpoint())[ref.uid]!;
    expect(entry.state).toBe('PrepareCompleted');
    expect(entry.devices[0]!.uuid).toBe(made.uuid);
    expect(entry.devices[0]!.mig).toBeUndefined();
    expect([...ownMigDeviceNames(restarted.store.entries())]).toEqual([]);
    expect((await spec(ref.uid)).devices[0]!.containerEdits.env).toContain(`GPULET_DEVICE_GPU_0_MIG_3G40GB_9_4=${made.uuid}`);
    // unprepare: the claim goes, the instance stays (gpulet cannot prove it made it), as every foreign instance
    expect((await restarted.preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    expect(await instances()).toEqual(['9@4']);
    expect(await checkpoint()).toEqual({});
    // and the same again: a new claim allocated that name gets the same instance, still never destroyed
    const again = claimFor([HALF]);
    expect((await restarted.preparer.prepare([again])).get(again.uid)?.error).toBeUndefined();
    expect((await checkpoint())[again.uid]!.devices[0]!.uuid).toBe(made.uuid);
    expect((await restarted.preparer.unprepare([again])).get(again.uid)).toEqual({});
    expect(await instances()).toEqual(['9@4']);
  });

  it('a creation failing half-way (compute instance) fails the claim with NVML\'s code and leaves nothing', async () => {
    const s = state();
    await s.store.init();
    backend.mig.injectFault({ stage: 'compute-instance', code: 'INSUFFICIENT_RESOURCES' });
    const ref = claimFor([SMALL]);
    const answer = (await s.preparer.prepare([ref])).get(ref.uid)!;
    expect(answer.error).toContain('INSUFFICIENT_RESOURCES');
    expect(await instances()).toEqual([]);
    expect(await checkpoint()).toEqual({});
    // the kubelet's retry succeeds
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    expect(await instances()).toEqual(['19@3']);
  });

  it('a half-way failure whose own rollback fails (a GPU instance left without compute instance): gpulet destroys it', async () => {
    const s = state();
    await s.store.init();
    backend.mig.injectFault({ stage: 'compute-instance', code: 'UNKNOWN', rollbackFails: true });
    const ref = claimFor([SMALL]);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toContain('UNKNOWN');
    expect(await instances()).toEqual([]);
    expect(await checkpoint()).toEqual({});
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    expect(await instances()).toEqual(['19@3']);
    expect(backend.inventory().gpus[0]!.migDevices).toHaveLength(1);
  });

  // What a crash at each step leaves (the checkpoint entry, the instance), then a restart's recovery.
  const crashes = [
    { step: 'mig:after-intent', gi: false, ci: false },
    { step: 'mig:after-gpu-instance', gi: true, ci: false },
    { step: 'mig:after-create', gi: true, ci: true },
  ];
  it.each(crashes)('crash at $step: recovery rolls the intent back, the instance is removed, a foreign one stays', async ({ gi, ci }) => {
    await backend.mig.createMigDevice(gpuUuid(), { giProfileId: 19, start: 6, size: 1 }); // foreign
    const first = state();
    await first.store.init();
    const ref = newRef('crashed');
    await first.store.locked(() =>
      first.store.commit(ref.uid, {
        ...ref,
        state: 'PrepareMigCreating',
        devices: [{ requestNames: ['gpu'], poolName: NODE, deviceName: SMALL, uuid: '', cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-${SMALL}`], mig: { gpuUuid: gpuUuid(), giProfileId: 19, start: 3, size: 1 } }],
        pods: [],
        configs: [],
      }),
    );
    if (gi) backend.mig.injectFault(ci ? undefined : { stage: 'compute-instance', code: 'UNKNOWN', rollbackFails: true });
    if (gi) await backend.mig.createMigDevice(gpuUuid(), { giProfileId: 19, start: 3, size: 1 }).catch(() => undefined);
    expect(await instances()).toEqual(gi ? ['19@3', '19@6'] : ['19@6']);

    const restarted = state();
    const { report } = await initAndReconcile({ store: restarted.store, recovery: restarted.recovery, source, logger: silentLogger() });
    expect(report.rolledBack).toEqual([ref.uid]);
    expect(await instances()).toEqual(['19@6']);
    expect(await checkpoint()).toEqual({});
  });

  it('the mock keeps its instances across a restart (state file), as a GPU does', async () => {
    const s = state();
    await s.store.init();
    const ref = claimFor([SMALL]);
    expect((await s.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    const again = createMockBackend({ machine: { gpus: [{ model: 'h100-80gb', mig: [] }] }, nodeName: NODE, migStateFile: join(dir, 'mig.json') });
    await again.init();
    expect(again.inventory().gpus[0]!.migDevices.map((m) => m.uuid)).toEqual(backend.inventory().gpus[0]!.migDevices.map((m) => m.uuid));
    await again.shutdown();
  });
});
