/**
 * The embedded dev server (dev/apiserver/, what `npm start` and most tests run against) against the real
 * kube-apiserver 1.37.2 of the upstream cluster (test/upstream/), differentially (issue 10, item 4): the SAME
 * requests go to both, over raw HTTP, and what gpulet and a user of `npm start` with kubectl see is compared after
 * normalising what legitimately differs (uids, timestamps, resourceVersion values):
 *
 * (a) validation of invalid ResourceSlices, ResourceClaims, templates and DeviceClasses: status code, reason and
 *     the field paths of the Status causes; gpulet's own slices (tainted devices included) accepted alike;
 * (b) defaults and server-set metadata on create and update (allocationMode/count, toleration operator, taint
 *     timeAdded, generation, uid/resourceVersion/creationTimestamp formats, no-op updates);
 * (c) the ResourceClaim status subresource (status ignored on the main resource, spec and metadata on /status);
 * (d) watch: ADDED/MODIFIED/DELETED with field and label selectors (objects leaving a selector), initial events
 *     ending in a BOOKMARK, list/watch option validation;
 * (e) Table output (columns, cells) and `kubectl get` for resourceslices, resourceclaims and deviceclasses;
 * (f) 404/409 Status bodies, limit/continue pagination, delete collection.
 *
 * Every difference that is left is in {@link KNOWN}, checked by a test that fails when it disappears, and listed
 * in README "Embedded dev server vs kube-apiserver" (checked here too, both ways). Skipped only where Go is absent.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { buildResourceSlices } from '../../src/dra/slices/build.js';
import { taintsByUuid } from '../../src/dra/slices/taints.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { DEFAULT_DRIVER_NAME, poolNameOf, type DnsSubdomain } from '../../src/model/names.js';
import { REPO_ROOT } from '../helpers/repo.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/dev-server-parity.test.ts: ${unavailable}`);

const NODE = 'node-a';
const GV = '/apis/resource.k8s.io/v1';
const SLICES = `${GV}/resourceslices`;
const CLAIMS = `${GV}/namespaces/default/resourceclaims`;
const TEMPLATES = `${GV}/namespaces/default/resourceclaimtemplates`;
const CLASSES = `${GV}/deviceclasses`;
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
const DRIVER = 'gpu.example.com';

/**
 * The differences left, by id (the first column of README's table). Each is asserted below on both servers, so
 * the list stays true: a fixed one fails its test.
 */
const KNOWN = {
  cel: 'CEL selector expressions are not compiled: a syntax or type error is accepted',
  'status-validation': 'ResourceClaim status updates are not validated (e.g. reservedFor without allocation)',
  'managed-fields': 'no metadata.managedFields',
  'empty-structs': 'an empty struct is left out, not serialised as the Go API types do (`requests: null`)',
  'list-item-typemeta': 'list items carry apiVersion and kind',
  'table-descriptions': 'Table column descriptions are shortened (kubectl shows only the names)',
  'watch-bad-rv': 'a watch with a non-numeric resourceVersion is 400 BadRequest (the real server answers 500)',
  'watch-old-rv': 'a watch from a resourceVersion older than the server’s start is 410 Gone at once',
  'continue-snapshot': 'a continued list shows the current objects, not a snapshot at the first page’s resourceVersion',
} as const;
type KnownId = keyof typeof KNOWN;

/** One answer over HTTP. */
interface Reply {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON, inspected field by field
  readonly body: any;
}

type Call = (method: string, urlPath: string, body?: unknown, headers?: Record<string, string>) => Promise<Reply>;

/** A watch stream being read: its HTTP status and the events so far. */
interface WatchStream {
  readonly events: WatchEvent[];
  status(): number;
  stop(): void;
}

interface WatchEvent {
  readonly type: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON
  readonly object: any;
}

/** Raw HTTP(S) to the server of a KubeConfig, with its credentials (client certificate or token). */
async function rawClient(kc: KubeConfig): Promise<{ call: Call; watch: (urlPath: string) => Promise<WatchStream> }> {
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new Error('the kubeconfig names no server');
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const request = (method: string, urlPath: string, headers: Record<string, string>, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest => {
    const url = new URL(server + urlPath);
    const mod = url.protocol === 'https:' ? https : http;
    return mod.request(url, { ...opts, method, headers: { ...(opts.headers ?? {}), accept: 'application/json', 'content-type': 'application/json', ...headers } }, onResponse);
  };
  const call: Call = (method, urlPath, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      // An explicit length: Node sends a DELETE body neither chunked nor with a length otherwise.
      const req = request(method, urlPath, data === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(data)) }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }));
      });
      req.on('error', reject);
      if (data !== undefined) req.write(data);
      req.end();
    });
  const watch = (urlPath: string): Promise<WatchStream> =>
    new Promise((resolve, reject) => {
      const events: WatchEvent[] = [];
      let status = 0;
      const req = request('GET', urlPath, {}, (res) => {
        status = res.statusCode ?? 0;
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim() !== '') events.push(JSON.parse(line) as WatchEvent);
          }
        });
        res.on('end', () => {
          if (buf.trim() !== '') events.push(JSON.parse(buf) as WatchEvent);
        });
        res.on('error', () => undefined);
        resolve({ events, status: () => status, stop: () => req.destroy() });
      });
      req.on('error', (err) => (status === 0 ? reject(err) : undefined));
      req.end();
    });
  return { call, watch };
}

/** `reason@field` of each Status cause, sorted (Go iterates maps in random order). */
function causes(body: { details?: { causes?: { reason: string; field?: string }[] } } | undefined): string[] {
  return (body?.details?.causes ?? []).map((c) => `${c.reason}@${c.field ?? ''}`).sort();
}

/** What a create/update answered, as compared: code, reason, cause fields. */
function outcome(r: Reply): { code: number; reason: string; causes: string[] } {
  return { code: r.status, reason: r.status < 300 ? '' : String(r.body?.reason ?? ''), causes: r.status < 300 ? [] : causes(r.body) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/**
 * An object with what legitimately differs replaced after checking its form: uid (lower-case UUID),
 * resourceVersion (decimal), creationTimestamp and taints' timeAdded (RFC 3339, seconds); managedFields
 * (KNOWN `managed-fields`) dropped.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON
function normalise(obj: any): any {
  const o = structuredClone(obj);
  const m = o.metadata ?? {};
  if (m.uid !== undefined) {
    expect(m.uid).toMatch(UUID);
    m.uid = '<uid>';
  }
  if (m.resourceVersion !== undefined) {
    expect(m.resourceVersion).toMatch(/^\d+$/);
    m.resourceVersion = '<rv>';
  }
  if (m.creationTimestamp !== undefined) {
    expect(m.creationTimestamp).toMatch(RFC3339);
    m.creationTimestamp = '<time>';
  }
  delete m.managedFields;
  for (const d of Array.isArray(o.spec?.devices) ? o.spec.devices : []) {
    for (const t of d.taints ?? []) {
      if (t.timeAdded !== undefined) {
        expect(t.timeAdded).toMatch(RFC3339);
        t.timeAdded = '<time>';
      }
    }
  }
  return o;
}

function slice(name: string, spec: Record<string, unknown> = {}, devices: unknown[] = [{ name: 'gpu-0' }]): Record<string, unknown> {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name },
    spec: { driver: DRIVER, nodeName: NODE, pool: { name: 'p', generation: 0, resourceSliceCount: 1 }, devices, ...spec },
  };
}
const device0 = (d: Record<string, unknown>): unknown[] => [{ name: 'gpu-0', ...d }];
const claim = (name: string, spec: unknown): Record<string, unknown> => ({ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name }, spec });
const exactly = (e: Record<string, unknown>): unknown => ({ devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: DRIVER, ...e } }] } });
const deviceClass = (name: string, spec: unknown): Record<string, unknown> => ({ apiVersion: 'resource.k8s.io/v1', kind: 'DeviceClass', metadata: { name }, spec });

/** Invalid (and a few borderline valid) objects: [what, collection, body, KNOWN id when the servers differ]. */
const VALIDATION_CASES: readonly (readonly [string, string, Record<string, unknown>, KnownId?])[] = [
  ['slice: name not a DNS subdomain', SLICES, slice('Bad_Name')],
  ['slice: no driver', SLICES, slice('v-nodriver', { driver: undefined })],
  ['slice: driver not a DNS subdomain', SLICES, slice('v-baddriver', { driver: 'Gpu_Example' })],
  ['slice: driver over 63 characters', SLICES, slice('v-longdriver', { driver: `${'a'.repeat(64)}.com` })],
  ['slice: upper-case driver (lower-cased before the check)', SLICES, slice('v-upperdriver', { driver: 'GPU.example.com' })],
  ['slice: no pool name', SLICES, slice('v-nopool', { pool: { generation: 0, resourceSliceCount: 1 } })],
  ['slice: pool name parts', SLICES, slice('v-poolparts', { pool: { name: 'a/B_c', generation: 0, resourceSliceCount: 1 } })],
  ['slice: resourceSliceCount 0', SLICES, slice('v-count0', { pool: { name: 'p', generation: 0, resourceSliceCount: 0 } })],
  ['slice: negative pool generation', SLICES, slice('v-neggen', { pool: { name: 'p', generation: -1, resourceSliceCount: 1 } })],
  ['slice: no node selection', SLICES, slice('v-nonode', { nodeName: undefined })],
  ['slice: nodeName and allNodes', SLICES, slice('v-nodeall', { allNodes: true })],
  ['slice: allNodes false', SLICES, slice('v-allfalse', { nodeName: undefined, allNodes: false })],
  ['slice: nodeName not a DNS subdomain', SLICES, slice('v-badnode', { nodeName: 'Node_A' })],
  ['slice: device name not a DNS label', SLICES, slice('v-baddev', {}, [{ name: 'GPU_0' }])],
  ['slice: duplicate device names', SLICES, slice('v-dupdev', {}, [{ name: 'g' }, { name: 'g' }])],
  ['slice: 129 devices', SLICES, slice('v-129', {}, Array.from({ length: 129 }, (_, i) => ({ name: `g${i}` })))],
  ['slice: 65 devices with a taint', SLICES, slice('v-65t', {}, Array.from({ length: 65 }, (_, i) => ({ name: `g${i}`, ...(i === 0 ? { taints: [{ key: 'k', effect: 'NoSchedule' }] } : {}) })))],
  ['slice: attribute name with a space', SLICES, slice('v-badattr', {}, device0({ attributes: { 'Bad Name': { string: 'x' } } }))],
  ['slice: attribute with two values', SLICES, slice('v-attr2', {}, device0({ attributes: { a: { string: 'x', int: 1 } } }))],
  ['slice: attribute without a value', SLICES, slice('v-attr0', {}, device0({ attributes: { a: {} } }))],
  ['slice: string attribute over 64 bytes', SLICES, slice('v-attrlong', {}, device0({ attributes: { a: { string: 'x'.repeat(65) } } }))],
  ['slice: version attribute not semver', SLICES, slice('v-attrver', {}, device0({ attributes: { a: { version: '1.0' } } }))],
  ['slice: 33 attributes', SLICES, slice('v-33', {}, device0({ attributes: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`a${i}`, { int: i }])) }))],
  ['slice: attribute domain over 63', SLICES, slice('v-dom', {}, device0({ attributes: { [`${'a'.repeat(64)}.com/x`]: { int: 1 } } }))],
  ['slice: attribute identifier over 32', SLICES, slice('v-id', {}, device0({ attributes: { ['x'.repeat(33)]: { int: 1 } } }))],
  ['slice: empty attribute domain', SLICES, slice('v-nodom', {}, device0({ attributes: { '/x': { int: 1 } } }))],
  ['slice: capacity not a quantity', SLICES, slice('v-cap', {}, device0({ capacity: { mem: { value: 'lots' } } }))],
  ['slice: capacity name not an identifier', SLICES, slice('v-capname', {}, device0({ capacity: { '9mem': { value: '1Gi' } } }))],
  ['slice: taint effect unknown', SLICES, slice('v-taint', {}, device0({ taints: [{ key: 'k', effect: 'Boom' }] }))],
  ['slice: taint without effect', SLICES, slice('v-taint2', {}, device0({ taints: [{ key: 'k' }] }))],
  ['slice: taint key and value invalid', SLICES, slice('v-taint3', {}, device0({ taints: [{ key: 'a/b/c', value: '-x', effect: 'NoExecute' }] }))],
  ['slice: device nodeName without perDeviceNodeSelection', SLICES, slice('v-devnode', {}, device0({ nodeName: NODE }))],
  ['slice: perDeviceNodeSelection, a device with none', SLICES, slice('v-perdev', { nodeName: undefined, perDeviceNodeSelection: true })],
  ['claim: no requests (valid)', CLAIMS, claim('v-noreq', { devices: { requests: [] } })],
  ['claim: no spec (valid)', CLAIMS, { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name: 'v-nospec' } }],
  ['claim: count 0 (defaulted to 1, valid)', CLAIMS, claim('v-count0', exactly({ count: 0 }))],
  ['claim: empty deviceClassName', CLAIMS, claim('v-noclass', exactly({ deviceClassName: '' }))],
  ['claim: deviceClassName not a DNS subdomain', CLAIMS, claim('v-badclass', exactly({ deviceClassName: 'Bad_Class' }))],
  ['claim: request name not a DNS label', CLAIMS, claim('v-badreq', { devices: { requests: [{ name: 'GPU', exactly: { deviceClassName: 'x' } }] } })],
  ['claim: neither exactly nor firstAvailable', CLAIMS, claim('v-neither', { devices: { requests: [{ name: 'gpu' }] } })],
  ['claim: both exactly and firstAvailable', CLAIMS, claim('v-both', { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'x' }, firstAvailable: [{ name: 'a', deviceClassName: 'x' }] }] } })],
  ['claim: allocationMode unknown', CLAIMS, claim('v-badmode', exactly({ allocationMode: 'Some' }))],
  ['claim: allocationMode All with a count', CLAIMS, claim('v-allcount', exactly({ allocationMode: 'All', count: 2 }))],
  ['claim: negative count', CLAIMS, claim('v-negcount', exactly({ count: -1 }))],
  ['claim: selector without cel', CLAIMS, claim('v-nocel', exactly({ selectors: [{}] }))],
  ['claim: toleration operator unknown', CLAIMS, claim('v-tolop', exactly({ tolerations: [{ key: 'k', operator: 'Maybe' }] }))],
  ['claim: toleration Exists with a value', CLAIMS, claim('v-tolval', exactly({ tolerations: [{ key: 'k', operator: 'Exists', value: 'v' }] }))],
  ['claim: toleration effect unknown', CLAIMS, claim('v-toleff', exactly({ tolerations: [{ key: 'k', effect: 'Boom' }] }))],
  ['claim: duplicate request names', CLAIMS, claim('v-dup', { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'x' } }, { name: 'a', exactly: { deviceClassName: 'x' } }] } })],
  ['claim: duplicate subrequest names', CLAIMS, claim('v-dupsub', { devices: { requests: [{ name: 'a', firstAvailable: [{ name: 's', deviceClassName: 'x' }, { name: 's', deviceClassName: 'x' }] }] } })],
  ['claim: 9 subrequests', CLAIMS, claim('v-9sub', { devices: { requests: [{ name: 'a', firstAvailable: Array.from({ length: 9 }, (_, i) => ({ name: `s${i}`, deviceClassName: 'x' })) }] } })],
  ['claim: constraint naming an unknown request', CLAIMS, claim('v-cons', { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'x' } }], constraints: [{ requests: ['b'], matchAttribute: `${DRIVER}/model` }] } })],
  ['claim: constraint attribute without a domain', CLAIMS, claim('v-cons2', { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'x' } }], constraints: [{ matchAttribute: 'model' }] } })],
  ['claim: constraint without an attribute', CLAIMS, claim('v-cons3', { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'x' } }], constraints: [{ requests: ['a'] }] } })],
  ['claim: config without opaque', CLAIMS, claim('v-cfg', { devices: { requests: [{ name: 'a', exactly: { deviceClassName: 'x' } }], config: [{ requests: ['a'] }] } })],
  ['claim: CEL syntax error', CLAIMS, claim('v-badcel', exactly({ selectors: [{ cel: { expression: 'device.driver ==' } }] })), 'cel'],
  ['claim: CEL not a bool', CLAIMS, claim('v-celint', exactly({ selectors: [{ cel: { expression: '1' } }] })), 'cel'],
  ['template: request with neither', TEMPLATES, { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaimTemplate', metadata: { name: 'v-t1' }, spec: { spec: { devices: { requests: [{ name: 'g' }] } } } }],
  ['class: name not a DNS subdomain', CLASSES, deviceClass('DC_bad', {})],
  ['class: empty selector', CLASSES, deviceClass('v-emptysel', { selectors: [{}] })],
  ['class: config driver invalid', CLASSES, deviceClass('v-cfg', { config: [{ opaque: { driver: 'Bad_Driver', parameters: {} } }] })],
  ['class: 33 selectors', CLASSES, deviceClass('v-33sel', { selectors: Array.from({ length: 33 }, () => ({ cel: { expression: 'true' } })) })],
  ['class: CEL syntax error', CLASSES, deviceClass('v-badcel', { selectors: [{ cel: { expression: 'device.' } }] }), 'cel'],
];

describe.skipIf(unavailable !== undefined)('embedded dev server vs kube-apiserver 1.37.2 (same requests, compared)', () => {
  let cluster: UpstreamCluster;
  let dev: EmbeddedApiServer;
  let devKc: KubeConfig;
  /** [name, client] for the real server first, then the embedded one. */
  let servers: { real: Awaited<ReturnType<typeof rawClient>>; dev: Awaited<ReturnType<typeof rawClient>> };

  /** Send the same request to both: [real, dev]. */
  const both = async (method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<[Reply, Reply]> =>
    [await servers.real.call(method, urlPath, body, headers), await servers.dev.call(method, urlPath, body, headers)];

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    dev = await startApiServer({ nodes: [NODE] });
    devKc = new KubeConfig();
    devKc.loadFromString(dev.kubeconfig());
    servers = { real: await rawClient(cluster.admin), dev: await rawClient(devKc) };
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await dev?.close();
    await cluster?.stop();
  }, 90_000);

  describe('(a) validation', () => {
    const cases = VALIDATION_CASES.map(([what, collection, body, known]) => ({ what, collection, body, known }));
    it.each(cases)('$what', async ({ collection, body, known }) => {
      const [real, embedded] = await both('POST', collection, body);
      const name = String((body['metadata'] as { name: string }).name);
      if (real.status === 201) await servers.real.call('DELETE', `${collection}/${name}`);
      if (embedded.status === 201) await servers.dev.call('DELETE', `${collection}/${name}`);
      if (known === 'cel') {
        // KNOWN cel: the real server compiles the expression and rejects it at the expression's path; the
        // embedded one has no CEL compiler and stores it.
        expect(outcome(real)).toMatchObject({ code: 422, reason: 'Invalid' });
        expect(causes(real.body).every((c) => c.endsWith('.cel.expression'))).toBe(true);
        expect(outcome(embedded)).toEqual({ code: 201, reason: '', causes: [] });
        return;
      }
      expect(outcome(embedded)).toEqual(outcome(real));
    });

    it('names the same fields on update: immutable slice fields, and a claim spec', async () => {
      for (const { call } of [servers.real, servers.dev]) expect((await call('POST', SLICES, slice('u-slice'))).status).toBe(201);
      const cases: [string, (o: Record<string, unknown>) => void][] = [
        ['driver', (o) => ((o['spec'] as Record<string, unknown>)['driver'] = 'other.example.com')],
        ['nodeName', (o) => ((o['spec'] as Record<string, unknown>)['nodeName'] = 'node-b')],
        ['pool name', (o) => ((o['spec'] as { pool: Record<string, unknown> }).pool['name'] = 'q')],
        ['device name', (o) => ((o['spec'] as { devices: Record<string, unknown>[] }).devices[0]!['name'] = 'X')],
      ];
      for (const [what, change] of cases) {
        const results = [];
        for (const { call } of [servers.real, servers.dev]) {
          const cur = (await call('GET', `${SLICES}/u-slice`)).body as Record<string, unknown>;
          change(cur);
          results.push(outcome(await call('PUT', `${SLICES}/u-slice`, cur)));
        }
        expect(results[1], what).toEqual(results[0]);
        expect(results[0]?.code, what).toBe(422);
      }
      for (const { call } of [servers.real, servers.dev]) await call('DELETE', `${SLICES}/u-slice`);

      const [real, embedded] = await both('POST', CLAIMS, claim('u-claim', exactly({})));
      expect([real.status, embedded.status]).toEqual([201, 201]);
      const patch = { spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'other' } }] } } };
      const [r, d] = await both('PATCH', `${CLAIMS}/u-claim`, patch, { 'content-type': 'application/merge-patch+json' });
      expect(outcome(d)).toEqual(outcome(r));
      expect(outcome(r)).toEqual({ code: 422, reason: 'Invalid', causes: ['FieldValueInvalid@spec'] });
      await both('DELETE', `${CLAIMS}/u-claim`);
    });

    it("accepts gpulet's slices (tainted devices included) and stores them alike", async () => {
      const inventory = buildMockInventory(machineSpecByName('dgx-h100'), NODE);
      const built = buildResourceSlices({
        driverName: DEFAULT_DRIVER_NAME,
        nodeName: NODE as DnsSubdomain,
        poolName: poolNameOf(NODE as DnsSubdomain),
        inventory,
        generation: 0,
        // A fatal XID (NoSchedule), an application XID (None) and an unmonitored GPU (None): every taint gpulet makes.
        taints: taintsByUuid(DEFAULT_DRIVER_NAME, new Map([
          [inventory.gpus[0]!.uuid, { xid: { xid: 79, fatal: true, sinceMs: 1_700_000_000_000, lastMs: 1_700_000_000_000 } }],
          [inventory.gpus[1]!.uuid, { xid: { xid: 13, fatal: false, sinceMs: 1_700_000_000_000, lastMs: 1_700_000_000_000 } }],
          [inventory.gpus[2]!.uuid, { unmonitored: { sinceMs: 1_700_000_000_000 } }],
        ])),
      });
      for (const [i, s] of built.entries()) {
        const body = { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice', metadata: { name: `gpulet-${i}`, labels: s.metadata.labels }, spec: s.spec };
        const [real, embedded] = await both('POST', SLICES, body);
        expect([real.status, embedded.status]).toEqual([201, 201]);
        expect(real.body.spec.devices.some((d: { taints?: unknown[] }) => (d.taints ?? []).length > 0)).toBe(true);
        expect(normalise(embedded.body)).toEqual(normalise(real.body));
        await both('DELETE', `${SLICES}/gpulet-${i}`);
      }
    });
  });

  describe('(b) defaults and server-set metadata', () => {
    it('defaults requests, subrequests and tolerations of claims and templates as the scheme does', async () => {
      const spec = {
        devices: {
          requests: [
            { name: 'g', exactly: { deviceClassName: 'x', tolerations: [{ key: 'k' }] } },
            { name: 'all', exactly: { deviceClassName: 'x', allocationMode: 'All' } },
            { name: 'h', firstAvailable: [{ name: 'a', deviceClassName: 'x', tolerations: [{ key: 'k', operator: 'Exists' }] }, { name: 'b', deviceClassName: 'x', count: 2 }] },
          ],
        },
      };
      const [real, embedded] = await both('POST', CLAIMS, { ...claim('d-claim', spec), status: { allocation: { devices: { results: [] } } } });
      expect([real.status, embedded.status]).toEqual([201, 201]);
      expect(normalise(embedded.body)).toEqual(normalise(real.body));
      expect(real.body.spec.devices.requests[0].exactly).toMatchObject({ allocationMode: 'ExactCount', count: 1, tolerations: [{ key: 'k', operator: 'Equal' }] });
      expect(real.body.metadata.generation).toBeUndefined();
      expect(real.body.status).toEqual({});
      await both('DELETE', `${CLAIMS}/d-claim`);

      const template = { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaimTemplate', metadata: { name: 'd-template' }, spec: { spec } };
      const [rt, dt] = await both('POST', TEMPLATES, template);
      expect([rt.status, dt.status]).toEqual([201, 201]);
      expect(normalise(dt.body)).toEqual(normalise(rt.body));
      await both('DELETE', `${TEMPLATES}/d-template`);
    });

    it('sets taint timeAdded, generation 1, and bumps generation only on a spec change; a no-op update writes nothing', async () => {
      const body = slice('d-slice', {}, [{ name: 'g', attributes: { model: { string: 'H100' } }, capacity: { memory: { value: '80Gi' } }, taints: [{ key: 'k', effect: 'NoSchedule' }] }]);
      const [real, embedded] = await both('POST', SLICES, body);
      expect([real.status, embedded.status]).toEqual([201, 201]);
      expect(normalise(embedded.body)).toEqual(normalise(real.body));
      expect(real.body.metadata.generation).toBe(1);
      expect(real.body.spec.devices[0].taints[0].timeAdded).toMatch(RFC3339);
      for (const [i, { call }] of [servers.real, servers.dev].entries()) {
        const created = [real, embedded][i]!.body;
        const same = await call('PUT', `${SLICES}/d-slice`, created);
        expect(same.body.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
        const labelled = await call('PUT', `${SLICES}/d-slice`, { ...created, metadata: { ...created.metadata, labels: { a: 'b' } } });
        expect(labelled.body.metadata.generation).toBe(1);
        const changed = await call('PUT', `${SLICES}/d-slice`, { ...labelled.body, spec: { ...labelled.body.spec, pool: { name: 'p', generation: 1, resourceSliceCount: 1 } } });
        expect(changed.body.metadata.generation).toBe(2);
        expect(Number(changed.body.metadata.resourceVersion)).toBeGreaterThan(Number(labelled.body.metadata.resourceVersion));
      }
      await both('DELETE', `${SLICES}/d-slice`);

      const [rc, dc] = await both('POST', CLASSES, deviceClass('d-class', { selectors: [{ cel: { expression: `device.driver == "${DRIVER}"` } }] }));
      expect(normalise(dc.body)).toEqual(normalise(rc.body));
      expect(rc.body.metadata.generation).toBe(1);
      await both('DELETE', `${CLASSES}/d-class`);
    });

    it('KNOWN managed-fields: only the real server records managedFields', async () => {
      const [real, embedded] = await both('POST', SLICES, slice('k-managed'));
      expect(real.body.metadata.managedFields?.[0]).toMatchObject({ operation: 'Update', fieldsType: 'FieldsV1' });
      expect(embedded.body.metadata.managedFields).toBeUndefined();
      await both('DELETE', `${SLICES}/k-managed`);
    });

    it('KNOWN empty-structs: a claim without spec is `requests: null` on the real server, `{}` on the embedded one', async () => {
      const [real, embedded] = await both('POST', CLAIMS, { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name: 'k-empty' } });
      expect(real.body.spec).toEqual({ devices: { requests: null } });
      expect(embedded.body.spec).toBeUndefined();
      await both('DELETE', `${CLAIMS}/k-empty`);
    });
  });

  describe('(c) the ResourceClaim status subresource', () => {
    it('ignores status on the main resource, and spec and metadata on /status', async () => {
      const [real, embedded] = await both('POST', CLAIMS, claim('s-claim', exactly({})));
      const allocation = { devices: { results: [{ request: 'gpu', driver: DRIVER, pool: 'p', device: 'gpu-0' }] } };
      for (const [i, { call }] of [servers.real, servers.dev].entries()) {
        const created = [real, embedded][i]!.body;
        const main = await call('PUT', `${CLAIMS}/s-claim`, { ...created, status: { allocation } });
        expect(main.status).toBe(200);
        expect(main.body.status).toEqual({});
        expect(main.body.metadata.resourceVersion).toBe(created.metadata.resourceVersion); // nothing changed: no write
        const viaStatus = await call('PUT', `${CLAIMS}/s-claim/status`, { ...created, metadata: { ...created.metadata, labels: { dropped: 'yes' } }, spec: { devices: { requests: [] } }, status: { allocation } });
        expect(viaStatus.status).toBe(200);
        expect(viaStatus.body.status.allocation).toEqual(allocation);
        expect(viaStatus.body.metadata.labels).toBeUndefined();
        expect(viaStatus.body.spec).toEqual(created.spec);
        // (Not reservedFor: the cluster's resourceclaim controller removes entries for pods that do not exist.)
        const devices = [{ driver: DRIVER, pool: 'p', device: 'gpu-0', conditions: [{ type: 'Ready', status: 'True', reason: 'Ok', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] }];
        const patched = await call('PATCH', `${CLAIMS}/s-claim/status`, { metadata: { annotations: { a: 'b' } }, status: { devices } }, { 'content-type': 'application/merge-patch+json' });
        expect(patched.status).toBe(200);
        expect(patched.body.metadata.annotations).toBeUndefined();
        expect(patched.body.status.devices).toEqual(devices);
      }
      const [r, d] = await both('GET', `${CLAIMS}/s-claim`);
      expect(normalise(d.body)).toEqual(normalise(r.body));
      await both('DELETE', `${CLAIMS}/s-claim`);
    });

    it('KNOWN status-validation: reservedFor without an allocation is rejected by the real server only', async () => {
      await both('POST', CLAIMS, claim('k-status', exactly({})));
      const patch = { status: { reservedFor: [{ resource: 'pods', name: 'p', uid: '5264e30b-8f16-44e0-8f30-f02a8a93fb40' }] } };
      const [real, embedded] = await both('PATCH', `${CLAIMS}/k-status/status`, patch, { 'content-type': 'application/merge-patch+json' });
      expect(outcome(real)).toEqual({ code: 422, reason: 'Invalid', causes: ['FieldValueForbidden@status.reservedFor'] });
      expect(embedded.status).toBe(200);
      await both('DELETE', `${CLAIMS}/k-status`);
    });
  });

  describe('(d) watch', () => {
    /** Run the same writes against one server while watches are open; returns the watches' events. */
    async function scenario(srv: Awaited<ReturnType<typeof rawClient>>, queries: readonly string[]): Promise<{ events: WatchEvent[][]; writes: Reply[]; status: number[] }> {
      const l = (name: string, node: string, labels: Record<string, string>): Record<string, unknown> => ({ ...slice(name, { nodeName: node }), metadata: { name, labels } });
      await srv.call('POST', SLICES, l('w0', NODE, { w: 'x' }));
      const rv = String((await srv.call('GET', SLICES)).body.metadata.resourceVersion);
      const streams = await Promise.all(queries.map((q) => srv.watch(`${SLICES}?watch=true&${q.replace('$RV', rv)}`)));
      const writes: Reply[] = [];
      writes.push(await srv.call('POST', SLICES, l('w1', NODE, { w: 'x' })));
      writes.push(await srv.call('POST', SLICES, l('w2', 'node-b', { w: 'x' })));
      const w1 = writes[0]!.body;
      writes.push(await srv.call('PUT', `${SLICES}/w1`, { ...w1, metadata: { ...w1.metadata, labels: { w: 'x', more: 'y' } } }));
      writes.push(await srv.call('PUT', `${SLICES}/w1`, { ...writes[2]!.body, metadata: { ...writes[2]!.body.metadata, labels: { w: 'gone' } } }));
      for (const n of ['w1', 'w2', 'w0']) writes.push(await srv.call('DELETE', `${SLICES}/${n}`));
      const last = writes[writes.length - 1]!.body.metadata.resourceVersion as string;
      // Every stream has seen the last delete (or ended): the node-a and all-slices streams end with w0's DELETED.
      await waitFor(() => streams.every((s, i) => s.status() !== 200 || !queries[i]!.includes('resourceVersion=$RV') || s.events.some((e) => e.object?.metadata?.resourceVersion === last)), {
        what: 'the watches to see the last delete',
      });
      for (const s of streams) s.stop();
      return { events: streams.map((s) => s.events), writes, status: streams.map((s) => s.status()) };
    }

    it('streams the same events: field and label selectors, objects leaving the selector, initial events and their BOOKMARK', async () => {
      const queries = [
        'resourceVersion=$RV&fieldSelector=spec.nodeName%3Dnode-a',
        'resourceVersion=$RV&labelSelector=w%3Dx',
        'resourceVersion=$RV',
        'resourceVersion=$RV&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&labelSelector=w%3Dx',
      ];
      const real = await scenario(servers.real, queries);
      const embedded = await scenario(servers.dev, queries);
      expect(embedded.status).toEqual(real.status);
      const shape = (run: typeof real): string[][] => {
        // resourceVersions as the index of the write that made them (or "list" for the rv the watch began at)
        const rvs = new Map<string, string>(run.writes.map((w, i) => [String(w.body.metadata.resourceVersion), `write${i}`]));
        return run.events.map((evs) => evs.map((e) => `${e.type}:${e.object?.kind}:${e.object?.metadata?.name ?? ''}:${rvs.get(String(e.object?.metadata?.resourceVersion)) ?? 'other'}:${JSON.stringify(e.object?.metadata?.annotations ?? {})}`));
      };
      expect(shape(embedded)).toEqual(shape(real));
      // the label watch: w1 leaves the selector as DELETED
      expect(shape(real)[1]).toContain('DELETED:ResourceSlice:w1:write3:{}');
    });

    it('rejects the same list and watch options', async () => {
      for (const q of [
        '?watch=true&sendInitialEvents=true',
        '?watch=true&resourceVersionMatch=NotOlderThan',
        '?resourceVersion=abc',
        '?sendInitialEvents=true',
        '?resourceVersionMatch=Exact',
        '?fieldSelector=spec.foo%3Dx',
        '?labelSelector=a%3D%3D%3D',
      ]) {
        const [real, embedded] = await both('GET', `${SLICES}${q}`);
        expect(outcome(embedded), q).toEqual(outcome(real));
        expect(real.status, q).toBeGreaterThanOrEqual(400);
      }
    });

    it('KNOWN watch-bad-rv: a non-numeric resourceVersion on a watch is 500 on the real server, 400 on the embedded one', async () => {
      const [real, embedded] = await both('GET', `${SLICES}?watch=true&resourceVersion=abc&timeoutSeconds=1`);
      expect(real.status).toBe(500);
      expect(real.body.message).toContain('strconv.ParseUint');
      expect(outcome(embedded)).toMatchObject({ code: 400, reason: 'BadRequest' });
    });

    it('KNOWN watch-old-rv: a watch from resourceVersion 1 replays history on the real server, is 410 Gone on the embedded one', async () => {
      const real = await servers.real.watch(`${SLICES}?watch=true&resourceVersion=1&timeoutSeconds=1`);
      const embedded = await servers.dev.watch(`${SLICES}?watch=true&resourceVersion=1&timeoutSeconds=1`);
      await waitFor(() => embedded.events.length > 0, { what: 'the embedded watch to answer' });
      await servers.real.call('POST', SLICES, slice('k-oldrv'));
      await waitFor(() => real.events.some((e) => e.object?.metadata?.name === 'k-oldrv'), { what: 'the real watch to stream' });
      expect(real.events.every((e) => e.type !== 'ERROR')).toBe(true);
      expect(embedded.events[0]).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Gone' } });
      real.stop();
      embedded.stop();
      await servers.real.call('DELETE', `${SLICES}/k-oldrv`);
    });
  });

  describe('(e) Table output and kubectl get', () => {
    const columns = (t: { columnDefinitions: { name: string; type: string; format: string; priority: number }[] }): unknown[] =>
      t.columnDefinitions.map(({ name, type, format, priority }) => ({ name, type, format, priority }));
    const rows = (t: { rows: { cells: unknown[]; object: { kind: string } }[] }): unknown[] =>
      t.rows.map((r) => ({ cells: r.cells.map((c) => (typeof c === 'string' && /^\d+s$/.test(c) ? '<age>' : c)), kind: r.object.kind }));

    it('answers the same columns and cells for resourceslices, resourceclaims (pending, allocated) and deviceclasses', async () => {
      await both('POST', SLICES, { ...slice('t-slice'), metadata: { name: 't-slice', labels: { t: 'y' } } });
      await both('POST', CLASSES, { ...deviceClass('t-class', {}), metadata: { name: 't-class', labels: { t: 'y' } } });
      await both('POST', CLAIMS, { ...claim('t-a', exactly({})), metadata: { name: 't-a', labels: { t: 'y' } } });
      await both('POST', CLAIMS, { ...claim('t-b', exactly({})), metadata: { name: 't-b', labels: { t: 'y' } } });
      const allocation = { devices: { results: [{ request: 'gpu', driver: DRIVER, pool: 'p', device: 'gpu-0' }] } };
      // (No reservedFor: the cluster's resourceclaim controller removes entries for pods that do not exist.)
      await both('PATCH', `${CLAIMS}/t-b/status`, { status: { allocation } }, { 'content-type': 'application/merge-patch+json' });
      for (const p of [`${SLICES}?labelSelector=t%3Dy`, `${CLAIMS}?labelSelector=t%3Dy`, `${CLASSES}?labelSelector=t%3Dy`, `${CLAIMS}/t-b`, `${SLICES}/t-slice?includeObject=Object`]) {
        const [real, embedded] = await both('GET', p, undefined, { accept: TABLE });
        expect(embedded.body.kind, p).toBe('Table');
        expect(columns(embedded.body), p).toEqual(columns(real.body));
        expect(rows(embedded.body), p).toEqual(rows(real.body));
        expect(Object.keys(embedded.body.metadata), p).toEqual(Object.keys(real.body.metadata));
      }
      const [real] = await both('GET', `${CLAIMS}?labelSelector=t%3Dy`, undefined, { accept: TABLE });
      expect(rows(real.body).map((r) => (r as { cells: unknown[] }).cells[1])).toEqual(['pending', 'allocated']);
    });

    it('KNOWN table-descriptions: the column names agree, the descriptions are shortened', async () => {
      const [real, embedded] = await both('GET', SLICES, undefined, { accept: TABLE });
      expect(embedded.body.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(real.body.columnDefinitions.map((c: { name: string }) => c.name));
      expect(embedded.body.columnDefinitions[1].description).not.toBe(real.body.columnDefinitions[1].description);
    });

    it('prints the same `kubectl get` and `kubectl apply` output (when kubectl is installed)', async (ctx) => {
      const kubectl = await promisify(execFile)('kubectl', ['version', '--client']).then(() => true, () => false);
      if (!kubectl) ctx.skip();
      const dir = await mkdtemp(path.join(tmpdir(), 'gpulet-parity-'));
      try {
        const devConfig = path.join(dir, 'dev.kubeconfig');
        await writeFile(devConfig, dev.kubeconfig());
        const manifest = path.join(dir, 'claim.yaml');
        await writeFile(manifest, JSON.stringify(claim('t-apply', exactly({ count: 1 }))));
        const run = async (config: string, ...args: string[]): Promise<string> => (await promisify(execFile)('kubectl', ['--kubeconfig', config, '-n', 'default', ...args])).stdout;
        const ages = (s: string): string => s.replace(/\b\d+s\b/g, '<age>');
        for (const args of [
          ['apply', '-f', manifest],
          ['apply', '-f', manifest],
          ['get', 'resourceslices', '-l', 't=y'],
          ['get', 'resourceclaims', '-l', 't=y'],
          ['get', 'deviceclasses', '-l', 't=y'],
          ['get', 'resourceclaim', 't-apply', '-o', 'jsonpath={.spec.devices.requests[0].exactly}'],
          ['delete', '-f', manifest],
        ]) {
          expect(ages(await run(devConfig, ...args)), args.join(' ')).toBe(ages(await run(cluster.kubeconfig, ...args)));
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('(f) errors, pagination and delete collection', () => {
    it('answers the same 404, 409 and 422 Status bodies', async () => {
      await both('POST', CLAIMS, claim('f-claim', exactly({})));
      const requests: [string, string, unknown?][] = [
        ['GET', `${CLAIMS}/nope`],
        ['DELETE', `${SLICES}/nope`],
        ['GET', `${CLASSES}/nope`],
        ['POST', CLAIMS, claim('f-claim', exactly({}))],
        ['PUT', `${CLAIMS}/f-claim`, { ...claim('f-claim', exactly({})), metadata: { name: 'f-claim', resourceVersion: '1' } }],
        ['DELETE', `${CLAIMS}/f-claim`, { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } }],
        ['POST', SLICES, slice('f-bad', { driver: '' })],
      ];
      for (const [method, p, body] of requests) {
        const [real, embedded] = await both(method, p, body);
        const strip = (b: Record<string, unknown>): unknown => ({ ...b, message: String(b['message']).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uid>') });
        expect(strip(embedded.body), `${method} ${p}`).toEqual(strip(real.body));
      }
      await both('DELETE', `${CLAIMS}/f-claim`);
    });

    it('paginates with limit and continue, and deletes a collection by label', async () => {
      for (let i = 0; i < 5; i++) await both('POST', SLICES, { ...slice(`pg-${i}`), metadata: { name: `pg-${i}`, labels: { pg: 'yes' } } });
      for (const selector of ['&labelSelector=pg%3Dyes', '']) {
        const pages: [string[], string[]] = [[], []];
        const shapes: [unknown[], unknown[]] = [[], []];
        for (const [i, { call }] of [servers.real, servers.dev].entries()) {
          let token = '';
          do {
            const r = await call('GET', `${SLICES}?limit=2${selector}${token === '' ? '' : `&continue=${encodeURIComponent(token)}`}`);
            expect(r.status).toBe(200);
            pages[i]!.push(...r.body.items.map((o: { metadata: { name: string } }) => o.metadata.name));
            shapes[i]!.push({ n: r.body.items.length, keys: Object.keys(r.body.metadata).sort(), remaining: r.body.metadata.remainingItemCount });
            token = r.body.metadata.continue ?? '';
          } while (token !== '');
        }
        expect(pages[1]).toEqual(pages[0]);
        expect(shapes[1]).toEqual(shapes[0]);
      }
      const [badReal, badDev] = await both('GET', `${SLICES}?limit=1&continue=garbage`);
      expect(outcome(badDev)).toEqual(outcome(badReal));

      const [real, embedded] = await both('DELETE', `${SLICES}?labelSelector=pg%3Dyes`);
      expect([real.status, embedded.status]).toEqual([200, 200]);
      expect(embedded.body.kind).toBe(real.body.kind);
      const names = (r: Reply): string[] => (r.body.items as { metadata: { name: string } }[]).map((o) => o.metadata.name).sort();
      expect(names(embedded)).toEqual(names(real));
      const [after, afterDev] = await both('GET', `${SLICES}?labelSelector=pg%3Dyes`);
      expect([after.body.items.length, afterDev.body.items.length]).toEqual([0, 0]);
    });

    it('KNOWN list-item-typemeta: list items carry apiVersion and kind on the embedded server only', async () => {
      await both('POST', SLICES, slice('k-typemeta'));
      const [real, embedded] = await both('GET', `${SLICES}?fieldSelector=metadata.name%3Dk-typemeta`);
      expect(real.body.items[0].kind).toBeUndefined();
      expect(embedded.body.items[0].kind).toBe('ResourceSlice');
      await both('DELETE', `${SLICES}/k-typemeta`);
    });

    it('KNOWN continue-snapshot: an object created between pages shows on the embedded server only', async () => {
      for (let i = 0; i < 3; i++) await both('POST', SLICES, { ...slice(`cs-${i}`), metadata: { name: `cs-${i}`, labels: { cs: 'yes' } } });
      const seen: string[][] = [];
      for (const { call } of [servers.real, servers.dev]) {
        const first = await call('GET', `${SLICES}?limit=2&labelSelector=cs%3Dyes`);
        await call('POST', SLICES, { ...slice('cs-9'), metadata: { name: 'cs-9', labels: { cs: 'yes' } } });
        const rest = await call('GET', `${SLICES}?limit=10&labelSelector=cs%3Dyes&continue=${encodeURIComponent(first.body.metadata.continue)}`);
        seen.push(rest.body.items.map((o: { metadata: { name: string } }) => o.metadata.name));
      }
      expect(seen).toEqual([['cs-2'], ['cs-2', 'cs-9']]);
      await both('DELETE', `${SLICES}?labelSelector=cs%3Dyes`);
    });
  });

  it('README lists exactly the KNOWN differences', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('### Embedded dev server vs kube-apiserver');
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n## ', start));
    const ids = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect(ids.sort()).toEqual(Object.keys(KNOWN).sort());
  });
});
