/**
 * SlicePublisher against the embedded API server over real HTTP with the real @kubernetes/client-node:
 * first publish, zero writes when nothing changed, minimal writes + generation bump on change, recreation after
 * the kubelet-style deletion, retries with backoff on injected 500/409 with a bounded request count.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { taintsByUuid } from '../../../src/dra/slices/taints.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer, type KubeObject, type RequestRecord } from '../../../dev/apiserver/server.js';
import { SlicePublisher } from '../../../src/dra/slices/publisher.js';
import type { Inventory } from '../../../src/gpu/types.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { exampleInventory, manyGpus } from '../../helpers/slices.js';
import { driverName, nodeName } from '../../helpers/names.js';
import { poolNameOf } from '../../../src/model/names.js';

const DRIVER = driverName('gpu.gpulet.dev');
const NODE = nodeName('node-a');
const SLICES = '/apis/resource.k8s.io/v1/resourceslices';

let server: EmbeddedApiServer;
let publisher: SlicePublisher | undefined;

beforeEach(async () => {
  server = await startApiServer({ nodes: [NODE, 'node-b'] });
});
afterEach(async () => {
  await publisher?.stop();
  publisher = undefined;
  await server.close();
});

function newPublisher(backoff = { initialMs: 20, maxMs: 200 }): SlicePublisher {
  const kc = new KubeConfig();
  kc.loadFromString(server.kubeconfig());
  publisher = new SlicePublisher({ kubeConfig: kc, driverName: DRIVER, nodeName: NODE, poolName: poolNameOf(NODE), logger: process.env['PUBDEBUG'] ? createLogger('debug') : silentLogger(), backoff });
  publisher.start();
  return publisher;
}

const slices = (): KubeObject[] => server.list('resource.k8s.io/v1', 'ResourceSlice');
const spec = (o: KubeObject) => o['spec'] as { pool: { name: string; generation: number; resourceSliceCount: number }; nodeName: string; driver: string; devices: { name: string; capacity?: Record<string, { value: string }> }[] };
const writes = (reqs: readonly RequestRecord[]) => reqs.filter((r) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method));

function withGpu0Memory(inv: Inventory, bytes: number): Inventory {
  return { ...inv, gpus: [{ ...inv.gpus[0]!, memoryBytes: bytes }, ...inv.gpus.slice(1)] };
}

describe('SlicePublisher ↔ embedded API server', () => {
  it('first publish: one slice with the Node owner reference and generation 1; same inventory again: zero writes', async () => {
    const p = newPublisher();
    p.update(exampleInventory());
    await p.whenSynced();
    const stored = slices();
    expect(stored).toHaveLength(1);
    const s = stored[0]!;
    const node = server.get('v1', 'Node', undefined, NODE)!;
    expect(s.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: node.metadata.uid, controller: true }]);
    expect(s.metadata.name?.startsWith(`${DRIVER}-${NODE}-`)).toBe(true);
    expect(spec(s).pool).toEqual({ name: NODE, generation: 1, resourceSliceCount: 1 });
    expect(spec(s).nodeName).toBe(NODE);
    expect(spec(s).devices.map((d) => d.name)).toEqual(['gpu-0', 'gpu-1-mig-1g10gb-19-0']);
    // The list went out with the field selector.
    const list = server.requests.find((r) => r.method === 'GET' && r.path === SLICES);
    expect(new URLSearchParams(list?.query).get('fieldSelector')).toBe(`spec.nodeName=${NODE},spec.driver=${DRIVER}`);

    server.clearRequests();
    p.update(exampleInventory());
    await p.whenSynced();
    p.republish();
    await p.whenSynced();
    expect(server.requests.some((r) => r.method === 'GET' && r.path === SLICES)).toBe(true); // it did reconcile
    expect(writes(server.requests)).toEqual([]);
    expect(slices()[0]!.metadata.resourceVersion).toBe(s.metadata.resourceVersion);
  });

  it('a changed device: exactly one PUT, generation bumped, same object', async () => {
    const p = newPublisher();
    p.update(exampleInventory());
    await p.whenSynced();
    const before = slices()[0]!;
    server.clearRequests();
    p.update(withGpu0Memory(exampleInventory(), 80 * 1024 ** 3));
    await p.whenSynced();
    expect(writes(server.requests).map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 200']);
    const after = slices();
    expect(after).toHaveLength(1);
    expect(after[0]!.metadata.uid).toBe(before.metadata.uid);
    expect(spec(after[0]!).pool.generation).toBe(2);
    expect(spec(after[0]!).devices[0]!.capacity?.['memory']).toEqual({ value: '80Gi' });
  });

  it('a faulty device gets its taint with one PUT; recovery removes it with one PUT', async () => {
    const p = newPublisher();
    const inv = exampleInventory();
    p.update(inv);
    await p.whenSynced();
    server.clearRequests();
    const faulty = () => taintsByUuid(DRIVER, new Map([[inv.gpus[0]!.uuid, { xid: { xid: 79, fatal: true, sinceMs: 1_000, lastMs: 1_000 } }]]));
    p.update(inv, faulty());
    await p.whenSynced();
    expect(writes(server.requests).map((r) => r.method)).toEqual(['PUT']);
    const dev0 = () => (slices()[0]!['spec'] as { devices: { name: string; taints?: { key: string; effect: string }[] }[] }).devices[0]!;
    expect(dev0().taints).toMatchObject([{ key: 'gpu.gpulet.dev/xid', value: '79', effect: 'NoSchedule' }]);
    server.clearRequests();
    p.update(inv, faulty()); // unchanged health: nothing to write
    await p.whenSynced();
    expect(writes(server.requests)).toEqual([]);
    p.update(inv);
    await p.whenSynced();
    expect(writes(server.requests).map((r) => r.method)).toEqual(['PUT']);
    expect(dev0().taints).toBeUndefined();
  });

  it('growing past 128 devices splits the pool; shrinking deletes the extra slice; other nodes untouched', async () => {
    server.create({
      apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice', metadata: { name: 'other-node-slice' },
      spec: { driver: DRIVER, nodeName: 'node-b', pool: { name: 'node-b', generation: 1, resourceSliceCount: 1 }, devices: [] },
    });
    const p = newPublisher();
    p.update(manyGpus(10));
    await p.whenSynced();
    server.clearRequests();
    p.update(manyGpus(200));
    await p.whenSynced();
    expect(writes(server.requests).map((r) => r.method)).toEqual(['PUT', 'POST']);
    const ours = slices().filter((o) => spec(o).nodeName === NODE);
    expect(ours.map((o) => spec(o).devices.length).sort()).toEqual([128, 72]);
    for (const o of ours) expect(spec(o).pool).toEqual({ name: NODE, generation: 2, resourceSliceCount: 2 });
    server.clearRequests();
    p.update(manyGpus(5));
    await p.whenSynced();
    expect(writes(server.requests).map((r) => r.method)).toEqual(['PUT', 'DELETE']);
    expect(slices().filter((o) => spec(o).nodeName === NODE)).toHaveLength(1);
    expect(server.get('resource.k8s.io/v1', 'ResourceSlice', undefined, 'other-node-slice')).toBeDefined();
  });

  it('republish() recreates a slice deleted behind its back, at a higher generation', async () => {
    const p = newPublisher();
    p.update(exampleInventory());
    await p.whenSynced();
    const old = slices()[0]!;
    expect(server.delete('resource.k8s.io/v1', 'ResourceSlice', undefined, old.metadata.name!)).toBe(true);
    server.clearRequests();
    p.republish();
    await p.whenSynced();
    expect(writes(server.requests).map((r) => `${r.method} ${r.status}`)).toEqual(['POST 201']);
    const now = slices();
    expect(now).toHaveLength(1);
    expect(now[0]!.metadata.uid).not.toBe(old.metadata.uid);
    expect(spec(now[0]!).pool.generation).toBe(2);
  });

  it('injected 500s and a 409 on PUT: retries with backoff, converges, bounded request count', async () => {
    const p = newPublisher({ initialMs: 10, maxMs: 40 });
    p.update(exampleInventory());
    await p.whenSynced();
    server.clearRequests();
    // Three 500s on the list, then one 409 on the PUT (as if someone else wrote the slice).
    const removeList = server.injectFault({ method: 'GET', pathIncludes: 'resourceslices', status: 500, times: 3 });
    const removePut = server.injectFault({ method: 'PUT', pathIncludes: 'resourceslices', status: 409, times: 1 });
    p.update(withGpu0Memory(exampleInventory(), 40 * 1024 ** 3));
    await p.whenSynced();
    removeList();
    removePut();
    const reqs = server.requests;
    expect(reqs.filter((r) => r.status === 500)).toHaveLength(3);
    expect(reqs.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([409, 200]);
    expect(reqs.length).toBeLessThanOrEqual(15); // 5 reconciles × (node + list + write) at most
    // Retries were spaced (no busy loop): the first and last request are apart by at least one 1 ms+ delay each.
    expect(reqs.at(-1)!.timestampMs - reqs[0]!.timestampMs).toBeGreaterThanOrEqual(4);
    expect(spec(slices()[0]!).devices[0]!.capacity?.['memory']).toEqual({ value: '40Gi' });
    expect(spec(slices()[0]!).pool.generation).toBe(2);
    expect(p.stats()).toMatchObject({ errors: 4, consecutiveFailures: 0 });
  });

  it('dropped connections are retried too', async () => {
    const p = newPublisher({ initialMs: 10, maxMs: 40 });
    const remove = server.injectFault({ method: 'POST', pathIncludes: 'resourceslices', drop: true, times: 2 });
    p.update(exampleInventory());
    await p.whenSynced();
    remove();
    expect(slices()).toHaveLength(1);
    expect(p.stats().errors).toBe(2);
  });
});
