/**
 * kill -9 at every step of Prepare and Unprepare (src/util/fault-points.ts), then restart: the real CLI as
 * a process against an API server that outlives it, a simulated kubelet whose call dies with the agent and
 * which retries on the restarted one. Proves, per fault point:
 * - the crash happened where the point says (the state on disk right after the kill);
 * - after the restart, before any retry: the checkpoint verifies (sha256 recomputed here), no PrepareStarted
 *   entry is left, spec files = PrepareCompleted entries (no orphan, none missing), no temp file;
 * - the kubelet's retry succeeds with the expected CDI device IDs, each claim is recorded once, and a claim
 *   that was already PrepareCompleted is not prepared again (no second GET of it).
 * One agent process per fault point (each one's start is the restart after the previous crash) and one
 * last clean agent, run sequentially on one state dir.
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import type { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import type { ClaimRef } from '../../src/model/types.js';
import { claimGets, tempDir } from '../helpers/agent.js';
import {
  allocateClaim, assertConsistent, bootIdFile, expectedCdiIds, killGroup, kubeletFor, NODE, specUids, spawnAgent, stopAgent,
  tempFiles, verifiedCheckpoint, type AgentRun,
} from '../helpers/crash-harness.js';

const DEVICES = ['gpu-0', 'gpu-6-mig-3g40gb-9-0'];

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

async function freshDir(): Promise<string> {
  const dir = await tempDir('gpulet-crash-');
  dirs.push(dir);
  await writeFile(bootIdFile(dir), `${randomUUID()}\n`);
  return dir;
}

async function start(dir: string, faultPoint?: string): Promise<{ run: AgentRun; kubelet: KubeletSimulator }> {
  const run = await spawnAgent({ dir, server, ...(faultPoint !== undefined ? { faultPoint } : {}) });
  runs.push(run);
  const kubelet = await kubeletFor(dir);
  kubelets.push(kubelet);
  return { run, kubelet };
}

/** The call dies with the agent (the connection drops: a gRPC error, no answer); the agent was SIGKILLed. */
async function expectKilled(call: Promise<unknown>, run: AgentRun, kubelet: KubeletSimulator): Promise<void> {
  await expect(call).rejects.toThrow();
  await run.exited;
  killGroup(run); // tsx as well, should it linger
  await kubelet.stop();
  expect(run.stderr()).not.toContain('shutting down'); // no shutdown code ran
}

/** State of the crashed claim on disk right after each kill, before any restart: the point fired at its step. */
const crashState: Record<string, { entry: string | undefined; spec: boolean; temp?: boolean }> = {
  'prepare:after-get': { entry: undefined, spec: false },
  'prepare:after-started': { entry: 'PrepareStarted', spec: false },
  'prepare:after-cdi': { entry: 'PrepareStarted', spec: true },
  'prepare:after-completed': { entry: 'PrepareCompleted', spec: true },
  'unprepare:after-cdi-removed': { entry: 'PrepareCompleted', spec: false },
  'unprepare:after-checkpoint': { entry: undefined, spec: false },
  'atomic:before-rename': { entry: undefined, spec: false, temp: true },
};

async function expectCrashState(dir: string, uid: string, point: string): Promise<void> {
  const want = crashState[point]!;
  const cp = await verifiedCheckpoint(dir); // even a kill mid-write leaves a checkpoint that verifies
  expect(cp?.claims[uid]?.state, `${point}: checkpoint entry`).toBe(want.entry);
  expect((await specUids(dir)).includes(uid), `${point}: spec file`).toBe(want.spec);
  if (want.temp === true) expect((await tempFiles(dir)).length, `${point}: temp file`).toBeGreaterThan(0);
}

/**
 * One node (one state dir) through a chain of crashes: agent k runs with fault point k armed, so its start
 * is also the restart after crash k-1 (checked consistent before it serves), then it crashes on claim k.
 * A last agent without a fault point serves the kubelet's retries of every claim. The atomic write point
 * comes last: it fires on the first atomic write, which must be the prepare's, not a start-up write.
 */
const chain: { point: string; op: 'prepare' | 'unprepare' }[] = [
  { point: 'prepare:after-get', op: 'prepare' },
  { point: 'prepare:after-started', op: 'prepare' },
  { point: 'prepare:after-cdi', op: 'prepare' },
  { point: 'prepare:after-completed', op: 'prepare' },
  { point: 'unprepare:after-cdi-removed', op: 'unprepare' },
  { point: 'unprepare:after-checkpoint', op: 'unprepare' },
  { point: 'atomic:before-rename', op: 'prepare' },
];

describe('kill -9 at every step of Prepare and Unprepare, then restart', () => {
  let dir: string;
  const claims = new Map<string, ClaimRef>();
  /** Claims that must be PrepareCompleted (with their spec) after the next restart. */
  const completed = new Set<string>();
  beforeAll(async () => {
    dir = await freshDir();
  });

  it.each(chain)('$point: the restart reconciles the previous crash, then the agent dies at this step', async ({ point, op }) => {
    const { run, kubelet } = await start(dir, point);
    expect(Object.keys(await assertConsistent(dir)).sort()).toEqual([...completed].sort());

    const ref = allocateClaim(server, `crash-${point.replace(/[^a-z]/g, '-')}`, DEVICES);
    claims.set(point, ref);
    if (op === 'unprepare') {
      const prepared = await kubelet.prepare([ref]);
      expect(prepared.claims[ref.uid]?.error).toBe('');
      await expectKilled(kubelet.unprepare([ref]), run, kubelet);
    } else {
      await expectKilled(kubelet.prepare([ref]), run, kubelet);
    }
    await expectCrashState(dir, ref.uid, point);
    if (crashState[point]!.entry === 'PrepareCompleted') completed.add(ref.uid); // PrepareStarted is rolled back
  });

  it('after the last restart every retry succeeds: same CDI IDs, nothing prepared twice, nothing orphaned', async () => {
    server.clearRequests();
    const { run, kubelet } = await start(dir);
    expect(Object.keys(await assertConsistent(dir)).sort()).toEqual([...completed].sort());

    const prepares = chain.filter((c) => c.op === 'prepare').map((c) => claims.get(c.point)!);
    const answer = await kubelet.prepare(prepares);
    for (const ref of prepares) {
      expect(answer.claims[ref.uid]?.error, ref.name).toBe('');
      expect(answer.claims[ref.uid]?.devices.flatMap((d) => d.cdi_device_ids).sort()).toEqual(expectedCdiIds(ref, DEVICES).sort());
      // A claim recorded PrepareCompleted before the crash is answered from the checkpoint: no second prepare.
      expect(claimGets(server.requests, ref), ref.name).toHaveLength(completed.has(ref.uid) ? 0 : 1);
    }
    const unprepares = chain.filter((c) => c.op === 'unprepare').map((c) => claims.get(c.point)!);
    const unanswer = await kubelet.unprepare(unprepares);
    for (const ref of unprepares) expect(unanswer.claims[ref.uid]?.error, ref.name).toBe('');

    const after = await assertConsistent(dir);
    expect(Object.keys(after).sort()).toEqual(prepares.map((r) => r.uid).sort()); // each recorded once
    // A second retry is idempotent: same IDs, no new lookup.
    server.clearRequests();
    const again = await kubelet.prepare(prepares);
    for (const ref of prepares) {
      expect(again.claims[ref.uid]?.devices.flatMap((d) => d.cdi_device_ids).sort()).toEqual(expectedCdiIds(ref, DEVICES).sort());
    }
    // (No lookup: the claim status writer's PATCHes of .../status from the first retry, asynchronous, may land
    // here; they are writes, not lookups, and src/dra/claim-status/ makes none for a claim it already wrote.)
    expect(server.requests.filter((r) => r.method === 'GET' && r.path.includes('/resourceclaims/'))).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.includes('corrupt'))).toEqual([]); // the checkpoint was never unusable
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
  });
});
