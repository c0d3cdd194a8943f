/**
 * The embedded, in-process Kubernetes API server (development and tests only; never part of the agent).
 * Plain HTTP on 127.0.0.1 (a free port by default) with real REST semantics; see `types.ts` for the contract.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ApiServerOptions, EmbeddedApiServer, FaultRule, KubeObject, RequestRecord } from './types.js';
import { ObjectStore } from './store.js';
import { findByKind, RESOURCES, type ResourceDef } from './resources.js';
import { loadOpenApiDocs } from './openapi.js';
import { buildKubeconfig } from './kubeconfig.js';
import { FaultSet } from './faults.js';
import { dispatch, type DispatchContext } from './dispatch.js';
import { sendStatus } from './http.js';
import { StatusError, reasonForCode } from './status.js';
import { SERVER_VERSION } from './discovery.js';
import { omit } from './patch.js';

function defFor(apiVersion: string, kind: string): ResourceDef {
  const def = findByKind(apiVersion, kind);
  if (!def) throw new StatusError(404, 'NotFound', `the embedded API server does not serve ${kind} in ${apiVersion}`);
  return def;
}

function nodeObject(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' } },
    spec: {},
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'embedded API server node' }],
      nodeInfo: { kubeletVersion: SERVER_VERSION.gitVersion, operatingSystem: 'linux', architecture: 'amd64' },
    },
  };
}

function faultError(status: number): StatusError {
  const details = status === 429 ? { retryAfterSeconds: 1 } : {};
  return new StatusError(status, reasonForCode(status), `injected fault: HTTP ${status}`, details);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Start the server. Creates namespace `default` and one Node per `options.nodes`; writes the kubeconfig to
 * `options.kubeconfigPath` when given. Rejects when the port cannot be bound.
 */
export async function startApiServer(options: ApiServerOptions = {}): Promise<EmbeddedApiServer> {
  const host = options.host ?? '127.0.0.1';
  const store = new ObjectStore();
  const faults = new FaultSet();
  const requests: RequestRecord[] = [];
  const watches = new Set<() => void>();
  const nsDef = defFor('v1', 'Namespace');
  store.create(nsDef, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } });
  for (const n of options.nodes ?? []) store.create(defFor('v1', 'Node'), nodeObject(n));

  const server = createServer();
  /** Set once listening (dispatch needs the bound address). */
  const live: { ctx?: DispatchContext } = {};

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = req.url ?? '/';
    const url = new URL(raw.startsWith('/') ? `http://embedded${raw}` : raw, 'http://embedded');
    const method = (req.method ?? 'GET').toUpperCase();
    let recorded = false;
    const record = (status: number): void => {
      if (recorded) return;
      recorded = true;
      requests.push({ method, path: url.pathname, query: url.search.replace(/^\?/, ''), status, timestampMs: Date.now() });
    };
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the response as `this`
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      record(args[0]);
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
    res.on('close', () => record(res.headersSent ? res.statusCode : 0));
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    const rule: FaultRule | undefined = faults.take(method, url.pathname);
    rule?.arrived?.({ method, path: url.pathname });
    if (rule?.delayMs !== undefined && rule.delayMs > 0) await delay(rule.delayMs);
    if (rule?.holdUntil !== undefined) await rule.holdUntil.catch(() => undefined);
    if (rule?.drop === true) {
      record(0);
      req.socket.destroy();
      return;
    }
    if (rule?.status !== undefined) {
      req.resume();
      sendStatus(res, faultError(rule.status));
      return;
    }
    if (live.ctx) await dispatch(live.ctx, req, res, url);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent) res.destroy();
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', () => undefined);
  const { port } = server.address() as AddressInfo;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const url = `http://${hostForUrl}:${port}`;
  live.ctx = {
    store,
    openapi: loadOpenApiDocs(),
    serverAddress: `${hostForUrl}:${port}`,
    trackWatch: (stop) => {
      watches.add(stop);
      return () => watches.delete(stop);
    },
  };
  const kubeconfig = buildKubeconfig(url);
  if (options.kubeconfigPath !== undefined) {
    await mkdir(dirname(options.kubeconfigPath), { recursive: true });
    await writeFile(options.kubeconfigPath, kubeconfig, { mode: 0o600 });
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    kubeconfig: () => kubeconfig,
    get requests(): readonly RequestRecord[] {
      return requests;
    },
    clearRequests: () => {
      requests.length = 0;
    },
    injectFault: (rule) => faults.add(rule),
    create: (obj) => store.create(defFor(obj.apiVersion, obj.kind), obj),
    get: (apiVersion, kind, namespace, name) => store.get(defFor(apiVersion, kind), namespace, name),
    list: (apiVersion, kind, namespace) => store.list(defFor(apiVersion, kind), namespace),
    updateStatus: (obj) => {
      const def = defFor(obj.apiVersion, obj.kind);
      const meta = omit(obj.metadata, ['resourceVersion']);
      return store.update(def, { ...obj, metadata: meta }, def.statusSubresource ? 'status' : undefined);
    },
    delete: (apiVersion, kind, namespace, name) => {
      const def = defFor(apiVersion, kind);
      if (!store.get(def, namespace, name)) return false;
      store.delete(def, namespace, name);
      return true;
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        for (const stop of [...watches]) stop();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

export type { ApiServerOptions, EmbeddedApiServer, FaultRule, KubeObject, RequestRecord } from './types.js';
export { RESOURCES };
