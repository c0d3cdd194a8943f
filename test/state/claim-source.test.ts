/**
 * KubeClaimSource through the real @kubernetes/client-node against a real HTTP server on a free port:
 * the GET path of resource.k8s.io/v1, and the mapping of 404 / 403 / 5xx / connection refused to typed
 * ApiErrors with retry hints.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { KubeClaimSource } from '../../src/state/claim-source.js';
import { allocatedClaim, newRef } from '../helpers/claims.js';

const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('KubeClaimSource', () => {
  const ref = newRef('train', 'ml');
  const claim = allocatedClaim(ref, [{ device: 'gpu-0', request: 'gpu/sub' }], { reservedFor: [{ resource: 'pods', name: 'p', uid: 'pu' }] });
  const seen: string[] = [];
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(`${req.method} ${req.url}`);
      const send = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/apis/resource.k8s.io/v1/namespaces/ml/resourceclaims/train') return send(200, claim);
      if (req.url?.endsWith('/forbidden')) return send(403, status(403, 'Forbidden', 'resourceclaims is forbidden'));
      if (req.url?.endsWith('/broken')) return send(503, status(503, 'ServiceUnavailable', 'etcd down'));
      return send(404, status(404, 'NotFound', 'resourceclaims.resource.k8s.io "gone" not found'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('GETs the v1 claim and returns its metadata and status', async () => {
    const got = await new KubeClaimSource(kubeconfig(url)).get('ml', 'train');
    expect(seen).toContain('GET /apis/resource.k8s.io/v1/namespaces/ml/resourceclaims/train');
    expect(got.metadata?.uid).toBe(ref.uid);
    expect(JSON.parse(JSON.stringify(got.status))).toEqual(JSON.parse(JSON.stringify(claim.status)));
  });

  it('maps 404 to a not-found ApiError', async () => {
    const err = await new KubeClaimSource(kubeconfig(url)).get('ml', 'gone').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(404);
    expect((err as Error).message).toMatch(/resourceclaim ml\/gone not found \(HTTP 404\)/);
  });

  it('maps 403 to an RBAC hint and 5xx to a retryable error', async () => {
    const forbidden = (await new KubeClaimSource(kubeconfig(url)).get('ml', 'forbidden').catch((e: unknown) => e)) as ApiError;
    expect(forbidden.status).toBe(403);
    expect(forbidden.message).toContain('RBAC');
    const broken = (await new KubeClaimSource(kubeconfig(url)).get('ml', 'broken').catch((e: unknown) => e)) as ApiError;
    expect(broken.status).toBe(503);
    expect(broken.message).toMatch(/HTTP 503.*etcd down.*retryable/);
  });

  it('maps an unreachable server to a retryable ApiError without status', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = (await new KubeClaimSource(kubeconfig(`http://127.0.0.1:${port}`)).get('ml', 'x').catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBeUndefined();
    expect(err.message).toMatch(/unreachable.*retryable/);
  });
});
