/**
 * Corrupt checkpoint with the real CLI against an API server that outlives it. A node prepared claims, then
 * its checkpoint is damaged (truncated, checksum not matching the content, unknown apiVersion) and its
 * CDI specs lost. On restart the agent must: start (no crash), report the problem in its log naming the
 * file and the reason, move the file aside (kept for forensics), and rebuild from the API server every
 * claim allocated to this node's pool and reserved by a pod (spec back, entry PrepareCompleted), ignoring
 * claims of other pools and claims no pod holds; then serve the kubelet from the rebuilt state.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import type { ClaimRef } from '../../src/model/types.js';
import { claimGets, DRIVER, tempDir } from '../helpers/agent.js';
import {
  allocateClaim, assertConsistent, bootIdFile, cdiDir, checkpointPath, expectedCdiIds, killGroup, kubeletFor, NODE, SPEC_PREFIX,
  spawnAgent, specUids, stopAgent, type AgentRun,
} from '../helpers/crash-harness.js';

let server: EmbeddedApiServer;
let dir: string;
const runs: AgentRun[] = [];
let held: ClaimRef;
let idle: ClaimRef;
let heldSpec: string;
let goodCheckpoint: string;

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await tempDir('gpulet-corrupt-');
  await writeFile(bootIdFile(dir), 'boot-1\n');
  held = allocateClaim(server, 'held', ['gpu-0', 'gpu-6-mig-3g40gb-9-0']);
  idle = allocateClaim(server, 'idle', ['gpu-1']);
  // Another node's claim, reserved by a pod there: never ours to prepare.
  const other = server.create({ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name: 'other-node', namespace: 'default' }, spec: { devices: { requests: [] } } });
  server.updateStatus({
    ...other,
    status: {
      allocation: { devices: { results: [{ request: 'gpus', driver: DRIVER, pool: 'another-node', device: 'gpu-2' }] } },
      reservedFor: [{ resource: 'pods', name: 'p', uid: 'a1b2' }],
    },
  });

  const run = await spawnAgent({ dir, server });
  runs.push(run);
  const kubelet = await kubeletFor(dir);
  const out = await kubelet.prepare([held, idle]);
  expect(Object.values(out.claims).map((c) => c.error)).toEqual(['', '']);
  await kubelet.stop();
  expect(await stopAgent(run)).toBe(0);
  heldSpec = await readFile(join(cdiDir(dir), `${SPEC_PREFIX}${held.uid}.json`), 'utf8');
  goodCheckpoint = await readFile(checkpointPath(dir), 'utf8');
  // No pod holds `idle` any more (its pod is gone; the kubelet's unprepare was lost with the checkpoint).
  const idleObj = server.get('resource.k8s.io/v1', 'ResourceClaim', 'default', 'idle')!;
  server.updateStatus({ ...idleObj, status: { ...(idleObj['status'] as object), reservedFor: [] } });
});
afterAll(async () => {
  for (const r of runs) killGroup(r);
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const damages: [string, (text: string) => string, RegExp][] = [
  ['truncated', (t) => t.slice(0, Math.floor(t.length / 3)), /not valid JSON/],
  ['wrong checksum', (t) => t.replace(/"checksum": "[0-9a-f]{8}/, '"checksum": "00000000'), /checksum mismatch/],
  ['unknown apiVersion', (t) => t.replace('"gpulet.dev/v1"', '"gpulet.dev/v2"'), /unknown apiVersion/],
];

describe('corrupt checkpoint', () => {
  it.each(damages)('%s: starts, reports, moves it aside, rebuilds from the API server', async (_name, damage, reason) => {
    const damaged = damage(goodCheckpoint);
    expect(damaged).not.toBe(goodCheckpoint);
    for (const n of await readdir(dir)) if (n.includes('.corrupt-')) await rm(join(dir, n));
    await writeFile(checkpointPath(dir), damaged);
    // The specs are gone as well (e.g. the checkpoint was damaged by the same crash that ended a boot).
    await rm(cdiDir(dir), { recursive: true, force: true });

    server.clearRequests();
    const run = await spawnAgent({ dir, server });
    runs.push(run);
    const report = run.stderr().split('\n').find((l) => l.includes('checkpoint unusable'));
    expect(report, run.stderr()).toBeDefined();
    expect(report).toMatch(reason);
    expect(report).toContain(checkpointPath(dir));
    const aside = (await readdir(dir)).filter((n) => n.startsWith('checkpoint.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(dir, aside[0]!), 'utf8')).toBe(damaged);
    expect(server.requests.some((r) => r.method === 'GET' && r.path === '/apis/resource.k8s.io/v1/resourceclaims')).toBe(true);

    // Rebuilt before the kubelet could call: only the claim a pod of this node holds.
    expect(Object.keys(await assertConsistent(dir))).toEqual([held.uid]);
    expect(await specUids(dir)).toEqual([held.uid]);
    expect(await readFile(join(cdiDir(dir), `${SPEC_PREFIX}${held.uid}.json`), 'utf8')).toBe(heldSpec);

    const kubelet = await kubeletFor(dir);
    server.clearRequests();
    const out = await kubelet.prepare([held]);
    expect(out.claims[held.uid]?.error).toBe('');
    expect(out.claims[held.uid]?.devices.flatMap((d) => d.cdi_device_ids).sort()).toEqual(expectedCdiIds(held, ['gpu-0', 'gpu-6-mig-3g40gb-9-0']).sort());
    expect(claimGets(server.requests, held)).toHaveLength(0); // served from the rebuilt checkpoint
    await kubelet.stop();
    expect(await stopAgent(run)).toBe(0);
    expect(Object.keys(await assertConsistent(dir))).toEqual([held.uid]);
  });
});
