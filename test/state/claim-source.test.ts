/**
 * KubeClaimSource through the real @kubernetes/client-node against a real HTTP server on a free port:
 * the GET and (paged) LIST paths of resource.k8s.io/v1, the mapping of 404 / 403 / 5xx / connection refused to typed
 * ApiErrors with retry hints, and the entry check of what the server answers (`claimFromApi`): a claim whose
 * metadata breaks the rules of src/model/claim-ref.ts is an InvalidClaimError naming it (GET) or left out and
 * reported (LIST).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, InvalidClaimError } from '../../src/errors.js';
import { claimFromApi, claimsFromApi, KubeClaimSource } from '../../src/state/claim-source.js';
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
  const claim = allocatedClaim(ref, [{ device: 'gpu-0', request: 'gpu/sub' }], { reservedFor: [{ resource: 'pods', name: 'p', uid: newRef().uid }] });
  // Claims the (broken or hostile) server answers with metadata the API server itself would never issue.
  const odd = allocatedClaim({ namespace: 'ml', name: 'odd', uid: '../../etc' }, [{ device: 'gpu-1' }]);
  const upper = allocatedClaim({ namespace: 'ML', name: 'upper', uid: newRef().uid }, [{ device: 'gpu-2' }]);
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
      if (req.url === '/apis/resource.k8s.io/v1/namespaces/ml/resourceclaims/odd') return send(200, odd);
      if (req.url?.startsWith('/apis/resource.k8s.io/v1/resourceclaims?')) {
        // Two pages: the first says where to continue, the second ends the list.
        const second = new URL(req.url, 'http://x').searchParams.get('continue') === 'page-2';
        const metadata = second ? {} : { continue: 'page-2' };
        return send(200, { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaimList', metadata, items: second ? [upper] : [odd, claim] });
      }
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

  it('refuses a claim whose metadata breaks the rules with an InvalidClaimError naming it, the field and the value', async () => {
    const err = await new KubeClaimSource(kubeconfig(url)).get('ml', 'odd').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidClaimError);
    expect((err as Error).message).toBe(
      'resourceclaim "ml/odd" (uid "../../etc") from the API server is unusable: ' +
        'metadata.uid is not a claim UID: must be a lower-case UUID (8-4-4-4-12 hex digits) as the API server issues it, got "../../etc"',
    );
  });

  it('LISTs every claim page by page, asking for a page only when pulled, reporting claims whose metadata breaks the rules', async () => {
    const lists = () => seen.filter((r) => r.startsWith('GET /apis/resource.k8s.io/v1/resourceclaims?'));
    const pages = new KubeClaimSource(kubeconfig(url)).listPages()[Symbol.asyncIterator]();
    expect(lists()).toEqual([]); // nothing asked before the first pull
    const first = await pages.next();
    expect(lists()).toEqual([expect.stringMatching(/[?&]limit=500(&|$)/)]);
    expect(first.done).toBe(false);
    expect(first.value?.claims.map((c) => c.metadata)).toEqual([ref]);
    expect(first.value?.invalid.map((e) => e.message)).toEqual([
      expect.stringMatching(/^resourceclaim "ml\/odd" \(uid "\.\.\/\.\.\/etc"\) .*metadata\.uid is not a claim UID/),
    ]);
    const second = await pages.next();
    expect(lists()).toHaveLength(2);
    expect(lists()[1]).toMatch(/[?&]continue=page-2(&|$)/);
    expect(second.value?.claims).toEqual([]);
    expect(second.value?.invalid.map((e) => e.message)).toEqual([
      expect.stringMatching(/^resourceclaim "ML\/upper" .*metadata\.namespace is not a DNS label: must be a DNS label/),
    ]);
    expect((await pages.next()).done).toBe(true);
    expect(lists()).toHaveLength(2);
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

describe('claimFromApi / claimsFromApi: where a claim read from the API server enters', () => {
  it('keeps the checked metadata (namespace, name, uid; nothing else) and the status as read', () => {
    const ref = newRef('train', 'ml');
    const raw = { ...allocatedClaim(ref, [{ device: 'gpu-0' }]), metadata: { ...ref, resourceVersion: '7', labels: { a: 'b' } } };
    const got = claimFromApi(raw);
    expect(got.metadata).toEqual(ref);
    expect(got.status).toBe(raw.status);
  });

  it.each([
    ['no metadata', {}, /^resourceclaim "\?\/\?" \(uid null\) from the API server is unusable: metadata\.uid must be a non-empty string, got null$/],
    ['a UID naming an Object.prototype member', { metadata: { namespace: 'ml', name: 'x', uid: 'constructor' } }, /metadata\.uid is not a claim UID: .*, got "constructor"$/],
    ['a __proto__ UID', { metadata: { namespace: 'ml', name: 'x', uid: '__proto__' } }, /metadata\.uid is not a claim UID/],
    ['an empty name', { metadata: { namespace: 'ml', name: '', uid: newRef().uid } }, /^resourceclaim "ml\/" .*metadata\.name must be a non-empty string, got ""$/],
    ['a huge name', { metadata: { namespace: 'ml', name: 'n'.repeat(100_000), uid: newRef().uid } }, /metadata\.name is not a DNS subdomain: must be at most 253 characters \(is 100000\), got "n+"… \(100000 characters\)$/],
  ])('refuses %s, naming the claim as found, the field, the rule and the value (cut short)', (_what, raw, message) => {
    let caught: unknown;
    try {
      claimFromApi(raw);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidClaimError);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message.length).toBeLessThan(1000);
  });

  it('claimsFromApi never throws for bad metadata: the good claims in order, one error per bad one', () => {
    const [a, b] = [newRef('a'), newRef('b')];
    const out = claimsFromApi([allocatedClaim(a, []), { metadata: { namespace: 'ml', name: 'bad', uid: 'x' } }, allocatedClaim(b, [])]);
    expect(out.claims.map((c) => c.metadata)).toEqual([a, b]);
    expect(out.invalid).toHaveLength(1);
    expect(out.invalid[0]?.message).toMatch(/^resourceclaim "ml\/bad" \(uid "x"\)/);
  });
});
