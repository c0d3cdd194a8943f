/**
 * The kubelet plugin over real unix sockets, exercised with grpc-js clients generated at run time from the
 * proto files (grpc.loadPackageDefinition), as a kubelet built from the same upstream protos would be.
 * Facts: docs/contracts.md §1–2 (kubernetes/kubelet pkg/apis/pluginregistration/v1, dra/v1, dra/v1beta1).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeletPlugin, type KubeletPlugin } from '../../../src/dra/kubelet/plugin.js';
import { protoRoot } from '../../../src/dra/kubelet/grpc-protos.js';
import { silentLogger } from '../../../src/log.js';
import { claimRef, driverName } from '../../helpers/names.js';
import { InMemoryPreparer } from '../../../dev/kubelet/fake-preparer.js';
import type { ClaimRef } from '../../../src/model/types.js';

type Callback = (err: grpc.ServiceError | null, res: unknown) => void;
type GeneratedClient = grpc.Client & Record<string, (req: unknown, opts: grpc.CallOptions, cb: Callback) => void>;

/** A client generated from `file` for service `fullName` (dotted), dialled to `socket`. */
function generatedClient(file: string, fullName: string, socket: string): GeneratedClient {
  const def = protoLoader.loadSync(file, { includeDirs: [protoRoot()], keepCase: true, defaults: true, oneofs: true, longs: Number, enums: String });
  let node: unknown = grpc.loadPackageDefinition(def);
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)[part];
  const Ctor = node as grpc.ServiceClientConstructor;
  return new Ctor(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as GeneratedClient;
}

function call<T>(client: GeneratedClient, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = client[method];
    if (!fn) throw new Error(`no method ${method}`);
    fn.call(client, req, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

interface PrepareResponse {
  claims: Record<string, { devices: Record<string, unknown>[]; error: string }>;
}
interface UnprepareResponse {
  claims: Record<string, { error: string }>;
}

const UID_A = '0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0001';
const UID_B = '0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0002';
const claimA: ClaimRef = claimRef({ namespace: 'default', name: 'claim-a', uid: UID_A });
const claimB: ClaimRef = claimRef({ namespace: 'team-b', name: 'claim-b.x', uid: UID_B });

let dir: string;
let plugin: KubeletPlugin | undefined;
let preparer: InMemoryPreparer;
const clients: grpc.Client[] = [];
const registrations: [boolean, string | undefined][] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-kp-'));
  registrations.length = 0;
  preparer = new InMemoryPreparer({
    devicesFor: (c) => [
      { requestNames: ['gpu'], poolName: 'node-a', deviceName: 'gpu-0', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${c.uid}-gpu-0`] },
      { requestNames: ['shared'], poolName: 'node-a', deviceName: 'gpu-1', cdiDeviceIds: [], shareId: 'share-7' },
    ],
  });
  plugin = await startKubeletPlugin({
    driverName: driverName('gpu.gpulet.dev'),
    registryDir: path.join(dir, 'plugins_registry'),
    pluginsDir: path.join(dir, 'plugins'),
    preparer,
    logger: silentLogger(),
    onRegistered: (ok, err) => registrations.push([ok, err]),
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await plugin?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

function dra(version: 'v1' | 'v1beta1'): GeneratedClient {
  const c = generatedClient(`dra/${version}/api.proto`, `k8s.io.kubelet.pkg.apis.dra.${version}.DRAPlugin`, plugin!.draSocket);
  clients.push(c);
  return c;
}

describe('Registration service', () => {
  it('GetInfo answers type, name, absolute socket endpoint and versions (v1 first)', async () => {
    const reg = generatedClient('pluginregistration/v1/api.proto', 'pluginregistration.Registration', plugin!.registrationSocket);
    clients.push(reg);
    const info = await call<{ type: string; name: string; endpoint: string; supported_versions: string[] }>(reg, 'GetInfo', {});
    expect(info.type).toBe('DRAPlugin');
    expect(info.name).toBe('gpu.gpulet.dev');
    expect(path.isAbsolute(info.endpoint)).toBe(true);
    expect(info.endpoint).toBe(path.join(dir, 'plugins', 'gpu.gpulet.dev', 'dra.sock'));
    expect((await fs.lstat(info.endpoint)).isSocket()).toBe(true);
    expect(info.supported_versions).toEqual(['v1.DRAPlugin', 'v1beta1.DRAPlugin']); // no health source given
    expect(plugin!.registrationSocket).toBe(path.join(dir, 'plugins_registry', 'gpu.gpulet.dev-reg.sock'));
  });

  it('NotifyRegistrationStatus fires onRegistered each time, with the error on failure', async () => {
    const reg = generatedClient('pluginregistration/v1/api.proto', 'pluginregistration.Registration', plugin!.registrationSocket);
    clients.push(reg);
    expect(plugin!.registration().registered).toBeUndefined();
    await call(reg, 'NotifyRegistrationStatus', { plugin_registered: true, error: '' });
    await call(reg, 'NotifyRegistrationStatus', { plugin_registered: false, error: 'version mismatch' });
    await call(reg, 'NotifyRegistrationStatus', { plugin_registered: true });
    expect(registrations).toEqual([[true, undefined], [false, 'version mismatch'], [true, undefined]]);
    expect(plugin!.registration()).toEqual({ registered: true, error: '', notifications: 3 });
  });
});

describe.each(['v1', 'v1beta1'] as const)('DRAPlugin %s', (version) => {
  it('prepare/unprepare round trip reaches the preparer and maps devices', async () => {
    const c = dra(version);
    const res = await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [claimA, claimB] });
    expect(Object.keys(res.claims).sort()).toEqual([UID_A, UID_B]);
    const a = res.claims[UID_A]!;
    expect(a.error).toBe('');
    expect(a.devices[0]).toMatchObject({ request_names: ['gpu'], pool_name: 'node-a', device_name: 'gpu-0', cdi_device_ids: [`k8s.gpu.gpulet.dev/claim=${UID_A}-gpu-0`] });
    expect(a.devices[0]).not.toHaveProperty('share_id');
    if (version === 'v1') expect(a.devices[1]).toHaveProperty('share_id', 'share-7');
    else expect(a.devices[1]).not.toHaveProperty('share_id');
    expect(preparer.calls).toEqual([{ op: 'prepare', claims: [claimA, claimB] }]);

    const un = await call<UnprepareResponse>(c, 'NodeUnprepareResources', { claims: [claimA, claimB] });
    expect(un.claims).toEqual({ [UID_A]: { error: '' }, [UID_B]: { error: '' } });
    expect(preparer.calls[1]).toEqual({ op: 'unprepare', claims: [claimA, claimB] });
    expect(preparer.prepared.size).toBe(0);
  });

  it('an empty claim list gets an empty map and does not call the preparer', async () => {
    const c = dra(version);
    expect(await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [] })).toEqual({ claims: {} });
    expect(await call<UnprepareResponse>(c, 'NodeUnprepareResources', {})).toEqual({ claims: {} });
    expect(preparer.calls).toEqual([]);
  });

  it('a rejecting preparer yields a per-claim error for every claim, and the server keeps serving', async () => {
    const c = dra(version);
    preparer.rejectWith = new Error('checkpoint unwritable');
    const res = await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [claimA, claimB] });
    for (const uid of [UID_A, UID_B]) {
      expect(res.claims[uid]?.error).toContain('checkpoint unwritable');
      expect(res.claims[uid]?.devices).toEqual([]);
    }
    const un = await call<UnprepareResponse>(c, 'NodeUnprepareResources', { claims: [claimA] });
    expect(un.claims[UID_A]?.error).toContain('checkpoint unwritable');
    preparer.rejectWith = undefined;
    const ok = await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [claimA] });
    expect(ok.claims[UID_A]?.error).toBe('');
  });

  it('invalid claim fields give a per-claim error naming the field; valid claims still prepare', async () => {
    const c = dra(version);
    // Claim UIDs are object UIDs as the API server issues them (lower-case UUIDs): a well-formed UID for the
    // cases where another field is at fault, so the error names that field.
    const uid = (n: number): string => `0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a${String(n).padStart(4, '0')}`;
    const bad = [
      { namespace: 'default', name: 'x', uid: '' },
      { namespace: '', name: 'x', uid: uid(11) },
      { namespace: 'default', name: '', uid: uid(12) },
      { namespace: 'Bad_NS', name: 'x', uid: uid(13) },
      { namespace: 'default', name: 'n'.repeat(254), uid: uid(14) },
      { namespace: 'default', name: 'x', uid: '../../etc' },
      { namespace: 'default', name: 'x', uid: 'u-not-a-uuid' },
      { namespace: 'default', name: 'x', uid: uid(15).toUpperCase() },
    ];
    const res = await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [...bad, claimA] });
    expect(res.claims['']?.error).toMatch(/"uid"/);
    expect(res.claims[uid(11)]?.error).toMatch(/"namespace"/);
    expect(res.claims[uid(12)]?.error).toMatch(/"name"/);
    expect(res.claims[uid(13)]?.error).toMatch(/"namespace".*DNS label/);
    expect(res.claims[uid(14)]?.error).toMatch(/"name".*253/);
    expect(res.claims['../../etc']?.error).toMatch(/"uid".*lower-case UUID/);
    expect(res.claims['u-not-a-uuid']?.error).toMatch(/"uid".*lower-case UUID/);
    expect(res.claims[uid(15).toUpperCase()]?.error).toMatch(/"uid".*lower-case UUID/);
    expect(res.claims[UID_A]?.error).toBe('');
    expect(preparer.calls).toEqual([{ op: 'prepare', claims: [claimA] }]);
  });

  it('invalid claim fields on unprepare give a per-claim error too; only valid claims reach the preparer', async () => {
    const c = dra(version);
    const bad = [
      { namespace: 'default', name: 'x', uid: 'not-a-uuid' },
      { namespace: 'default', name: 'x', uid: '../../etc' },
      { namespace: '', name: '', uid: '0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0021' },
    ];
    const un = await call<UnprepareResponse>(c, 'NodeUnprepareResources', { claims: [...bad, claimB] });
    expect(un.claims['not-a-uuid']?.error).toMatch(/claims\[0\]\): field "uid" is not a claim UID/);
    expect(un.claims['../../etc']?.error).toMatch(/claims\[1\]\): field "uid" is not a claim UID/);
    expect(un.claims['0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0021']?.error).toMatch(/claims\[2\]\): field "namespace" must be a non-empty string/);
    expect(un.claims[UID_B]).toEqual({ error: '' });
    expect(preparer.calls).toEqual([{ op: 'unprepare', claims: [claimB] }]);
  });

  it('unprepare of a claim never prepared succeeds (the preparer says so)', async () => {
    const c = dra(version);
    const un = await call<UnprepareResponse>(c, 'NodeUnprepareResources', { claims: [claimB] });
    expect(un.claims).toEqual({ [UID_B]: { error: '' } });
  });

  it('a claim the preparer forgets still gets an error entry (kubelet retries)', async () => {
    const forgetful = { ...preparer, prepare: () => Promise.resolve(new Map()), unprepare: () => Promise.resolve(new Map()) };
    await plugin!.stop();
    plugin = await startKubeletPlugin({ driverName: driverName('gpu.gpulet.dev'), registryDir: path.join(dir, 'r'), pluginsDir: path.join(dir, 'p'), preparer: forgetful, logger: silentLogger() });
    const c = dra(version);
    const res = await call<PrepareResponse>(c, 'NodePrepareResources', { claims: [claimA] });
    expect(res.claims[UID_A]?.error).toMatch(/no result/);
    const un = await call<UnprepareResponse>(c, 'NodeUnprepareResources', { claims: [claimA] });
    expect(un.claims[UID_A]?.error).toMatch(/no result/);
  });
});
