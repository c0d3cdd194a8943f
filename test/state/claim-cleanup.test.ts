/**
 * Periodic clean-up against a real API server (dev/apiserver over HTTP) through the real
 * @kubernetes/client-node (`KubeClaimSource`), with the claim state on temp dirs: a claim deleted from the
 * API server is unprepared within one period (spec and entry); during an outage (the server drops every
 * claim request) no claim is dropped and the request rate stays at one failed GET per period (no busy
 * loop); when the server is back the clean-up converges.
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
import { until } from '../helpers/agent.js';
import { claimState } from '../helpers/claims.js';
import { allocateClaim, NODE, SPEC_PREFIX } from '../helpers/crash-harness.js';

const PERIOD_MS = 250;

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
  it('unprepares a deleted claim within one period, keeps every claim through an outage, converges after', async () => {
    const source = new KubeClaimSource(loadKubeConfig({ mode: 'yaml', yaml: server.kubeconfig() }));
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

    cleanup = startClaimCleanup({ store, recovery, source, periodMs: PERIOD_MS, logger: silentLogger() });
    server.delete('resource.k8s.io/v1', 'ResourceClaim', deleted.namespace, deleted.name);
    const deletedAt = Date.now();
    await until('the deleted claim to be unprepared', () => (store.entries()[deleted.uid] === undefined ? true : undefined), 5_000, 20);
    // Within one period plus the time of one round (a generous bound for a loaded CI machine).
    expect(Date.now() - deletedAt).toBeLessThan(PERIOD_MS * 2 + 1_000);
    expect(await exists(spec(deleted.uid))).toBe(false);
    expect(Object.keys(store.entries()).sort()).toEqual([keep.uid, outageDeleted.uid].sort());

    // Outage: the server drops every claim request; meanwhile a claim is deleted.
    const heal = server.injectFault({ pathIncludes: '/resourceclaims/', drop: true });
    server.delete('resource.k8s.io/v1', 'ResourceClaim', outageDeleted.namespace, outageDeleted.name);
    server.clearRequests();
    const outageStart = Date.now();
    await new Promise((r) => setTimeout(r, PERIOD_MS * 6));
    const outageMs = Date.now() - outageStart;
    const attempts = server.requests.filter((r) => r.path.startsWith('/apis/resource.k8s.io/v1/namespaces/')).length;
    expect(attempts).toBeGreaterThan(0); // it did try
    expect(attempts).toBeLessThanOrEqual(Math.ceil(outageMs / PERIOD_MS) + 1); // at most one failed GET per round
    expect(Object.keys(store.entries()).sort()).toEqual([keep.uid, outageDeleted.uid].sort());
    expect(await exists(spec(outageDeleted.uid))).toBe(true);

    heal();
    await until('the claim deleted during the outage to be unprepared', () => (store.entries()[outageDeleted.uid] === undefined ? true : undefined), 5_000, 20);
    expect(Object.keys(store.entries())).toEqual([keep.uid]);
    expect(await exists(spec(keep.uid))).toBe(true);
    // The kept claim was looked up by name, as the clean-up does.
    expect(server.requests.some((r) => r.method === 'GET' && r.path === claimPath(keep.namespace, keep.name) && r.status === 200)).toBe(true);

    await cleanup.stop();
    cleanup = undefined;
  });
});
