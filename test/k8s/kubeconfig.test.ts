/**
 * src/k8s/kubeconfig.ts + rest.ts, the agent's own Kubernetes client, against real servers on free loopback ports:
 * a TLS server with a CA and a server certificate made by openssl here, checking what the agent sends (bearer
 * token from the kubeconfig, from a token file, and the in-cluster files), and the embedded dev API server's
 * kubeconfig (plain http). A kubeconfig needing an exec credential plugin is handed to @kubernetes/client-node.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../src/errors.js';
import { inClusterConfig, LeanKubeConfig, loadKubeConfig } from '../../src/k8s/kubeconfig.js';
import { kubeRequest, KubeStatusError } from '../../src/k8s/rest.js';
import { buildKubeconfig } from '../../dev/apiserver/kubeconfig.js';
import { startApiServer } from '../../dev/apiserver/server.js';

let dir: string;
let server: https.Server;
let url: string;
const seen: { path: string; auth: string | undefined; method: string | undefined; type: string | undefined; body: string }[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-kubeconfig-'));
  const run = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf']);
  server = https.createServer({ key: fs.readFileSync(path.join(dir, 'server.key')), cert: fs.readFileSync(path.join(dir, 'server.crt')) }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', auth: req.headers.authorization, method: req.method, type: req.headers['content-type'], body });
      if (req.url?.startsWith('/api/v1/nodes/missing')) {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, message: 'nodes "missing" not found' }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Node', metadata: { name: 'n', uid: 'u-1' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  url = `https://127.0.0.1:${addr.port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  fs.rmSync(dir, { recursive: true, force: true });
});

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = { server: url, 'certificate-authority': 'ca.crt' }): string {
  const file = path.join(dir, `kc-${seen.length}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }),
  );
  return file;
}

describe('loadKubeConfig (lean: no client library)', () => {
  it('verifies the server against the kubeconfig CA (file relative to the kubeconfig) and sends its token', async () => {
    const conn = await loadKubeConfig({ mode: 'kubeconfig', path: kubeconfig({ token: 'secret-1' }) });
    expect(conn).toBeInstanceOf(LeanKubeConfig);
    const node = await kubeRequest<{ metadata: { uid: string } }>(conn, { method: 'GET', path: '/api/v1/nodes/n', timeoutMs: 5000 });
    expect(node.metadata.uid).toBe('u-1');
    expect(seen.at(-1)).toMatchObject({ path: '/api/v1/nodes/n', auth: 'Bearer secret-1', method: 'GET' });
  });

  it('refuses a server whose certificate the CA did not sign', async () => {
    const other = path.join(dir, 'other-ca.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'other.key'), '-out', other, '-days', '1', '-subj', '/CN=other'], { stdio: 'ignore' });
    const conn = await loadKubeConfig({ mode: 'kubeconfig', path: kubeconfig({ token: 't' }, { server: url, 'certificate-authority-data': fs.readFileSync(other).toString('base64') }) });
    await expect(kubeRequest(conn, { method: 'GET', path: '/api/v1/nodes/n', timeoutMs: 5000 })).rejects.toThrow(/self-signed|certificate/i);
  });

  it('maps a non-2xx answer to KubeStatusError with the code and the Status body, and sends query and JSON body', async () => {
    const conn = await loadKubeConfig({ mode: 'kubeconfig', path: kubeconfig({ token: 't' }) });
    const err = await kubeRequest(conn, { method: 'GET', path: '/api/v1/nodes/missing', timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeStatusError);
    expect((err as KubeStatusError).code).toBe(404);
    expect((err as KubeStatusError).body).toMatchObject({ message: 'nodes "missing" not found' });
    await kubeRequest(conn, { method: 'PATCH', path: '/x', query: { fieldManager: 'gpu.gpulet.dev', force: true, skip: undefined }, body: { a: 1 }, contentType: 'application/apply-patch+yaml', timeoutMs: 5000 });
    expect(seen.at(-1)).toMatchObject({ path: '/x?fieldManager=gpu.gpulet.dev&force=true', method: 'PATCH', type: 'application/apply-patch+yaml', body: '{"a":1}' });
  });

  it('reads the in-cluster service account files: CA, token file (re-read as it rotates), server from the environment', async () => {
    const sa = path.join(dir, 'sa');
    fs.mkdirSync(sa, { recursive: true });
    fs.copyFileSync(path.join(dir, 'ca.crt'), path.join(sa, 'ca.crt'));
    fs.writeFileSync(path.join(sa, 'token'), 'projected-1\n');
    const port = new URL(url).port;
    const cfg = inClusterConfig({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, sa);
    expect(cfg.server).toBe(url);
    expect(inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, sa).server).toBe('https://[fd00::1]:443');
    const conn = new LeanKubeConfig(cfg);
    await kubeRequest(conn, { method: 'GET', path: '/api/v1/nodes/n', timeoutMs: 5000 });
    expect(seen.at(-1)?.auth).toBe('Bearer projected-1');
    expect(() => inClusterConfig({}, sa)).toThrow(/KUBERNETES_SERVICE_HOST/);
  });

  it('reaches the embedded dev API server over plain http (insecure-skip-tls-verify), and refuses http without it', async () => {
    const api = await startApiServer({ port: 0, nodes: ['n1'] });
    try {
      const conn = await loadKubeConfig({ mode: 'yaml', yaml: buildKubeconfig(api.url) });
      const node = await kubeRequest<{ metadata: { name: string } }>(conn, { method: 'GET', path: '/api/v1/nodes/n1', timeoutMs: 5000 });
      expect(node.metadata.name).toBe('n1');
      const noSkip = buildKubeconfig(api.url).replace('insecure-skip-tls-verify: true', 'insecure-skip-tls-verify: false');
      await expect(loadKubeConfig({ mode: 'yaml', yaml: noSkip })).rejects.toThrow(ConfigError);
    } finally {
      await api.close();
    }
  });

  it('hands a kubeconfig with an exec credential plugin to @kubernetes/client-node', async () => {
    const conn = await loadKubeConfig({ mode: 'kubeconfig', path: kubeconfig({ exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' } }) });
    expect(conn).not.toBeInstanceOf(LeanKubeConfig);
    expect(conn.getCurrentCluster()?.server).toBe(url);
  });

  it('names the source and the problem for a broken kubeconfig', async () => {
    await expect(loadKubeConfig({ mode: 'kubeconfig', path: path.join(dir, 'nope') })).rejects.toThrow(/kubeconfig.*ENOENT/);
    await expect(loadKubeConfig({ mode: 'yaml', yaml: 'apiVersion: v1\nkind: Config\n' })).rejects.toThrow(/no current-context/);
  });
});
