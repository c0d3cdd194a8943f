/**
 * Request dispatch: health, version, discovery and OpenAPI endpoints, then resource REST and watch.
 * Every failure is answered as a `Status` object; nothing thrown here escapes to the socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectStore } from './store.js';
import { apiGroupDoc, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from './discovery.js';
import { openApiIndex, type OpenApiDoc } from './openapi.js';
import { routeResource } from './routes.js';
import { handleRest } from './handlers.js';
import { isWatchQuery, planWatch, streamWatch } from './watch.js';
import { readBody, sendBytes, sendJson, sendStatus } from './http.js';
import { StatusError, asStatusError } from './status.js';

/** What dispatch needs from the server. */
export interface DispatchContext {
  readonly store: ObjectStore;
  readonly openapi: ReadonlyMap<string, OpenApiDoc>;
  /** `host:port` reported in `/api` `serverAddressByClientCIDRs`. */
  readonly serverAddress: string;
  /** Register a running watch's stop function; returns its deregistration. */
  readonly trackWatch: (stop: () => void) => () => void;
}

function notFoundPath(path: string): StatusError {
  return new StatusError(404, 'NotFound', `the server could not find the requested resource (${path})`, {});
}

function nonResource(ctx: DispatchContext, method: string, path: string, res: ServerResponse): boolean {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  if (p === '/healthz' || p === '/readyz' || p === '/livez' || p.startsWith('/healthz/') || p.startsWith('/readyz/') || p.startsWith('/livez/')) {
    sendBytes(res, 200, 'ok', 'text/plain; charset=utf-8');
    return true;
  }
  if (method !== 'GET' && method !== 'HEAD') return false;
  if (p === '/version') return sendJson(res, 200, SERVER_VERSION), true;
  if (p === '/api') return sendJson(res, 200, apiVersions(ctx.serverAddress)), true;
  if (p === '/apis') return sendJson(res, 200, apiGroupList()), true;
  if (p === '/openapi/v3') return sendJson(res, 200, openApiIndex(ctx.openapi)), true;
  if (p.startsWith('/openapi/v3/')) {
    const d = ctx.openapi.get(p.slice('/openapi/v3/'.length));
    if (!d) throw notFoundPath(p);
    sendBytes(res, 200, d.body, 'application/json');
    return true;
  }
  const segs = p.split('/').filter((s) => s !== '');
  let doc: Record<string, unknown> | undefined;
  if (segs[0] === 'api' && segs.length === 2) doc = apiResourceList('', segs[1] ?? '');
  else if (segs[0] === 'apis' && segs.length === 2) doc = apiGroupDoc(segs[1] ?? '');
  else if (segs[0] === 'apis' && segs.length === 3) doc = apiResourceList(segs[1] ?? '', segs[2] ?? '');
  else return false;
  if (!doc) throw notFoundPath(p);
  sendJson(res, 200, doc);
  return true;
}

/** Serve one request (after fault injection). Never rejects. */
export async function dispatch(ctx: DispatchContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = (req.method ?? 'GET').toUpperCase();
  try {
    const body = await readBody(req);
    if (nonResource(ctx, method, url.pathname, res)) return;
    const routed = routeResource(url.pathname);
    if (routed.kind !== 'resource') throw notFoundPath(url.pathname);
    const { route } = routed;
    if (method === 'GET' && (isWatchQuery(url.searchParams) || route.watchPath)) {
      const plan = planWatch(route, url.searchParams, req.headers.accept);
      let untrack = (): void => undefined;
      const stop = streamWatch(ctx.store, route, plan, res, () => untrack());
      if (!res.writableEnded) untrack = ctx.trackWatch(stop);
      return;
    }
    const reply = handleRest(ctx.store, {
      method,
      route,
      query: url.searchParams,
      accept: req.headers.accept,
      contentType: req.headers['content-type'],
      body,
    });
    sendJson(res, reply.status, reply.body);
  } catch (err) {
    sendStatus(res, asStatusError(err));
  }
}
