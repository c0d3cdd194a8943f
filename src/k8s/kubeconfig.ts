/**
 * Loading the Kubernetes client configuration for the three API modes (see `Config.kubeApi`), as a
 * {@link KubeConnection} for src/k8s/rest.ts.
 *
 * In-cluster (what the DaemonSet uses) and kubeconfigs with a bearer token, a token file, client certificates
 * and a CA (files or inline `-data`) are read here, with the rules of @kubernetes/client-node 2.x
 * (dist/config.js `loadFromCluster`, `createAgent`) and of kubectl: in-cluster = `https://$KUBERNETES_SERVICE_HOST:
 * $KUBERNETES_SERVICE_PORT` (`http` for ports 80, 8080, 8001; IPv6 hosts bracketed), CA
 * `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`, token re-read from `.../token` at most every 60 s
 * (client-node's FileAuth period; the kubelet rotates projected tokens well before they expire); relative paths
 * in a kubeconfig are relative to its directory; an `http:` server only with `insecure-skip-tls-verify`.
 * A kubeconfig that needs anything else (an `exec` credential plugin, an `auth-provider`, basic auth, a proxy)
 * is handed to @kubernetes/client-node's `KubeConfig`, imported then and only then (its module graph is ~80 MiB
 * of RSS, which a DaemonSet pod never pays).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import type { KubeConnection } from './rest.js';

/** Service account files in a pod (client-node `SERVICEACCOUNT_*_PATH`, the kubelet's projected volume). */
export const SERVICEACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A token file is re-read when its last read is older than this, ms (client-node FileAuth: 60 s). */
export const TOKEN_REFRESH_MS = 60_000;

/** What a connection needs, resolved from in-cluster files or a kubeconfig. */
export interface LeanClusterConfig {
  readonly server: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  /** A fixed bearer token. */
  readonly token?: string;
  /** A file holding the bearer token, re-read every {@link TOKEN_REFRESH_MS}. */
  readonly tokenFile?: string;
}

/** A {@link KubeConnection} of a resolved configuration: one keep-alive connection pool, the token file re-read as it rotates. */
export class LeanKubeConfig implements KubeConnection {
  private readonly agent: http.Agent;
  private token: { value: string; readAt: number } | undefined;

  /** @throws ConfigError for an `http:` server without `skipTLSVerify` (as client-node refuses it) */
  constructor(readonly config: LeanClusterConfig) {
    const server = new URL(config.server);
    if (server.protocol === 'http:') {
      if (!config.skipTLSVerify) throw new ConfigError(`API server ${config.server}: plain http is allowed only with insecure-skip-tls-verify`);
      this.agent = new http.Agent({ keepAlive: true });
    } else {
      this.agent = new https.Agent({
        keepAlive: true,
        ...(config.ca === undefined ? {} : { ca: config.ca }),
        ...(config.cert === undefined ? {} : { cert: config.cert }),
        ...(config.key === undefined ? {} : { key: config.key }),
        ...(config.tlsServerName === undefined ? {} : { servername: config.tlsServerName }),
        rejectUnauthorized: !config.skipTLSVerify,
      });
    }
  }

  getCurrentCluster(): { readonly server: string } {
    return { server: this.config.server };
  }

  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    opts.agent = this.agent;
    const token = this.currentToken();
    if (token !== undefined) opts.headers = { ...(opts.headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` };
    return Promise.resolve();
  }

  private currentToken(): string | undefined {
    const file = this.config.tokenFile;
    if (file === undefined) return this.config.token;
    const now = Date.now();
    if (this.token === undefined || now - this.token.readAt >= TOKEN_REFRESH_MS) {
      try {
        this.token = { value: fs.readFileSync(file, 'utf8').trim(), readAt: now };
      } catch (err) {
        if (this.token === undefined) throw new Error(`cannot read the service account token ${file}: ${errorMessage(err)}`, { cause: err });
        // keep the last token; the next call tries again
      }
    }
    return this.token.value;
  }
}

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Raw, k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? o[k] : undefined);

/** The entry `name` of a kubeconfig list (`clusters`, `users`, `contexts`), its inner object under `field`. */
function named(doc: Raw, list: string, field: string, name: string): Raw {
  const items = Array.isArray(doc[list]) ? (doc[list] as unknown[]) : [];
  const found = items.find((i) => isObj(i) && i['name'] === name);
  if (!isObj(found) || !isObj(found[field])) throw new Error(`${list}: no entry named ${JSON.stringify(name)}`);
  return found[field];
}

/** File or inline base64 data (`<key>` / `<key>-data`); relative files against `dir`. */
function material(o: Raw, key: string, dir: string): Buffer | undefined {
  const data = str(o, `${key}-data`);
  if (data !== undefined) return Buffer.from(data, 'base64');
  const file = str(o, key);
  return file === undefined ? undefined : fs.readFileSync(path.resolve(dir, file));
}

/**
 * The configuration of a kubeconfig's current context, or undefined when it needs what only client-node
 * does (exec, auth-provider, basic auth, proxy-url).
 * @throws Error when the YAML, the current context or its cluster is missing or malformed
 */
export function parseKubeconfig(yamlText: string, dir: string): LeanClusterConfig | undefined {
  const doc: unknown = parseYaml(yamlText);
  if (!isObj(doc)) throw new Error('not a kubeconfig (no YAML mapping)');
  const current = str(doc, 'current-context');
  if (current === undefined) throw new Error('no current-context');
  const context = named(doc, 'contexts', 'context', current);
  const clusterName = str(context, 'cluster');
  if (clusterName === undefined) throw new Error(`context ${JSON.stringify(current)} names no cluster`);
  const cluster = named(doc, 'clusters', 'cluster', clusterName);
  const userName = str(context, 'user');
  const user = userName === undefined ? {} : named(doc, 'users', 'user', userName);
  if (['exec', 'auth-provider', 'username', 'password', 'as', 'impersonate'].some((k) => user[k] !== undefined) || cluster['proxy-url'] !== undefined) return undefined;
  const server = str(cluster, 'server');
  if (server === undefined) throw new Error(`cluster ${JSON.stringify(clusterName)} has no server`);
  const ca = material(cluster, 'certificate-authority', dir);
  const cert = material(user, 'client-certificate', dir);
  const key = material(user, 'client-key', dir);
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const tlsServerName = str(cluster, 'tls-server-name');
  return {
    server,
    skipTLSVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(token === undefined ? {} : { token }),
    ...(tokenFile === undefined ? {} : { tokenFile: path.resolve(dir, tokenFile) }),
    ...(tlsServerName === undefined ? {} : { tlsServerName }),
  };
}

/**
 * The in-cluster configuration (client-node `loadFromCluster`).
 * @throws Error when not in a pod (`KUBERNETES_SERVICE_HOST` unset) or the CA cannot be read
 */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, dir = SERVICEACCOUNT_DIR): LeanClusterConfig {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'];
  if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set: not running in a pod; use --kube-api=kubeconfig');
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return {
    server: `${scheme}://${net.isIPv6(host) ? `[${host}]` : host}:${port ?? '443'}`,
    ca: fs.readFileSync(path.join(dir, 'ca.crt')),
    skipTLSVerify: false,
    tokenFile: path.join(dir, 'token'),
  };
}

/**
 * A connection from in-cluster service-account credentials, a kubeconfig file, or kubeconfig YAML (the
 * embedded API server's).
 * @throws ConfigError when the source cannot be read, naming it and what to check.
 */
export async function loadKubeConfig(
  source: { mode: 'in-cluster' } | { mode: 'kubeconfig'; path: string } | { mode: 'yaml'; yaml: string },
): Promise<KubeConnection> {
  try {
    if (source.mode === 'in-cluster') return new LeanKubeConfig(inClusterConfig());
    const text = source.mode === 'kubeconfig' ? fs.readFileSync(source.path, 'utf8') : source.yaml;
    const dir = source.mode === 'kubeconfig' ? path.dirname(path.resolve(source.path)) : process.cwd();
    const lean = parseKubeconfig(text, dir);
    if (lean !== undefined) return new LeanKubeConfig(lean);
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    if (source.mode === 'kubeconfig') kc.loadFromFile(source.path);
    else kc.loadFromString(source.yaml);
    if (!kc.getCurrentCluster()) throw new Error('no current cluster');
    return kc;
  } catch (err: unknown) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot load the Kubernetes client configuration (${source.mode}): ${errorMessage(err)}`, { cause: err });
  }
}
