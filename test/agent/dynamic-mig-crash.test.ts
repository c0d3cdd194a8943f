/**
 * Dynamic MIG, kill -9 at every step of a prepare that creates a MIG device and an unprepare that destroys it
 * (src/util/fault-points.ts), then restart: the real CLI as a process (`--mock-machine h100-80gb --mig-mode dynamic
 * --mig-enable`) against an API server that outlives it, a simulated kubelet that retries on the restarted agent.
 * The mock GPU keeps its MIG instances across the agent's death in the state dir (`mock-mig-state.json`), as a real
 * GPU does; the test reads that file itself to see which instances exist. Proves, per fault point:
 * - the crash happened at that step (checkpoint entry, spec file and instance on the "GPU" right after the kill);
 * - after the restart, before any retry: the checkpoint and specs are consistent (test/helpers/crash-harness.ts
 *   `assertConsistent`) and every instance on the GPU is one a PrepareCompleted claim records, or the foreign one:
 *   none leaked, the foreign one never destroyed;
 * - the kubelet's retries then succeed, and at the end only the foreign instance is left.
 * And the same for the full GPU `gpu-0` of the dynamic H100, which prepare hands out by turning MIG mode off for the
 * claim and unprepare by turning it on again: after a kill -9 at each step and a restart, the claim is either
 * prepared with MIG mode off (its full GPU still published as a dynamic GPU's, consuming the counter set; not
 * switched back by `--mig-enable`) or rolled back with MIG mode on; never MIG mode off with no claim.
 * After a lost checkpoint such a claim is prepared again on the full GPU, whose MIG mode `--mig-enable` leaves off
 * while the claim holds it. And an A100 in MIG mode: its full GPU is not published (leaving MIG mode needs a
 * reset), with a log line.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import type { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import type { ClaimRef } from '../../src/model/types.js';
import { tempDir } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';
import {
  allocateClaim, assertConsistent, bootIdFile, expectedCdiIds, killGroup, kubeletFor, NODE, specUids, spawnAgent, stopAgent, verifiedCheckpoint,
  type AgentRun,
} from '../helpers/crash-harness.js';

const ENV = { GPULET_MOCK_MACHINE: 'h100-80gb', GPULET_MIG_MODE: 'dynamic', GPULET_MIG_ENABLE: 'true' };
/** The administrator's instance: 1g.10gb at memory slice 6, made before gpulet ever ran. */
const FOREIGN = { profile: '1g.10gb', placementStart: 6, computeInstance: true };

let server: EmbeddedApiServer;
const dirs: string[] = [];
const runs: AgentRun[] = [];
const kubelets: KubeletSimulator[] = [];

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
});
afterAll(async () => {
  for (const k of kubelets.splice(0)) await k.stop();
  for (const r of runs.splice(0)) killGroup(r);
  await server.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

interface MockInstance {
  readonly profile: string;
  readonly placementStart: number;
  readonly computeInstance: boolean;
}
/** The mock GPU's instances, read from its state file (the GPU's view, not gpulet's). */
async function gpuInstances(dir: string): Promise<MockInstance[]> {
  const doc = JSON.parse(await readFile(join(dir, 'mock-mig-state.json'), 'utf8')) as { gpus: Record<string, { instances: MockInstance[] }> };
  return Object.values(doc.gpus).flatMap((g) => g.instances);
}
const label = (i: MockInstance): string => `${i.profile}@${i.placementStart}${i.computeInstance ? '' : ' (no CI)'}`;

async function start(dir: string, faultPoint?: string): Promise<{ run: AgentRun; kubelet: KubeletSimulator }> {
  const run = await spawnAgent({ dir, server, env: ENV, ...(faultPoint !== undefined ? { faultPoint } : {}) });
  runs.push(run);
  const kubelet = await kubeletFor(dir);
  kubelets.push(kubelet);
  return { run, kubelet };
}

async function expectKilled(call: Promise<unknown>, run: AgentRun, kubelet: KubeletSimulator): Promise<void> {
  await expect(call).rejects.toThrow();
  await run.exited;
  killGroup(run);
  await kubelet.stop();
  expect(run.stderr()).not.toContain('shutting down');
}

/**
 * Each step's claim gets its own 1g.10gb placement (0..5), so the instances tell the claims apart. Start-up
 * recovery runs the unprepare steps (fault points included) on what the previous crash left, so a point comes
 * after the crashes whose recovery would fire it: `unprepare:after-mig-destroyed` last (the clean run recovers it).
 */
const chain: { point: string; op: 'prepare' | 'unprepare'; start: number; entry: string | undefined; spec: boolean; instance: string | undefined }[] = [
  { point: 'mig:after-intent', op: 'prepare', start: 0, entry: 'PrepareMigCreating', spec: false, instance: undefined },
  { point: 'mig:after-gpu-instance', op: 'prepare', start: 1, entry: 'PrepareMigCreating', spec: false, instance: '1g.10gb@1 (no CI)' },
  { point: 'mig:after-create', op: 'prepare', start: 2, entry: 'PrepareMigCreating', spec: false, instance: '1g.10gb@2' },
  { point: 'prepare:after-started', op: 'prepare', start: 3, entry: 'PrepareStarted', spec: false, instance: '1g.10gb@3' },
  { point: 'prepare:after-cdi', op: 'prepare', start: 4, entry: 'PrepareStarted', spec: true, instance: '1g.10gb@4' },
  { point: 'prepare:after-completed', op: 'prepare', start: 5, entry: 'PrepareCompleted', spec: true, instance: '1g.10gb@5' },
  { point: 'unprepare:after-cdi-removed', op: 'unprepare', start: 0, entry: 'PrepareCompleted', spec: false, instance: '1g.10gb@0' },
  { point: 'unprepare:after-checkpoint', op: 'unprepare', start: 2, entry: undefined, spec: false, instance: undefined },
  { point: 'unprepare:after-mig-destroyed', op: 'unprepare', start: 1, entry: 'UnprepareStarted', spec: false, instance: undefined },
];
const deviceAt = (start: number): string => `gpu-0-mig-1g10gb-19-${start}`;

interface SliceDevice {
  readonly name: string;
  readonly attributes?: Record<string, { string?: string }>;
  readonly consumesCounters?: unknown[];
}
/** The node's published devices by name, as the API server holds them. */
function publishedDevices(server: EmbeddedApiServer): Map<string, SliceDevice> {
  const slices = server.list('resource.k8s.io/v1', 'ResourceSlice') as unknown as { spec: { nodeName?: string; devices?: SliceDevice[] } }[];
  return new Map(slices.filter((s) => s.spec.nodeName === NODE).flatMap((s) => s.spec.devices ?? []).map((d) => [d.name, d]));
}
/**
 * Wait until the slices publish the placements gpulet's claims hold as placement devices (consuming counters, no
 * uuid) and the foreign instance as the static device it is (its uuid, no counters).
 */
async function expectPublished(server: EmbeddedApiServer, own: readonly number[]): Promise<void> {
  await waitFor(() => {
    const devices = publishedDevices(server);
    const foreign = devices.get(deviceAt(FOREIGN.placementStart));
    if (foreign?.attributes?.['uuid']?.string?.startsWith('MIG-') !== true || foreign.consumesCounters !== undefined) return false;
    return own.every((s) => {
      const d = devices.get(deviceAt(s));
      return d !== undefined && d.attributes?.['uuid'] === undefined && (d.consumesCounters?.length ?? 0) > 0;
    });
  }, { what: `slices with own placements ${own.join(',')} consuming counters and the foreign instance static` });
}

describe('dynamic MIG: kill -9 at every step of creating and destroying a MIG device, then restart', () => {
  let dir: string;
  const claims = new Map<string, ClaimRef>();
  /** Claims that must be PrepareCompleted after the next restart, by uid → their instance. */
  const completed = new Map<string, string>();
  beforeAll(async () => {
    dir = await tempDir('gpulet-migcrash-');
    dirs.push(dir);
    await writeFile(bootIdFile(dir), `${randomUUID()}\n`);
  });

  /** After a restart: consistent state, and the GPU holds exactly the completed claims' instances and the foreign one. */
  async function expectNoLeak(): Promise<void> {
    expect(Object.keys(await assertConsistent(dir)).sort()).toEqual([...completed.keys()].sort());
    expect((await gpuInstances(dir)).map(label).sort()).toEqual([label(FOREIGN), ...completed.values()].sort());
  }

  it('the first start turns MIG mode on (--mig-enable; H100: no reset) and keeps the foreign instance', async () => {
    // The GPU as an administrator left it: MIG mode on, one instance gpulet did not create.
    const first = await start(dir);
    await first.kubelet.stop();
    expect(await stopAgent(first.run)).toBe(0);
    const file = join(dir, 'mock-mig-state.json');
    const doc = JSON.parse(await readFile(file, 'utf8')) as { gpus: Record<string, { migEnabled: boolean; instances: MockInstance[] }> };
    expect(Object.values(doc.gpus).map((g) => g.migEnabled)).toEqual([true]);
    for (const g of Object.values(doc.gpus)) g.instances.push(FOREIGN);
    await writeFile(file, JSON.stringify(doc));
  });

  it.each(chain)('$point: the restart reconciles the previous crash (no leak), then the agent dies at this step', async (step) => {
    const { run, kubelet } = await start(dir, step.point);
    await expectNoLeak();
    let ref: ClaimRef;
    if (step.op === 'unprepare') {
      ref = allocateClaim(server, `mig-${step.point.replace(/[^a-z]/g, '-')}`, [deviceAt(step.start)]);
      const prepared = await kubelet.prepare([ref]);
      expect(prepared.claims[ref.uid]?.error).toBe('');
      await expectKilled(kubelet.unprepare([ref]), run, kubelet);
    } else {
      ref = allocateClaim(server, `mig-${step.point.replace(/[^a-z]/g, '-')}`, [deviceAt(step.start)]);
      await expectKilled(kubelet.prepare([ref]), run, kubelet);
    }
    claims.set(step.point, ref);
    const cp = await verifiedCheckpoint(dir);
    expect(cp?.claims[ref.uid]?.state, `${step.point}: checkpoint entry`).toBe(step.entry);
    expect((await specUids(dir)).includes(ref.uid), `${step.point}: spec file`).toBe(step.spec);
    const mine = (await gpuInstances(dir)).filter((i) => i.placementStart === step.start).map(label);
    expect(mine, `${step.point}: instance on the GPU`).toEqual(step.instance === undefined ? [] : [step.instance]);
    if (step.entry === 'PrepareCompleted') completed.set(ref.uid, step.instance ?? '');
  });

  it('after the last restart the retries succeed, and at the end only the foreign instance is left', async () => {
    let { run, kubelet } = await start(dir);
    await expectNoLeak();
    const unprepares = chain.filter((c) => c.op === 'unprepare').map((c) => claims.get(c.point)!);
    const unanswer = await kubelet.unprepare(unprepares);
    for (const ref of unprepares) expect(unanswer.claims[ref.uid]?.error, ref.name).toBe('');
    completed.clear();
    const prepares = chain.filter((c) => c.op === 'prepare').map((c) => claims.get(c.point)!);
    const answer = await kubelet.prepare(prepares);
    for (const [i, ref] of prepares.entries()) {
      expect(answer.claims[ref.uid]?.error, ref.name).toBe('');
      expect(answer.claims[ref.uid]?.devices.flatMap((d) => d.cdi_device_ids)).toEqual(expectedCdiIds(ref, [deviceAt(chain[i]!.start)]));
    }
    expect((await gpuInstances(dir)).map(label).sort()).toEqual([label(FOREIGN), ...chain.filter((c) => c.op === 'prepare').map((c) => `1g.10gb@${c.start}`)].sort());
    // gpulet's instances stay placement devices consuming their counters (the allocations account for them);
    // the foreign one is published as the static device it is — also from a fresh start (the names of gpulet's
    // instances come from the checkpoint): stop, delete the slices, start again, and read what it publishes.
    await expectPublished(server, chain.filter((c) => c.op === 'prepare').map((c) => c.start));
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
    for (const o of server.list('resource.k8s.io/v1', 'ResourceSlice')) server.delete('resource.k8s.io/v1', 'ResourceSlice', undefined, o.metadata?.name ?? '');
    expect(publishedDevices(server).size).toBe(0);
    ({ run, kubelet } = await start(dir));
    await expectPublished(server, chain.filter((c) => c.op === 'prepare').map((c) => c.start));
    const released = await kubelet.unprepare(prepares);
    for (const ref of prepares) expect(released.claims[ref.uid]?.error, ref.name).toBe('');
    expect((await gpuInstances(dir)).map(label)).toEqual([label(FOREIGN)]);
    expect(await assertConsistent(dir)).toEqual({});
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
  });
});

/** The mock GPU's MIG mode, read from its state file. */
async function migModes(dir: string): Promise<{ migEnabled: boolean; pendingMigEnabled: boolean }[]> {
  const doc = JSON.parse(await readFile(join(dir, 'mock-mig-state.json'), 'utf8')) as { gpus: Record<string, { migEnabled: boolean; pendingMigEnabled: boolean }> };
  return Object.values(doc.gpus).map((g) => ({ migEnabled: g.migEnabled, pendingMigEnabled: g.pendingMigEnabled }));
}

describe('dynamic MIG: kill -9 at every step of handing out a full GPU in MIG mode (MIG mode off, then on again), then restart', () => {
  /** After the kill: the entry, spec and MIG mode at that step; after the restart: prepared (MIG off) or not (MIG on). */
  const steps: { point: string; op: 'prepare' | 'unprepare'; entry: string | undefined; spec: boolean; migOn: boolean; prepared: boolean }[] = [
    { point: 'mig:after-intent', op: 'prepare', entry: 'PrepareMigCreating', spec: false, migOn: true, prepared: false },
    { point: 'mig:after-mode-off', op: 'prepare', entry: 'PrepareMigCreating', spec: false, migOn: false, prepared: false },
    { point: 'prepare:after-started', op: 'prepare', entry: 'PrepareStarted', spec: false, migOn: false, prepared: false },
    { point: 'prepare:after-cdi', op: 'prepare', entry: 'PrepareStarted', spec: true, migOn: false, prepared: false },
    { point: 'prepare:after-completed', op: 'prepare', entry: 'PrepareCompleted', spec: true, migOn: false, prepared: true },
    { point: 'unprepare:after-cdi-removed', op: 'unprepare', entry: 'PrepareCompleted', spec: false, migOn: false, prepared: true },
    { point: 'unprepare:after-mig-destroyed', op: 'unprepare', entry: 'UnprepareStarted', spec: false, migOn: true, prepared: false },
    { point: 'unprepare:after-checkpoint', op: 'unprepare', entry: undefined, spec: false, migOn: true, prepared: false },
  ];
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('gpulet-migfull-');
    dirs.push(dir);
    await writeFile(bootIdFile(dir), `${randomUUID()}\n`);
  });

  it.each(steps)('$point: after the restart the claim is prepared with MIG mode off, or rolled back with MIG mode on', async (step) => {
    let { run, kubelet } = await start(dir, step.point);
    expect(await migModes(dir)).toEqual([{ migEnabled: true, pendingMigEnabled: true }]);
    const ref = allocateClaim(server, `full-${step.point.replace(/[^a-z]/g, '-')}`, ['gpu-0']);
    if (step.op === 'unprepare') {
      expect((await kubelet.prepare([ref])).claims[ref.uid]?.error).toBe('');
      expect(await migModes(dir)).toEqual([{ migEnabled: false, pendingMigEnabled: false }]);
      await expectKilled(kubelet.unprepare([ref]), run, kubelet);
    } else {
      await expectKilled(kubelet.prepare([ref]), run, kubelet);
    }
    // the crash happened at this step
    expect((await verifiedCheckpoint(dir))?.claims[ref.uid]?.state, `${step.point}: checkpoint entry`).toBe(step.entry);
    expect((await specUids(dir)).includes(ref.uid), `${step.point}: spec file`).toBe(step.spec);
    expect((await migModes(dir))[0]?.migEnabled, `${step.point}: MIG mode on the GPU`).toBe(step.migOn);

    // restart (with --mig-enable, as every start here): prepared with MIG mode off, or nothing and MIG mode on;
    // the slices deleted first, so what is read below is what the restarted agent publishes
    for (const o of server.list('resource.k8s.io/v1', 'ResourceSlice')) server.delete('resource.k8s.io/v1', 'ResourceSlice', undefined, o.metadata?.name ?? '');
    ({ run, kubelet } = await start(dir));
    const claims = await assertConsistent(dir);
    expect(Object.keys(claims), `${step.point}: prepared after the restart`).toEqual(step.prepared ? [ref.uid] : []);
    expect((await migModes(dir))[0]?.migEnabled, `${step.point}: MIG mode after the restart`).toBe(!step.prepared);
    expect(await gpuInstances(dir)).toEqual([]);
    if (step.prepared) {
      // still published as the dynamic GPU it is: the full GPU consuming the counter set, the placements beside it
      await waitFor(() => {
        const devices = publishedDevices(server);
        return (devices.get('gpu-0')?.consumesCounters?.length ?? 0) > 0 && devices.has(deviceAt(0));
      }, { what: 'gpu-0 published consuming the counter set while MIG mode is off for its claim' });
    }
    // the kubelet's retry of the interrupted call succeeds; then the claim goes, and MIG mode is on again
    if (step.op === 'prepare') {
      const answer = await kubelet.prepare([ref]);
      expect(answer.claims[ref.uid]?.error).toBe('');
      expect(answer.claims[ref.uid]?.devices.flatMap((d) => d.cdi_device_ids)).toEqual(expectedCdiIds(ref, ['gpu-0']));
      expect((await migModes(dir))[0]?.migEnabled).toBe(false);
    }
    expect((await kubelet.unprepare([ref])).claims[ref.uid]?.error).toBe('');
    expect(await migModes(dir)).toEqual([{ migEnabled: true, pendingMigEnabled: true }]);
    expect(await assertConsistent(dir)).toEqual({});
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
  });
});

describe('dynamic MIG: a full GPU handed out with MIG mode off, then the checkpoint lost', () => {
  it('the rebuild prepares the claim again on the full GPU, and --mig-enable leaves its MIG mode off while the claim holds it', async () => {
    const dir = await tempDir('gpulet-migfull-lost-');
    dirs.push(dir);
    await writeFile(bootIdFile(dir), `${randomUUID()}\n`);
    // the rebuild lists every claim of the API server: only this one may name this node's pool
    for (const o of server.list('resource.k8s.io/v1', 'ResourceClaim')) server.delete('resource.k8s.io/v1', 'ResourceClaim', o.metadata?.namespace, o.metadata?.name ?? '');
    let { run, kubelet } = await start(dir);
    const ref = allocateClaim(server, 'full-lost', ['gpu-0']);
    expect((await kubelet.prepare([ref])).claims[ref.uid]?.error).toBe('');
    expect((await migModes(dir))[0]?.migEnabled).toBe(false);
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
    await rm(join(dir, 'checkpoint.json')); // lost: the spec and the GPU's MIG mode are still there

    ({ run, kubelet } = await start(dir)); // --mig-enable, as every start here
    const claims = await assertConsistent(dir);
    expect(Object.keys(claims)).toEqual([ref.uid]); // rebuilt from the API server
    const device = claims[ref.uid]!.devices[0] as { deviceName: string; migModeOff?: unknown };
    expect(device.deviceName).toBe('gpu-0');
    expect(device.migModeOff).toBeUndefined(); // nothing proves gpulet turned MIG mode off: not recorded as its change
    expect((await migModes(dir))[0]?.migEnabled, 'MIG mode still off under the claim').toBe(false);
    // unprepare does not switch a mode it cannot prove it changed; the next start's --mig-enable does
    expect((await kubelet.unprepare([ref])).claims[ref.uid]?.error).toBe('');
    expect((await migModes(dir))[0]?.migEnabled).toBe(false);
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
    ({ run, kubelet } = await start(dir));
    expect((await migModes(dir))[0]?.migEnabled).toBe(true);
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
  });
});

describe('--mig-enable on an A100 (MIG mode pending until a GPU reset)', () => {
  it('says the GPU needs a reset and keeps publishing it as a full GPU, not nothing', async () => {
    const dir = await tempDir('gpulet-migenable-');
    dirs.push(dir);
    await writeFile(bootIdFile(dir), `${randomUUID()}\n`);
    const run = await spawnAgent({ dir, server, env: { ...ENV, GPULET_MOCK_MACHINE: 'a100-40gb' } });
    runs.push(run);
    expect(run.stderr()).toMatch(/MIG mode is pending until a GPU reset/);
    const doc = JSON.parse(await readFile(join(dir, 'mock-mig-state.json'), 'utf8')) as { gpus: Record<string, { migEnabled: boolean; pendingMigEnabled: boolean }> };
    expect(Object.values(doc.gpus)).toEqual([{ migEnabled: false, pendingMigEnabled: true, instances: [] }]);
    const kubelet = await kubeletFor(dir);
    kubelets.push(kubelet);
    await waitFor(() => {
      const devices = publishedDevices(server);
      const gpu = devices.get('gpu-0');
      // the full GPU, static (no counters), and no placement device
      return gpu !== undefined && gpu.consumesCounters === undefined && gpu.attributes?.['productName']?.string?.includes('A100') === true &&
        ![...devices.keys()].some((n) => n.startsWith('gpu-0-mig-'));
    }, { what: 'the A100 published as a full GPU' });
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);

    // A reset applied the pending mode: in MIG mode now, the A100's full GPU is not published (leaving MIG mode
    // would need a reset again, so prepare could not hand it out), and the log says so; its placements are.
    const file = join(dir, 'mock-mig-state.json');
    const reset = JSON.parse(await readFile(file, 'utf8')) as { gpus: Record<string, { migEnabled: boolean }> };
    for (const g of Object.values(reset.gpus)) g.migEnabled = true;
    await writeFile(file, JSON.stringify(reset));
    const again = await spawnAgent({ dir, server, env: { ...ENV, GPULET_MOCK_MACHINE: 'a100-40gb' } });
    runs.push(again);
    expect(again.stderr()).toMatch(/not publishing the full GPU gpu-0: leaving MIG mode needs a GPU reset on this Ampere GPU/);
    await waitFor(() => {
      const devices = publishedDevices(server);
      return !devices.has('gpu-0') && (devices.get('gpu-0-mig-7g40gb-0-0')?.consumesCounters?.length ?? 0) > 0;
    }, { what: 'the A100 in MIG mode published with its placements and without its full GPU' });
    expect(await stopAgent(again)).toBe(0);
  });
});
