/**
 * REST semantics of the embedded API server over real HTTP: discovery and OpenAPI (checked against the official
 * Kubernetes 1.35 `resource.k8s.io/v1` document in test/reference), patch types, the status subresource,
 * label selectors, Tables, deletecollection and raw watch streams; and the rules taken from kube-apiserver 1.37
 * (resource.k8s.io validation and defaults, limit/continue pagination, list and watch options), which
 * test/upstream/dev-server-parity.test.ts compares with the real server.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return -- response bodies are arbitrary JSON inspected field by field */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../../dev/apiserver/server.js';
import { reference } from '../../helpers/reference.js';

const GV = '/apis/resource.k8s.io/v1';
const CLAIMS = `${GV}/namespaces/default/resourceclaims`;
const REFERENCE = reference('resource.k8s.io-v1.openapi-1.35.json');

interface Obj {
  kind: string;
  metadata: { name: string; resourceVersion: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

describe('embedded API server REST semantics', () => {
  let server: EmbeddedApiServer;
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json', accept?: string): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (accept) headers['accept'] = accept;
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(`${server.url}${path}`, init);
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };
  const claim = (name: string, labels: Record<string, string> = {}): unknown => ({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name, labels },
    spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'gpu.gpulet.dev', count: 1 } }] } },
  });

  beforeAll(async () => {
    server = await startApiServer({ nodes: ['n1'] });
  });
  afterAll(async () => {
    await server.close();
  });

  it('serves discovery with the status subresource and the official OpenAPI v3 document', async () => {
    const list = await call('GET', GV);
    expect(list.body.kind).toBe('APIResourceList');
    expect(list.body.groupVersion).toBe('resource.k8s.io/v1');
    const names = list.body.resources.map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining(['resourceslices', 'resourceclaims', 'resourceclaims/status', 'resourceclaimtemplates', 'deviceclasses']));
    const claims = list.body.resources.find((r: { name: string }) => r.name === 'resourceclaims');
    expect(claims).toMatchObject({ kind: 'ResourceClaim', namespaced: true, singularName: 'resourceclaim' });
    expect(claims.verbs).toEqual(expect.arrayContaining(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']));
    const groups = await call('GET', '/apis');
    expect(groups.body.groups[0].preferredVersion.groupVersion).toBe('resource.k8s.io/v1');
    expect((await call('GET', '/api')).body.versions).toEqual(['v1']);

    const index = await call('GET', '/openapi/v3');
    const rel: string = index.body.paths['apis/resource.k8s.io/v1'].serverRelativeURL;
    const doc = await call('GET', rel);
    const reference = JSON.parse(await readFile(REFERENCE, 'utf8'));
    expect(doc.body).toEqual(reference);
    // Every path the official document declares is one this server routes (no 404 "could not find the requested resource").
    for (const path of Object.keys(reference.paths as Record<string, unknown>)) {
      if (path.includes('/watch/')) continue;
      const concrete = path.replace('{namespace}', 'default').replace('{name}', 'nothing-here');
      const res = await call('GET', concrete);
      if (res.status === 404) expect(res.body.message).toMatch(/"nothing-here" not found/);
      else expect(res.status).toBe(200);
    }
  });

  it('creates with generateName, drops status on create, and changes status only through /status', async () => {
    const created = await call('POST', CLAIMS, { ...(claim('') as object), metadata: { generateName: 'claim-' }, status: { allocation: {} } });
    expect(created.status).toBe(201);
    const name: string = created.body.metadata.name;
    expect(name).toMatch(/^claim-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(created.body.status).toEqual({}); // reset on create; a struct, so `{}` as the real server answers
    expect(created.body.metadata.generation).toBeUndefined(); // the ResourceClaim strategy keeps no generation
    expect(created.body.spec.devices.requests[0].exactly).toMatchObject({ allocationMode: 'ExactCount', count: 1 }); // defaulted
    const results = [{ request: 'gpu', driver: 'gpu.gpulet.dev', pool: 'n1', device: 'gpu-0' }];
    const ignored = await call('PUT', `${CLAIMS}/${name}`, { ...created.body, status: { allocation: { devices: { results } } } });
    expect(ignored.status).toBe(200);
    expect(ignored.body.status).toEqual({});
    const viaStatus = await call('PUT', `${CLAIMS}/${name}/status`, { ...created.body, metadata: { ...created.body.metadata, labels: { dropped: 'yes' } }, status: { allocation: { devices: { results } } } });
    expect(viaStatus.status).toBe(200);
    expect(viaStatus.body.status.allocation.devices.results).toEqual(results);
    expect(viaStatus.body.metadata.labels).toBeUndefined();
    expect(viaStatus.body.metadata.generation).toBeUndefined();
    const stale = await call('PUT', `${CLAIMS}/${name}/status`, { ...created.body, status: {} });
    expect(stale.status).toBe(409);
    const patched = await call('PATCH', `${CLAIMS}/${name}/status`, { status: { reservedFor: [{ resource: 'pods', name: 'p', uid: 'u' }] } }, 'application/merge-patch+json');
    expect(patched.body.status.allocation.devices.results).toEqual(results);
    expect(patched.body.status.reservedFor).toHaveLength(1);
    const table = await call('GET', `${CLAIMS}/${name}`, undefined, 'application/json', 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json');
    expect(table.body.kind).toBe('Table');
    expect(table.body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(['Name', 'State', 'Age']);
    expect(table.body.rows[0].cells.slice(0, 2)).toEqual([name, 'allocated,reserved']);
  });

  it('applies merge, JSON and strategic merge patches, honouring resourceVersion preconditions in the patch', async () => {
    const base = '/api/v1/namespaces/default/pods';
    const pod = await call('POST', base, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', labels: { a: '1', b: '2' } }, spec: { containers: [{ name: 'c1', image: 'x' }, { name: 'c2', image: 'y' }] } });
    expect(pod.status).toBe(201);
    const merge = await call('PATCH', `${base}/p1`, { metadata: { labels: { a: null, c: '3' } } }, 'application/merge-patch+json');
    expect(merge.body.metadata.labels).toEqual({ b: '2', c: '3' });
    const json = await call('PATCH', `${base}/p1`, [{ op: 'test', path: '/metadata/labels/b', value: '2' }, { op: 'replace', path: '/metadata/labels/b', value: '20' }, { op: 'add', path: '/metadata/annotations', value: { 'x/y': 'z' } }], 'application/json-patch+json');
    expect(json.body.metadata.labels.b).toBe('20');
    expect(json.body.metadata.annotations).toEqual({ 'x/y': 'z' });
    const failedTest = await call('PATCH', `${base}/p1`, [{ op: 'test', path: '/metadata/labels/b', value: 'nope' }], 'application/json-patch+json');
    expect(failedTest.status).toBe(422);
    const smp = await call('PATCH', `${base}/p1`, { spec: { containers: [{ name: 'c2', image: 'y2' }] } }, 'application/strategic-merge-patch+json');
    expect(smp.body.spec.containers).toEqual([{ name: 'c1', image: 'x' }, { name: 'c2', image: 'y2' }]);
    expect(smp.body.metadata.generation).toBe(2);
    const conflict = await call('PATCH', `${base}/p1`, { metadata: { resourceVersion: pod.body.metadata.resourceVersion, labels: { d: '4' } } }, 'application/merge-patch+json');
    expect(conflict.status).toBe(409);
    const missing = await call('PATCH', `${base}/nope`, {}, 'application/merge-patch+json');
    expect(missing.status).toBe(404);
    const applied = await call('PATCH', `${GV}/deviceclasses/gpu.gpulet.dev?fieldManager=test`, 'apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata:\n  name: gpu.gpulet.dev\nspec:\n  selectors:\n  - cel:\n      expression: device.driver == "gpu.gpulet.dev"\n', 'application/apply-patch+yaml');
    expect(applied.status).toBe(201);
    expect(applied.body.spec.selectors[0].cel.expression).toBe('device.driver == "gpu.gpulet.dev"');
  });

  it('filters lists with every label-selector operator and deletes collections', async () => {
    for (const [name, labels] of [['l1', { tier: 'a', gpu: 'yes' }], ['l2', { tier: 'b' }], ['l3', { tier: 'c', gpu: 'no' }]] as const) {
      expect((await call('POST', CLAIMS, claim(name, labels))).status).toBe(201);
    }
    const select = async (sel: string): Promise<string[]> =>
      ((await call('GET', `${CLAIMS}?labelSelector=${encodeURIComponent(sel)}`)).body.items as Obj[]).map((o) => o.metadata.name);
    expect(await select('tier=a')).toEqual(['l1']);
    expect(await select('tier==b')).toEqual(['l2']);
    expect(await select('tier!=a,tier')).toEqual(['l2', 'l3']);
    expect(await select('tier in (a, c)')).toEqual(['l1', 'l3']);
    expect(await select('tier notin (a,c),tier')).toEqual(['l2']);
    expect(await select('gpu')).toEqual(['l1', 'l3']);
    expect(await select('!gpu,tier')).toEqual(['l2']);
    expect((await call('GET', `${CLAIMS}?labelSelector=${encodeURIComponent('tier in (a')}`)).status).toBe(400);
    const removed = await call('DELETE', `${CLAIMS}?labelSelector=gpu`);
    expect(removed.body.items.map((o: Obj) => o.metadata.name)).toEqual(['l1', 'l3']);
    expect(await select('tier')).toEqual(['l2']);
  });

  it('streams a watch as newline-delimited JSON and as Table rows for kubectl get -w', async () => {
    const start = (await call('GET', CLAIMS)).body.metadata.resourceVersion as string;
    const controller = new AbortController();
    const res = await fetch(`${server.url}${CLAIMS}?watch=1&resourceVersion=${start}&fieldSelector=metadata.name%3Dw1`, { signal: controller.signal, headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } });
    expect(res.status).toBe(200);
    await call('POST', CLAIMS, claim('w0'));
    await call('POST', CLAIMS, claim('w1'));
    await call('DELETE', `${CLAIMS}/w1`);
    const reader = res.body!.getReader();
    let text = '';
    while (text.split('\n').length < 3) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e) => [e.type, e.object.kind, e.object.rows[0].cells[0]])).toEqual([
      ['ADDED', 'Table', 'w1'],
      ['DELETED', 'Table', 'w1'],
    ]);
  });

  it('rejects a watch from an invalid resourceVersion with 400', async () => {
    const res = await call('GET', `${CLAIMS}?watch=true&resourceVersion=abc`);
    expect(res.status).toBe(400);
  });

  // The rules below are kube-apiserver 1.37's; test/upstream/dev-server-parity.test.ts sends the same requests to
  // the real server and compares the answers.
  describe('as kube-apiserver 1.37 (pkg/apis/resource/validation, defaults, list and watch options)', () => {
    const SLICES = `${GV}/resourceslices`;
    const slice = (name: string, spec: Record<string, unknown> = {}): unknown => ({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceSlice',
      metadata: { name, labels: { parity: 'yes' } },
      spec: { driver: 'gpu.gpulet.dev', nodeName: 'n1', pool: { name: 'n1', generation: 0, resourceSliceCount: 1 }, devices: [{ name: 'gpu-0' }], ...spec },
    });
    const fields = (body: { details?: { causes?: { reason: string; field: string }[] } }): string[] => (body.details?.causes ?? []).map((c) => `${c.reason}@${c.field}`).sort();

    it('validates ResourceSlice specs with the real field paths, and quantities as the decoder does', async () => {
      const bad = await call('POST', SLICES, slice('v-bad', {
        driver: '',
        pool: { name: 'n1', generation: -1, resourceSliceCount: 0 },
        devices: [{ name: 'g', attributes: { 'Bad Name': { string: 'x' }, v: { version: '1.0' }, two: { int: 1, bool: true } }, taints: [{ key: 'k', effect: 'Boom' }] }, { name: 'g' }],
      }));
      expect(bad.status).toBe(422);
      expect(fields(bad.body)).toEqual([
        'FieldValueDuplicate@spec.devices[1]',
        'FieldValueInvalid@spec.devices[0].attributes',
        'FieldValueInvalid@spec.devices[0].attributes[two]',
        'FieldValueInvalid@spec.devices[0].attributes[v].version',
        'FieldValueInvalid@spec.pool.generation',
        'FieldValueInvalid@spec.pool.resourceSliceCount',
        'FieldValueNotSupported@spec.devices[0].taints[0].effect',
        'FieldValueRequired@spec.driver',
      ]);
      const tooMany = await call('POST', SLICES, slice('v-many', { devices: Array.from({ length: 129 }, (_, i) => ({ name: `g${i}` })) }));
      expect(fields(tooMany.body)).toEqual(['FieldValueTooMany@spec.devices']);
      const noNode = await call('POST', SLICES, slice('v-nonode', { nodeName: undefined }));
      expect(fields(noNode.body)).toEqual(['FieldValueRequired@spec']);
      const quantity = await call('POST', SLICES, slice('v-q', { devices: [{ name: 'g', capacity: { memory: { value: 'lots' } } }] }));
      expect(quantity.status).toBe(400);
      expect(quantity.body.message).toMatch(/quantities must match the regular expression/);

      const ok = await call('POST', SLICES, slice('v-ok', { devices: [{ name: 'g', taints: [{ key: 'k', effect: 'NoSchedule' }] }] }));
      expect(ok.status).toBe(201);
      expect(ok.body.spec.devices[0].taints[0].timeAdded).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/); // defaulted
      // A given time is stored as metav1.Time encodes it: UTC, whole seconds (what @kubernetes/client-node sends has ms).
      const given = await call('POST', SLICES, slice('v-time', { devices: [{ name: 'g', taints: [{ key: 'k', effect: 'NoSchedule', timeAdded: '2023-11-14T23:13:20.999+01:00' }] }] }));
      expect(given.body.spec.devices[0].taints[0].timeAdded).toBe('2023-11-14T22:13:20Z');
      expect(ok.body.metadata.generation).toBe(1);
      const moved = await call('PUT', `${SLICES}/v-ok`, { ...ok.body, spec: { ...ok.body.spec, driver: 'other.gpulet.dev', nodeName: 'n2' } });
      expect(fields(moved.body)).toEqual(['FieldValueInvalid@spec.driver', 'FieldValueInvalid@spec.nodeName']); // immutable
    });

    it('validates claims and classes, and defaults their requests', async () => {
      const bad = await call('POST', CLAIMS, {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: 'v-claim' },
        spec: { devices: { requests: [{ name: 'a' }, { name: 'b', exactly: { deviceClassName: '', allocationMode: 'All', count: 2, tolerations: [{ key: 'k', operator: 'Maybe' }] } }], constraints: [{ requests: ['c'], matchAttribute: 'model' }] } },
      });
      expect(fields(bad.body)).toEqual([
        'FieldValueInvalid@spec.devices.constraints[0].matchAttribute',
        'FieldValueInvalid@spec.devices.constraints[0].requests[0]',
        'FieldValueInvalid@spec.devices.requests[1].exactly.count',
        'FieldValueNotSupported@spec.devices.requests[1].exactly.tolerations[0].operator',
        'FieldValueRequired@spec.devices.requests[0]',
        'FieldValueRequired@spec.devices.requests[1].exactly.deviceClassName',
      ]);
      const cls = await call('POST', `${GV}/deviceclasses`, { apiVersion: 'resource.k8s.io/v1', kind: 'DeviceClass', metadata: { name: 'v-class' }, spec: { selectors: [{}], config: [{ opaque: { driver: 'Bad_Driver', parameters: {} } }] } });
      expect(fields(cls.body)).toEqual(['FieldValueInvalid@spec.config[0].opaque.driver', 'FieldValueRequired@spec.selectors[0].cel']);
      const ok = await call('POST', CLAIMS, {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: 'v-defaults' },
        spec: { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'c', tolerations: [{ key: 'k' }] } }, { name: 'b', firstAvailable: [{ name: 's', deviceClassName: 'c', allocationMode: 'All' }] }] } },
      });
      expect(ok.status).toBe(201);
      expect(ok.body.spec.devices.requests[0].exactly).toEqual({ deviceClassName: 'c', allocationMode: 'ExactCount', count: 1, tolerations: [{ key: 'k', operator: 'Equal' }] });
      expect(ok.body.spec.devices.requests[1].firstAvailable[0]).toEqual({ name: 's', deviceClassName: 'c', allocationMode: 'All' });
    });

    it('pages lists with limit and continue in byte order, and rejects a bad token', async () => {
      for (const name of ['p-b', 'p.a', 'pa', 'p-a', 'p0']) expect((await call('POST', SLICES, slice(name))).status).toBe(201);
      const all = await call('GET', `${SLICES}?labelSelector=parity%3Dyes`);
      const names = (all.body.items as Obj[]).map((o) => o.metadata.name).filter((n) => n.startsWith('p'));
      expect(names).toEqual(['p-a', 'p-b', 'p.a', 'p0', 'pa']); // '-' < '.' < '0' < 'a'
      const seen: string[] = [];
      const remaining: unknown[] = [];
      let token = '';
      do {
        const page = await call('GET', `${SLICES}?limit=2${token === '' ? '' : `&continue=${encodeURIComponent(token)}`}`);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...(page.body.items as Obj[]).map((o) => o.metadata.name));
        remaining.push(page.body.metadata.remainingItemCount);
        token = page.body.metadata.continue ?? '';
      } while (token !== '');
      const everything = ((await call('GET', SLICES)).body.items as Obj[]).map((o) => o.metadata.name);
      expect(seen).toEqual(everything);
      expect(remaining[0]).toBe(everything.length - 2);
      expect(remaining[remaining.length - 1]).toBeUndefined();
      const filtered = await call('GET', `${SLICES}?limit=1&labelSelector=parity%3Dyes`);
      expect(filtered.body.metadata.continue).toBeDefined();
      expect(filtered.body.metadata.remainingItemCount).toBeUndefined(); // not for a filtered list, as upstream
      expect((await call('GET', `${SLICES}?limit=1&continue=garbage`)).status).toBe(400);
    });

    it('checks list and watch options, and sends initial events with their bookmark when asked', async () => {
      for (const q of ['?watch=true&sendInitialEvents=true', '?watch=true&resourceVersionMatch=NotOlderThan', '?sendInitialEvents=true', '?resourceVersionMatch=Exact']) {
        const res = await call('GET', `${SLICES}${q}`);
        expect(res.status, q).toBe(422);
        expect(res.body.details.kind, q).toBe('ListOptions');
      }
      expect((await call('GET', `${SLICES}?resourceVersion=abc`)).status).toBe(400);
      const rv = (await call('GET', SLICES)).body.metadata.resourceVersion as string;
      const controller = new AbortController();
      const res = await fetch(`${server.url}${SLICES}?watch=true&resourceVersion=${rv}&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dp0`, { signal: controller.signal });
      const reader = res.body!.getReader();
      let text = '';
      while (text.split('\n').length < 3) text += new TextDecoder().decode((await reader.read()).value);
      controller.abort();
      const events = text.trim().split('\n').map((l) => JSON.parse(l));
      expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.annotations])).toEqual([
        ['ADDED', 'p0', undefined],
        ['BOOKMARK', undefined, { 'k8s.io/initial-events-end': 'true' }],
      ]);
    });

    it('words delete-precondition conflicts as the registry does', async () => {
      const res = await call('DELETE', `${SLICES}/p0`, { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } });
      expect(res.status).toBe(409);
      expect(res.body.message).toMatch(/^Operation cannot be fulfilled on ResourceSlice\.resource\.k8s\.io "p0": the UID in the precondition \(0{8}-0{4}-0{4}-0{4}-0{12}\) does not match the UID in record/);
      expect(res.body.details).toEqual({ name: 'p0', group: 'resource.k8s.io', kind: 'ResourceSlice' });
    });
  });
});
