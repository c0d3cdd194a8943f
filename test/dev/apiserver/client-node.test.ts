/**
 * The embedded API server against the real @kubernetes/client-node 2.x (the client gpulet uses): typed APIs,
 * field selectors, optimistic concurrency (409 on a stale resourceVersion), delete preconditions, and `Watch`.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../../dev/apiserver/server.js';

const DRIVER = 'gpu.gpulet.dev';

function slice(node: string, devices: string[]): k8s.V1ResourceSlice {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { generateName: `${node}-${DRIVER}-`, labels: { 'gpu.gpulet.dev/node': node } },
    spec: { driver: DRIVER, nodeName: node, pool: { name: node, generation: 1, resourceSliceCount: 1 }, devices: devices.map((name) => ({ name })) },
  };
}

async function apiError(p: Promise<unknown>): Promise<{ code: number; body: { kind?: string; reason?: string; code?: number } }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      return { code: err.code, body: JSON.parse(String(err.body)) };
    }
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('embedded API server with @kubernetes/client-node', () => {
  let server: EmbeddedApiServer;
  let kc: k8s.KubeConfig;
  let resource: k8s.ResourceV1Api;
  let core: k8s.CoreV1Api;

  beforeAll(async () => {
    server = await startApiServer({ nodes: ['node-a', 'node-b'] });
    kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig());
    resource = kc.makeApiClient(k8s.ResourceV1Api);
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  afterAll(async () => {
    await server.close();
  });

  it('serves the nodes and the default namespace created at start', async () => {
    expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['node-a', 'node-b']);
    const ns = await core.readNamespace({ name: 'default' });
    expect(ns.status?.phase).toBe('Active');
  });

  it('creates slices with generateName and lists them by spec.nodeName', async () => {
    const a = await resource.createResourceSlice({ body: slice('node-a', ['gpu-0', 'gpu-1']) });
    const b = await resource.createResourceSlice({ body: slice('node-b', ['gpu-0']) });
    expect(a.metadata?.name).toMatch(/^node-a-gpu\.gpulet\.dev-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(a.metadata?.uid).not.toBe(b.metadata?.uid);
    expect(a.metadata?.generation).toBe(1);
    expect(Number(b.metadata?.resourceVersion)).toBeGreaterThan(Number(a.metadata?.resourceVersion));

    const onA = await resource.listResourceSlice({ fieldSelector: 'spec.nodeName=node-a' });
    expect(onA.items.map((s) => s.metadata?.name)).toEqual([a.metadata?.name]);
    expect(onA.items[0]?.spec.devices?.map((d) => d.name)).toEqual(['gpu-0', 'gpu-1']);
    expect(Number(onA.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(b.metadata?.resourceVersion));
    const byDriverNotA = await resource.listResourceSlice({ fieldSelector: `spec.driver=${DRIVER},spec.nodeName!=node-a` });
    expect(byDriverNotA.items.map((s) => s.metadata?.name)).toEqual([b.metadata?.name]);
    const byLabel = await resource.listResourceSlice({ labelSelector: 'gpu.gpulet.dev/node in (node-b)', limit: 500 });
    expect(byLabel.items.map((s) => s.metadata?.name)).toEqual([b.metadata?.name]);
    const bad = await apiError(resource.listResourceSlice({ fieldSelector: 'spec.unknownField=x' }));
    expect(bad.code).toBe(400);
    expect(bad.body.reason).toBe('BadRequest');
  });

  it('replaces a slice (generation follows spec changes) and answers 409 Conflict to a stale resourceVersion', async () => {
    const created = await resource.createResourceSlice({ body: slice('node-a', ['gpu-7']) });
    const name = created.metadata?.name ?? '';
    const relabeled = await resource.replaceResourceSlice({
      name,
      body: { ...created, metadata: { ...created.metadata, labels: { extra: 'yes' } } },
    });
    expect(relabeled.metadata?.generation).toBe(1);
    expect(relabeled.metadata?.labels).toEqual({ extra: 'yes' });
    const bumped = await resource.replaceResourceSlice({
      name,
      body: { ...relabeled, spec: { ...relabeled.spec, pool: { ...relabeled.spec.pool, generation: 2 } } },
    });
    expect(bumped.metadata?.generation).toBe(2);
    expect(bumped.spec.pool.generation).toBe(2);

    const stale = await apiError(resource.replaceResourceSlice({ name, body: created }));
    expect(stale.code).toBe(409);
    expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    expect((await resource.readResourceSlice({ name })).spec.pool.generation).toBe(2);

    const unchanged = await resource.replaceResourceSlice({ name, body: bumped });
    expect(unchanged.metadata?.resourceVersion).toBe(bumped.metadata?.resourceVersion);

    const wrongUid = await apiError(
      resource.deleteResourceSlice({ name, body: { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } } }),
    );
    expect(wrongUid.code).toBe(409);
    const staleRv = await apiError(resource.deleteResourceSlice({ name, body: { preconditions: { resourceVersion: created.metadata?.resourceVersion ?? '' } } }));
    expect(staleRv.code).toBe(409);
    await resource.deleteResourceSlice({ name, body: { preconditions: { uid: bumped.metadata?.uid ?? '', resourceVersion: bumped.metadata?.resourceVersion ?? '' } } });
    const gone = await apiError(resource.readResourceSlice({ name }));
    expect(gone.code).toBe(404);
    expect(gone.body.reason).toBe('NotFound');
  });

  it('reads a ResourceClaim whose status the test allocated through the store', async () => {
    await resource.createNamespacedResourceClaim({
      namespace: 'default',
      body: {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: 'claim-1' },
        spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: DRIVER, count: 1 } }] } },
        status: { allocation: { devices: { results: [{ request: 'gpu', driver: DRIVER, pool: 'x', device: 'ignored' }] } } },
      },
    });
    const before = await resource.readNamespacedResourceClaim({ name: 'claim-1', namespace: 'default' });
    expect(before.status?.allocation).toBeUndefined();
    const stored = server.get('resource.k8s.io/v1', 'ResourceClaim', 'default', 'claim-1');
    if (!stored) throw new Error('claim not stored');
    const results = [{ request: 'gpu', driver: DRIVER, pool: 'node-a', device: 'gpu-0' }];
    server.updateStatus({ ...stored, status: { allocation: { devices: { results } } } });
    const after = await resource.readNamespacedResourceClaim({ name: 'claim-1', namespace: 'default' });
    expect(after.status?.allocation?.devices?.results).toEqual(results);
    expect(after.metadata?.uid).toBe(before.metadata?.uid);
    expect(Number(after.metadata?.resourceVersion)).toBeGreaterThan(Number(before.metadata?.resourceVersion));

    const noNs = await apiError(resource.readNamespacedResourceClaim({ name: 'claim-1', namespace: 'elsewhere' }));
    expect(noNs.code).toBe(404);
  });

  it('streams ADDED, MODIFIED and DELETED events to a client-node Watch', async () => {
    const events: Array<{ type: string; name: string; generation: number | undefined }> = [];
    let resolveDeleted: () => void = () => undefined;
    const deleted = new Promise<void>((resolve) => {
      resolveDeleted = resolve;
    });
    const start = (await resource.listResourceSlice()).metadata?.resourceVersion ?? '';
    const watch = new k8s.Watch(kc);
    const controller = await watch.watch(
      '/apis/resource.k8s.io/v1/resourceslices',
      { resourceVersion: start, fieldSelector: 'spec.nodeName=node-b' },
      (type: string, obj: k8s.V1ResourceSlice) => {
        events.push({ type, name: obj.metadata?.name ?? '', generation: obj.metadata?.generation });
        if (type === 'DELETED') resolveDeleted();
      },
      () => undefined,
    );
    const ignored = await resource.createResourceSlice({ body: slice('node-a', ['gpu-3']) });
    const s = await resource.createResourceSlice({ body: slice('node-b', ['gpu-3']) });
    const name = s.metadata?.name ?? '';
    await resource.replaceResourceSlice({ name, body: { ...s, spec: { ...s.spec, pool: { ...s.spec.pool, generation: 2 } } } });
    await resource.deleteResourceSlice({ name });
    await deleted;
    controller.abort();
    expect(events).toEqual([
      { type: 'ADDED', name, generation: 1 },
      { type: 'MODIFIED', name, generation: 2 },
      { type: 'DELETED', name, generation: 2 },
    ]);
    expect(events.some((e) => e.name === ignored.metadata?.name)).toBe(false);
  });

  it('replays events after a resourceVersion and starts with ADDED for existing objects when none is given', async () => {
    const first = await resource.createResourceSlice({ body: slice('node-a', ['gpu-4']) });
    const second = await resource.createResourceSlice({ body: slice('node-a', ['gpu-5']) });
    const collect = async (params: Record<string, string>, count: number): Promise<string[]> => {
      const seen: string[] = [];
      let done: () => void = () => undefined;
      const enough = new Promise<void>((resolve) => {
        done = resolve;
      });
      const c = await new k8s.Watch(kc).watch(
        '/apis/resource.k8s.io/v1/resourceslices',
        { labelSelector: 'gpu.gpulet.dev/node=node-a', ...params },
        (type: string, obj: k8s.V1ResourceSlice) => {
          seen.push(`${type} ${obj.metadata?.name ?? ''}`);
          if (seen.length >= count) done();
        },
        () => undefined,
      );
      await enough;
      c.abort();
      return seen;
    };
    const replay = await collect({ resourceVersion: first.metadata?.resourceVersion ?? '' }, 1);
    expect(replay).toEqual([`ADDED ${second.metadata?.name ?? ''}`]);
    const existing = await resource.listResourceSlice({ labelSelector: 'gpu.gpulet.dev/node=node-a' });
    const initial = await collect({}, existing.items.length);
    expect(initial.sort()).toEqual(existing.items.map((s) => `ADDED ${s.metadata?.name ?? ''}`).sort());
    expect(initial).toContain(`ADDED ${first.metadata?.name ?? ''}`);
    expect(initial).toContain(`ADDED ${second.metadata?.name ?? ''}`);
  });
});
