/**
 * The agent's Kubernetes REST calls, over Node's own `http`/`https` (no client library at run time). gpulet makes
 * a handful of calls (GET node; LIST/POST/PUT/DELETE resourceslices; GET/LIST resourceclaims; server-side apply
 * of a claim's status): each is one JSON request, so a generated client of every API group is not needed.
 * @kubernetes/client-node's module graph alone is ~80 MiB of RSS (its config module imports every generated API
 * and model: BENCHMARKS.md, footprint); this file and src/k8s/kubeconfig.ts replace it in the agent.
 *
 * Anything with the two methods of {@link KubeConnection} is a connection: the agent's lean configuration
 * (src/k8s/kubeconfig.ts), or a `KubeConfig` of @kubernetes/client-node (tests, dev tools), which has both with
 * these meanings (its `applyToHTTPSOptions` sets the TLS material, the `Authorization` header and a cached agent).
 */
import http from 'node:http';
import https from 'node:https';

/** Where the API server is and how to reach it. */
export interface KubeConnection {
  /** The current context's cluster; `server` is the API server's URL (`https://host:port[/prefix]`). */
  getCurrentCluster(): { readonly server: string } | null;
  /**
   * Add the TLS material (`ca`, `cert`, `key`, `rejectUnauthorized`, `servername`), the credentials
   * (`headers.Authorization`) and the connection pool (`agent`) to `opts`.
   * @throws Error when the credentials cannot be read
   */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** The API server answered with a status outside 2xx: `code` is the HTTP status, `body` the parsed body (a `Status` object) or its text. */
export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
    message: string,
  ) {
    super(message);
    this.name = 'KubeStatusError';
  }
}

/** Largest response body read, bytes: a LIST page of 500 ResourceClaims fits many times over; more is refused. */
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** One request. */
export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /**
   * Absolute API path, e.g. `/apis/resource.k8s.io/v1/resourceslices`; names encoded by the caller with
   * {@link pathOf}. Written as one literal per call (`/apis/<group>/<version>[/namespaces${pathOf(ns)}]/<resource>
   * [${pathOf(name)}][/<subresource>]`): test/helpers/api-calls.ts reads the calls' verbs and resources from it for
   * the RBAC tests.
   */
  readonly path: string;
  /** Query parameters; undefined values are left out. */
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** JSON body (serialised here). */
  readonly body?: unknown;
  /** Content type of the body; default `application/json` (`application/apply-patch+yaml` for server-side apply: JSON is YAML). */
  readonly contentType?: string;
  /** Bound of the whole call, ms. */
  readonly timeoutMs: number;
}

/** `/a/b/c` from path segments, each percent-encoded (names from API objects may hold any character). */
export function pathOf(...segments: readonly string[]): string {
  return segments.map((s) => `/${encodeURIComponent(s)}`).join('');
}

/**
 * Send `req` to the connection's API server and parse the JSON answer.
 * @returns the parsed body of a 2xx answer (undefined when it is empty)
 * @throws KubeStatusError for a non-2xx answer; Error (with the socket error as `cause`) when the server cannot be
 *   reached, the answer is not JSON or exceeds {@link MAX_RESPONSE_BYTES}, or `timeoutMs` passes
 */
export async function kubeRequest<T>(conn: KubeConnection, req: KubeRequest): Promise<T> {
  const cluster = conn.getCurrentCluster();
  if (cluster === null) throw new Error('the Kubernetes client configuration has no current cluster');
  const base = new URL(cluster.server);
  const url = new URL(base.href.replace(/\/+$/, '') + req.path);
  for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': 'gpulet' };
  if (payload !== undefined) {
    headers['Content-Type'] = req.contentType ?? 'application/json';
    headers['Content-Length'] = String(payload.length);
  }
  const opts: https.RequestOptions = { method: req.method, headers };
  await conn.applyToHTTPSOptions(opts);
  const send = url.protocol === 'http:' ? http.request : https.request;
  return new Promise<T>((resolve, reject) => {
    const r = send(url, { ...opts, signal: AbortSignal.timeout(req.timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) {
          res.destroy(new Error(`${req.method} ${req.path}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        if (text.length > 0) {
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            if ((res.statusCode ?? 0) < 300) return reject(new Error(`${req.method} ${req.path}: the answer is not JSON: ${text.slice(0, 200)}`));
          }
        } else body = undefined;
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) resolve(body as T);
        else reject(new KubeStatusError(code, body, `HTTP ${code} from ${req.method} ${req.path}`));
      });
    });
    r.on('error', reject);
    r.end(payload);
  });
}
