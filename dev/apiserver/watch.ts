/**
 * Watch streams (`?watch=true|1` or the legacy `/watch/` path): newline-delimited JSON `{type, object}` events
 * (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`), as `apiserver/pkg/endpoints/handlers/watch.go` writes them.
 * `resourceVersion` unset or "0" starts with synthetic ADDED events for existing objects; a number replays changes
 * after it (an `ERROR` event with a 410 Gone Status when it is too old). Objects moving in or out of the
 * selectors appear as ADDED / DELETED. `timeoutSeconds` ends the stream. `sendInitialEvents=true` (which needs
 * `resourceVersionMatch=NotOlderThan`, list-options.ts) starts with the current objects whatever the
 * resourceVersion and, with `allowWatchBookmarks=true`, ends them with a BOOKMARK annotated
 * `k8s.io/initial-events-end: "true"` (KEP-3157); `sendInitialEvents=false` sends no initial events.
 */
import type { ServerResponse } from 'node:http';
import type { KubeObject } from './types.js';
import type { ObjectStore, StoreEvent } from './store.js';
import type { ResourceRoute } from './routes.js';
import { apiVersionOf } from './resources.js';
import { selectorFilter } from './handlers.js';
import { toTable, wantsTable } from './table.js';
import { StatusError, badRequest, toStatus } from './status.js';
import { validateWatchOptions } from './list-options.js';

/** Whether the query asks for a watch (`watch=true` or `watch=1`). */
export function isWatchQuery(query: URLSearchParams): boolean {
  const w = query.get('watch');
  return w === 'true' || w === '1';
}

/** Parameters of one watch, validated before any byte is written (throws 400 BadRequest). */
export interface WatchPlan {
  readonly filter: (o: KubeObject) => boolean;
  /** Numeric resourceVersion to replay after, or undefined for "from now". */
  readonly since: number | undefined;
  /** Start with synthetic ADDED events for the current objects. */
  readonly initialEvents: boolean;
  readonly timeoutMs: number | undefined;
  /** End the initial events with a BOOKMARK annotated `k8s.io/initial-events-end` (sendInitialEvents + allowWatchBookmarks). */
  readonly initialBookmark: boolean;
  readonly table: boolean;
}

/** Validate a watch request's query. */
export function planWatch(route: ResourceRoute, query: URLSearchParams, accept: string | undefined): WatchPlan {
  const sel = selectorFilter(route.def, query);
  const filter = (o: KubeObject): boolean =>
    (route.namespace === undefined || o.metadata.namespace === route.namespace) && (route.name === undefined || o.metadata.name === route.name) && sel(o);
  validateWatchOptions(query);
  const rvText = query.get('resourceVersion') ?? '';
  const t = query.get('timeoutSeconds');
  if (t !== null && !/^\d+$/.test(t)) throw badRequest(`invalid timeoutSeconds "${t}"`);
  // KEP-3157 (watch-list): sendInitialEvents=true sends the current state whatever the resourceVersion;
  // =false sends none; unset keeps the legacy rule (state first only for resourceVersion "" or "0").
  const send = query.get('sendInitialEvents');
  const legacyInitial = rvText === '' || rvText === '0';
  const initialEvents = send === null ? legacyInitial : send === 'true';
  return {
    filter,
    since: initialEvents || rvText === '' || rvText === '0' ? undefined : Number(rvText),
    initialEvents,
    timeoutMs: t !== null && Number(t) > 0 ? Number(t) * 1000 : undefined,
    initialBookmark: send === 'true' && query.get('allowWatchBookmarks') === 'true',
    table: wantsTable(accept),
  };
}

/**
 * Stream events to `res` until the client goes away, the timeout passes or the returned stop function is called.
 * Headers (200) are written at once.
 */
export function streamWatch(store: ObjectStore, route: ResourceRoute, plan: WatchPlan, res: ServerResponse, onEnd: () => void): () => void {
  const { def } = route;
  let ended = false;
  let unsubscribe: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const send = (type: string, object: unknown): void => {
    if (ended || res.destroyed) return;
    const wire = plan.table && type !== 'ERROR' && type !== 'BOOKMARK' ? toTable(def, [object as KubeObject], {}, 'Metadata') : object;
    res.write(`${JSON.stringify({ type, object: wire })}\n`);
  };
  const stop = (): void => {
    if (ended) return;
    ended = true;
    unsubscribe?.();
    if (timer) clearTimeout(timer);
    if (!res.destroyed) res.end();
    onEnd();
  };
  res.on('close', stop);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  const onEvent = (ev: StoreEvent): void => {
    const now = plan.filter(ev.object);
    const before = ev.previous !== undefined && plan.filter(ev.previous);
    if (ev.type === 'MODIFIED') {
      if (now && before) send('MODIFIED', ev.object);
      else if (now) send('ADDED', ev.object);
      else if (before) send('DELETED', ev.object);
    } else if (now) {
      send(ev.type, ev.object);
    }
  };
  try {
    if (plan.since === undefined) {
      const rv = store.resourceVersion;
      if (plan.initialEvents) for (const o of store.list(def, route.namespace, plan.filter)) send('ADDED', o);
      if (plan.initialBookmark) {
        send('BOOKMARK', { apiVersion: apiVersionOf(def), kind: def.kind, metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } } });
      }
      unsubscribe = store.watch(def, Number(rv), onEvent);
    } else {
      unsubscribe = store.watch(def, plan.since, onEvent);
    }
  } catch (err) {
    if (!(err instanceof StatusError)) throw err;
    send('ERROR', toStatus(err));
    stop();
    return stop;
  }
  if (plan.timeoutMs !== undefined) timer = setTimeout(stop, plan.timeoutMs);
  return stop;
}
