/**
 * Periodic clean-up against a real API server (dev/apiserver over HTTP) through the real
 * @kubernetes/client-node (`KubeClaimSource`), with the claim state on temp dirs: a claim deleted from the
 * API server is unprepared by the first round after its deletion (spec and entry); during an outage (the
 * server drops every claim request) no claim is dropped, each round makes one failed GET and the next round
 * waits for its period (no busy loop); when the server is back the clean-up converges. Rounds are observed
 * through the server's request log and the clean-up's own log, never through elapsed time.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { createMockBackend } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { silentLogger } from '../../src/log.js';
import { KubeClaimSource } from '../../src/state/claim-source.js';
import { startClaimCleanup, type ClaimCleanup } from '../../src/state/reconcile.js';
import { claimGets } from '../helpers/agent.js';
import { claimState } from '../helpers/claims.js';
import { allocateClaim, NODE, SPEC_PREFIX } from '../helpers/crash-harness.js';
import { recordingLogger } from '../helpers/log.js';

const PERIOD_MS = 250;
/** Failed rounds the outage lasts for. */
const OUTAGE_ROUNDS = 3;

let server: EmbeddedApiServer;
let dir: string;
let inventory: Inventory;
let cleanup: ClaimCleanup | undefined;

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await mkdtemp(join(tmpdir(), 'gpulet-cleanup-'));
  const backend = createMockBackend({ machine: 'dgx-h100', nodeName: NODE });
  await backend.init();
  inventory = backend.inventory();
  await backend.shutdown();
});
afterAll(async () => {
  await cleanup?.stop();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) => access(p).then(() => true, () => false);
const claimPath = (ns: string, name: string) => `/apis/resource.k8s.io/v1/namespaces/${ns}/resourceclaims/${name}`;

describe('periodic clean-up of claims the API server no longer has', () => {
  it('unprepares a deleted claim in the first round, keeps every claim through an outage, converges after', async () => {
    const source = new KubeClaimSource(await loadKubeConfig({ mode: 'yaml', yaml: server.kubeconfig() }));
    const { store, preparer, recovery } = claimState({
      driverName: 'gpu.gpulet.dev', poolName: NODE, inventory: () => inventory, claimSource: source,
      cdiDir: join(dir, 'cdi'), checkpointPath: join(dir, 'checkpoint.json'), logger: silentLogger(),
      readBootId: () => Promise.resolve('boot'),
    });
    await store.init();
    const refs = ['keep', 'deleted', 'outage-deleted'].map((n, i) => allocateClaim(server, n, [`gpu-${i}`]));
    const out = await preparer.prepare(refs);
    expect([...out.values()].map((r) => r.error)).toEqual([undefined, undefined, undefined]);
    const [keep, deleted, outageDeleted] = refs as [typeof refs[0], typeof refs[0], typeof refs[0]];
    const spec = (uid: string) => join(dir, 'cdi', `${SPEC_PREFIX}${uid}.json`);

    const log = recordingLogger();
    server.clearRequests(); // forget the prepare's GETs: what follows is the clean-up's
    cleanup = startClaimCleanup({ store, recovery, source, periodMs: PERIOD_MS, logger: log.logger });
    server.delete('resource.k8s.io/v1', 'ResourceClaim', deleted.namespace, deleted.name);
    // The round logs the drop once the claim is unprepared.
    const drops = await log.waitForMessage('unprepared a claim the API server no longer has', {});
    expect(drops.map((r) => r['claimUid'])).toEqual([deleted.uid]);
    expect(store.entries()[deleted.uid]).toBeUndefined();
    // By the first round that looked: the server was asked once about it, answered 404, and it was dropped then.
    expect(claimGets(server.requests, deleted).map((r) => r.status)).toEqual([404]);
    expect(await exists(spec(deleted.uid))).toBe(false);
    expect(Object.keys(store.entries()).sort()).toEqual([keep.uid, outageDeleted.uid].sort());

    // Outage: the server drops every claim request; meanwhile a claim is deleted.
    const heal = server.injectFault({ pathIncludes: '/resourceclaims/', drop: true });
    server.delete('resource.k8s.io/v1', 'ResourceClaim', outageDeleted.namespace, outageDeleted.name);
    server.clearRequests();
    // Each failed round logs this once, then ends (the rest of the round is skipped).
    const FAILED_ROUND = 'cannot check a prepared claim with the API server';
    const failedBefore = log.withMessage(FAILED_ROUND).length;
    await log.waitForMessage(FAILED_ROUND, { count: failedBefore + OUTAGE_ROUNDS });
    const rounds = log.withMessage(FAILED_ROUND).length - failedBefore;
    const dropped = server.requests.filter((r) => r.path.startsWith('/apis/resource.k8s.io/v1/namespaces/') && r.status === 0);
    // One failed GET per round: every logged round made one; a round in flight may have made its GET, not logged yet.
    expect(dropped.length - rounds).toBeGreaterThanOrEqual(0);
    expect(dropped.length - rounds).toBeLessThanOrEqual(1);
    // No busy loop: the next round starts a period after the previous one ended (half a period allows for timer
    // granularity; a busy loop would retry within a millisecond or two). A slow machine only widens the gaps.
    for (let i = 1; i < dropped.length; i++) {
      expect(dropped[i]!.timestampMs - dropped[i - 1]!.timestampMs, `gap before failed GET ${i}`).toBeGreaterThanOrEqual(PERIOD_MS / 2);
    }
    expect(Object.keys(store.entries()).sort()).toEqual([keep.uid, outageDeleted.uid].sort());
    expect(await exists(spec(outageDeleted.uid))).toBe(true);

    heal();
    const afterOutage = await log.waitForMessage('unprepared a claim the API server no longer has', { count: 2 });
    expect(afterOutage.map((r) => r['claimUid'])).toEqual([deleted.uid, outageDeleted.uid]);
    expect(await exists(spec(outageDeleted.uid))).toBe(false);
    expect(Object.keys(store.entries())).toEqual([keep.uid]);
    expect(await exists(spec(keep.uid))).toBe(true);
    // The kept claim was looked up by name, as the clean-up does.
    expect(server.requests.some((r) => r.method === 'GET' && r.path === claimPath(keep.namespace, keep.name) && r.status === 200)).toBe(true);

    await cleanup.stop();
    cleanup = undefined;
  });
});
