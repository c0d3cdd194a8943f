/**
 * Reboot simulation with the real CLI against an API server that outlives it: prepare claims through a
 * simulated kubelet, stop the agent, empty the CDI dir (a tmpfs `/var/run/cdi` after a reboot, docs/contracts.md
 * §6) and change the boot ID (`GPULET_BOOT_ID_FILE`, the test hook of the boot ID source), change the
 * API server's claims as the cluster would have meanwhile, restart. Proves: the spec of a live claim is
 * back byte for byte before the kubelet calls; claims deleted, re-created (new UID) or no longer reserved
 * were dropped; the checkpoint verifies and records the new boot ID; the kubelet's prepare of the live claim
 * is answered from the checkpoint with the same CDI IDs.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { claimGets, tempDir } from '../helpers/agent.js';
import {
  allocateClaim, assertConsistent, bootIdFile, cdiDir, expectedCdiIds, killGroup, kubeletFor, NODE, SPEC_PREFIX, spawnAgent, specUids,
  stopAgent, verifiedCheckpoint, type AgentRun,
} from '../helpers/crash-harness.js';

let server: EmbeddedApiServer;
let dir: string;
const runs: AgentRun[] = [];

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await tempDir('gpulet-reboot-');
});
afterAll(async () => {
  for (const r of runs) killGroup(r);
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('reboot: CDI dir emptied, boot ID changed', () => {
  it('specs come back for live claims; claims gone from the API server are dropped', async () => {
    await writeFile(bootIdFile(dir), 'boot-before\n');
    const live = allocateClaim(server, 'live', ['gpu-0', 'gpu-7-mig-1g10gb-19-2']);
    const gone = allocateClaim(server, 'gone', ['gpu-1']);
    const recreated = allocateClaim(server, 'recreated', ['gpu-2']);
    const released = allocateClaim(server, 'released', ['gpu-3']);

    const first = await spawnAgent({ dir, server });
    runs.push(first);
    const kubelet = await kubeletFor(dir);
    const prepared = await kubelet.prepare([live, gone, recreated, released]);
    expect(Object.values(prepared.claims).map((c) => c.error)).toEqual(['', '', '', '']);
    const liveSpec = await readFile(join(cdiDir(dir), `${SPEC_PREFIX}${live.uid}.json`), 'utf8');
    await kubelet.stop();
    expect(await stopAgent(first)).toBe(0);
    expect((await verifiedCheckpoint(dir))?.bootId).toBe('boot-before');

    // The reboot, and what the cluster did meanwhile.
    await rm(cdiDir(dir), { recursive: true, force: true });
    await writeFile(bootIdFile(dir), 'boot-after\n');
    server.delete('resource.k8s.io/v1', 'ResourceClaim', 'default', 'gone');
    server.delete('resource.k8s.io/v1', 'ResourceClaim', 'default', 'recreated');
    allocateClaim(server, 'recreated', ['gpu-2']); // same name, new UID
    const rel = server.get('resource.k8s.io/v1', 'ResourceClaim', 'default', 'released')!;
    server.updateStatus({ ...rel, status: { ...(rel['status'] as object), reservedFor: [] } });

    server.clearRequests();
    const second = await spawnAgent({ dir, server });
    runs.push(second);
    // Reconciled before the kubelet could call.
    expect(await specUids(dir)).toEqual([live.uid]);
    expect(await readFile(join(cdiDir(dir), `${SPEC_PREFIX}${live.uid}.json`), 'utf8')).toBe(liveSpec);
    const cp = await verifiedCheckpoint(dir);
    expect(cp?.bootId).toBe('boot-after');
    expect(Object.keys(await assertConsistent(dir))).toEqual([live.uid]);
    expect(second.stderr()).toContain('rebooted');

    const kubelet2 = await kubeletFor(dir);
    server.clearRequests();
    const again = await kubelet2.prepare([live]);
    expect(again.claims[live.uid]?.error).toBe('');
    expect(again.claims[live.uid]?.devices.flatMap((d) => d.cdi_device_ids).sort()).toEqual(expectedCdiIds(live, ['gpu-0', 'gpu-7-mig-1g10gb-19-2']).sort());
    expect(claimGets(server.requests, live)).toHaveLength(0); // answered from the checkpoint
    // The kubelet's unprepare of a dropped claim still succeeds (nothing left to remove).
    const un = await kubelet2.unprepare([gone, released]);
    expect(Object.values(un.claims).map((c) => c.error)).toEqual(['', '']);
    await kubelet2.stop();
    expect(await stopAgent(second)).toBe(0);
  });
});
