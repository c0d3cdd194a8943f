/**
 * Error paths of the embedded API server: injected 500/409/429/drop reach real clients as errors and the server
 * keeps serving; bad input (malformed JSON, bad names, unknown namespaces, unknown paths) gets a `Status`
 * (apimachinery `metav1.Status`: kind Status, status Failure, reason, code) instead of a crash; close() ends
 * watches and is idempotent; the request log records what happened; a test can be told when a request arrives
 * and hold it in flight.
 */
import * as k8s from '@kubernetes/client-node';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../../dev/apiserver/server.js';
import { deferred, waitFor } from '../../helpers/wait.js';

const SLICES = '/apis/resource.k8s.io/v1/resourceslices';

function sliceBody(name: string): string {
  return JSON.stringify({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name },
    spec: { driver: 'gpu.gpulet.dev', nodeName: 'n1', pool: { name: 'n1', generation: 1, resourceSliceCount: 1 }, devices: [] },
  });
}

describe('embedded API server faults and bad input', () => {
  let server: EmbeddedApiServer;
  let core: k8s.CoreV1Api;

  beforeEach(async () => {
    server = await startApiServer({ nodes: ['n1'] });
    const kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig());
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  afterEach(async () => {
    await server.close();
  });

  it('answers injected 500 as an InternalError Status, then serves normally', async () => {
    server.injectFault({ method: 'GET', pathIncludes: '/api/v1/nodes', status: 500, times: 1 });
    const err = await core.listNode().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(k8s.ApiException);
    expect((err as k8s.ApiException<string>).code).toBe(500);
    expect(JSON.parse(String((err as k8s.ApiException<string>).body))).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 });
    expect((await core.listNode()).items).toHaveLength(1);
  });

  it('answers injected 429 with Retry-After and 409 as Conflict, matching only the rule', async () => {
    const remove = server.injectFault({ method: 'POST', status: 429 });
    server.injectFault({ method: 'PUT', status: 409, times: 2 });
    const r429 = await fetch(`${server.url}${SLICES}`, { method: 'POST', body: sliceBody('s1'), headers: { 'content-type': 'application/json' } });
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('1');
    expect(await r429.json()).toMatchObject({ reason: 'TooManyRequests', code: 429, details: { retryAfterSeconds: 1 } });
    expect((await fetch(`${server.url}/api/v1/nodes`)).status).toBe(200);
    remove();
    const created = await fetch(`${server.url}${SLICES}`, { method: 'POST', body: sliceBody('s1'), headers: { 'content-type': 'application/json' } });
    expect(created.status).toBe(201);
    const put = (): Promise<Response> => fetch(`${server.url}${SLICES}/s1`, { method: 'PUT', body: sliceBody('s1'), headers: { 'content-type': 'application/json' } });
    expect((await put()).status).toBe(409);
    expect(((await (await put()).json()) as { reason: string }).reason).toBe('Conflict');
    expect((await put()).status).toBe(200);
  });

  it('drops the connection without an answer when asked, and keeps serving', async () => {
    server.injectFault({ pathIncludes: '/api/v1/nodes', drop: true, times: 1 });
    await expect(core.listNode()).rejects.toThrow();
    expect((await core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
    const statuses = server.requests.filter((r) => r.path === '/api/v1/nodes').map((r) => r.status);
    expect(statuses).toEqual([0, 200]);
  });

  it('delays a request and still answers it', async () => {
    server.injectFault({ pathIncludes: '/version', delayMs: 50, times: 1 });
    const res = await fetch(`${server.url}/version`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { major: string }).major).toBe('1');
  });

  it('tells a test when a request arrives and holds it until released, then answers it', async () => {
    const arrived = deferred<{ readonly method: string; readonly path: string }>();
    const release = deferred();
    server.injectFault({ pathIncludes: '/version', times: 1, arrived: (r) => arrived.resolve(r), holdUntil: release.promise });
    let answered = false;
    const res = fetch(`${server.url}/version`).then((r) => {
      answered = true;
      return r;
    });
    expect(await arrived.promise).toEqual({ method: 'GET', path: '/version' });
    // Held: the client has no answer and the request log (which records answers) has no entry yet.
    expect(answered).toBe(false);
    expect(server.requests.filter((r) => r.path === '/version')).toEqual([]);
    release.resolve();
    expect((await res).status).toBe(200);
    expect(server.requests.filter((r) => r.path === '/version').map((r) => r.status)).toEqual([200]);
  });

  it('answers malformed and invalid bodies with 400/422 Status objects', async () => {
    const post = (path: string, body: string, contentType = 'application/json'): Promise<Response> =>
      fetch(`${server.url}${path}`, { method: 'POST', body, headers: { 'content-type': contentType } });
    const malformed = await post(SLICES, '{"apiVersion": "resource.k8s.io/v1", ');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'BadRequest', code: 400 });
    const empty = await post(SLICES, '');
    expect(empty.status).toBe(400);
    const array = await post(SLICES, '[1,2]');
    expect(array.status).toBe(400);
    const badName = await post(SLICES, sliceBody('Not_A_DNS_Name'));
    expect(badName.status).toBe(422);
    expect(await badName.json()).toMatchObject({ reason: 'Invalid', details: { causes: [{ field: 'metadata.name' }] } });
    const noName = await post(SLICES, JSON.stringify({ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice', metadata: {} }));
    expect(noName.status).toBe(422);
    const wrongKind = await post(SLICES, JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }));
    expect(wrongKind.status).toBe(400);
    const noNamespace = await post('/apis/resource.k8s.io/v1/namespaces/missing/resourceclaims', JSON.stringify({ metadata: { name: 'c' }, spec: {} }));
    expect(noNamespace.status).toBe(404);
    expect(((await noNamespace.json()) as { message: string }).message).toBe('namespaces "missing" not found');
    const dup = await post(SLICES, sliceBody('dup'));
    expect(dup.status).toBe(201);
    const again = await post(SLICES, sliceBody('dup'));
    expect(again.status).toBe(409);
    expect(((await again.json()) as { reason: string }).reason).toBe('AlreadyExists');
    const badPatch = await fetch(`${server.url}${SLICES}/dup`, { method: 'PATCH', body: '{', headers: { 'content-type': 'application/merge-patch+json' } });
    expect(badPatch.status).toBe(400);
    const badType = await fetch(`${server.url}${SLICES}/dup`, { method: 'PATCH', body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(badType.status).toBe(415);
    const unknownPath = await fetch(`${server.url}/apis/resource.k8s.io/v1/widgets`);
    expect(unknownPath.status).toBe(404);
    expect(((await unknownPath.json()) as { kind: string }).kind).toBe('Status');
    const method = await fetch(`${server.url}${SLICES}`, { method: 'PUT', body: '{}' });
    expect(method.status).toBe(405);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('answers an oversized body with 413 and survives clients that reset mid-request', async () => {
    const big = await fetch(`${server.url}${SLICES}`, { method: 'POST', body: 'x'.repeat(4 * 1024 * 1024), headers: { 'content-type': 'application/json' } });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { reason: string }).reason).toBe('RequestEntityTooLarge');
    const { port, hostname } = new URL(server.url);
    // Reset the connection once the server is handling the request (reading its body), not before.
    const handling = deferred();
    server.injectFault({ method: 'POST', pathIncludes: SLICES, times: 1, arrived: () => handling.resolve() });
    await new Promise<void>((resolve) => {
      const sock = connect(Number(port), hostname, () => {
        sock.write(`POST ${SLICES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion":`);
        void handling.promise.then(() => sock.resetAndDestroy());
      });
      sock.on('close', () => resolve());
      sock.on('error', () => undefined);
    });
    // The server saw the request cut off mid-body and logged it unanswered (status 0).
    await waitFor(() => server.requests.some((r) => r.method === 'POST' && r.path === SLICES && r.status === 0), { what: 'the reset POST in the request log' });
    await new Promise<void>((resolve) => {
      const sock = connect(Number(port), hostname, () => sock.end('NOT HTTP AT ALL\r\n\r\n'));
      sock.on('close', () => resolve());
      sock.on('error', () => undefined);
    });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(server.list('resource.k8s.io/v1', 'ResourceSlice')).toEqual([]);
  });

  it('records requests (method, path, query, status) and forgets them on clearRequests', async () => {
    server.clearRequests();
    await fetch(`${server.url}${SLICES}?fieldSelector=spec.nodeName%3Dn1&limit=5`);
    await fetch(`${server.url}${SLICES}/nope`);
    expect(server.requests.map(({ method, path, query, status }) => ({ method, path, query, status }))).toEqual([
      { method: 'GET', path: SLICES, query: 'fieldSelector=spec.nodeName%3Dn1&limit=5', status: 200 },
      { method: 'GET', path: `${SLICES}/nope`, status: 404, query: '' },
    ]);
    server.clearRequests();
    expect(server.requests).toHaveLength(0);
  });

  it('ends open watches on close(), and close() is idempotent', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig());
    let ended!: () => void;
    const done = new Promise<void>((resolve) => {
      ended = resolve;
    });
    await new k8s.Watch(kc).watch(SLICES, {}, () => undefined, () => ended());
    await Promise.all([server.close(), server.close()]);
    await done;
    await server.close();
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});
