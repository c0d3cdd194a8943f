/**
 * The DRAPlugin service under hostile requests (issue 9 item 4), over the real unix socket with a client
 * generated from the upstream-checked proto: a request naming more claims than the bound is refused with
 * INVALID_ARGUMENT before any claim is looked at; one at the bound is answered claim by claim; a claim with a
 * 3 MB UID is answered with an error and every log line stays small.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InMemoryPreparer } from '../../../dev/kubelet/fake-preparer.js';
import { dialUnix, unaryCall } from '../../../dev/kubelet/grpc-client.js';
import { loadKubeletServices, type WireClaim, type WirePrepareResponse, type WireUnprepareResponse } from '../../../src/dra/kubelet/grpc-protos.js';
import { MAX_CLAIMS_PER_REQUEST } from '../../../src/dra/kubelet/grpc-dra-mapping.js';
import { startKubeletPlugin, type KubeletPlugin } from '../../../src/dra/kubelet/plugin.js';
import { createLogger } from '../../../src/log.js';
import { driverName } from '../../helpers/names.js';

let dir: string;
let plugin: KubeletPlugin | undefined;
let preparer: InMemoryPreparer;
let conn: grpc.Client | undefined;
const services = loadKubeletServices();
/** The kubelet's two calls over the plugin's DRA socket, v1. */
const client = {
  prepare: (claims: WireClaim[]): Promise<WirePrepareResponse> => unaryCall(conn!, services.dra.v1.NodePrepareResources, { claims }, 45_000),
  unprepare: (claims: WireClaim[]): Promise<WireUnprepareResponse> => unaryCall(conn!, services.dra.v1.NodeUnprepareResources, { claims }, 45_000),
};
const lines: string[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-dra-svc-'));
  lines.length = 0;
  preparer = new InMemoryPreparer({ devicesFor: (c) => [{ requestNames: ['gpu'], poolName: 'node-a', deviceName: 'gpu-0', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${c.uid}-gpu-0`] }] });
  plugin = await startKubeletPlugin({
    driverName: driverName('gpu.gpulet.dev'),
    registryDir: path.join(dir, 'plugins_registry'),
    pluginsDir: path.join(dir, 'plugins'),
    preparer,
    logger: createLogger('debug', { write: (s: string) => void lines.push(s) }),
    onRegistered: () => undefined,
  });
  conn = dialUnix(plugin.draSocket);
});

afterEach(async () => {
  conn?.close();
  await plugin?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

const uid = (i: number): string => `0b6f2c1e-5d1a-4c39-9a57-${i.toString(16).padStart(12, '0')}`;
const claims = (n: number) => Array.from({ length: n }, (_, i) => ({ namespace: 'ml', name: `c-${i}`, uid: uid(i) }));

describe('DRAPlugin service bounds', () => {
  it('refuses a request naming more claims than the bound with INVALID_ARGUMENT, preparing none', async () => {
    const err = await client.prepare(claims(MAX_CLAIMS_PER_REQUEST + 1)).then(
      () => undefined,
      (e: unknown) => e as grpc.ServiceError,
    );
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toContain(`${MAX_CLAIMS_PER_REQUEST + 1} claims, more than the ${MAX_CLAIMS_PER_REQUEST}`);
    expect(preparer.prepared.size).toBe(0);
    // 10,000 claims (~0.5 MB: below gRPC's 4 MiB message limit, which refuses larger requests by itself).
    const unprepare = await client.unprepare(claims(10_000)).then(() => undefined, (e: unknown) => e as grpc.ServiceError);
    expect(unprepare?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(unprepare?.details).toContain('NodeUnprepareResources: the request names 10000 claims');
  });

  it('answers a request at the bound claim by claim', async () => {
    const res = await client.prepare(claims(MAX_CLAIMS_PER_REQUEST));
    expect(Object.keys(res.claims)).toHaveLength(MAX_CLAIMS_PER_REQUEST);
    expect(Object.values(res.claims).every((c) => c.error === '' && c.devices.length === 1)).toBe(true);
  });

  it('answers a 3 MB claim UID with an error and writes no log line longer than a few KB', async () => {
    const huge = 'x'.repeat(3 * 1024 * 1024);
    const res = await client.prepare([{ namespace: 'ml', name: 'big', uid: huge }, ...claims(1)]);
    expect(res.claims[huge]?.error).toMatch(/field "uid"/);
    expect(res.claims[uid(0)]?.error).toBe('');
    expect(lines.length).toBeGreaterThan(0);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(4096);
  });
});
