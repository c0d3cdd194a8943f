/**
 * Our node:http server for `/metrics` (Prometheus text 0.0.4), `/healthz` (process alive: 200) and
 * `/readyz` (200 when ready, 503 with the reason otherwise). The OTel Prometheus exporter runs with
 * `preventServerStart`; this server asks the caller for the body on each scrape (telemetry shares one render
 * between scrapes: scrape-cache.ts).
 *
 * Bounded against a peer that abuses it (a scraper is untrusted input):
 * - one request in flight per socket: pipelined requests wait, in order, until the previous response was
 *   handed to the socket; more than {@link HttpLimits.maxQueuedPerSocket} waiting requests close the
 *   connection (no scraper pipelines; an attacker that sends thousands and never reads gets one response's
 *   worth of buffering, not thousands of bodies);
 * - at most {@link HttpLimits.maxConcurrentScrapes} `/metrics` answers in progress across all sockets; above
 *   that a scrape gets 503 with `Retry-After` at once;
 * - request headers must arrive within 10 s and a whole request within 30 s (slow senders). The number of
 *   connections is not capped: a cap would turn away the kubelet's `/healthz` probes while an attacker holds
 *   the connections, and the probe failing restarts the agent; who may connect at all is the NetworkPolicy's
 *   job (daemonset/);
 * - a socket with no progress (no bytes read or written) for {@link HttpLimits.socketIdleMs} is destroyed, so
 *   a peer that never reads cannot hold a response forever.
 * `/healthz` and `/readyz` answer from memory and never wait behind a render.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** Content type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Bounds of the server (see file doc). */
export interface HttpLimits {
  /** `/metrics` answers in progress across all sockets before 503 (default 16). */
  readonly maxConcurrentScrapes: number;
  /** Requests waiting behind the one in flight on a socket before the socket is closed (default 4). */
  readonly maxQueuedPerSocket: number;
  /** Inactivity after which a socket is destroyed, ms (default 30000). */
  readonly socketIdleMs: number;
}

/** Defaults of {@link HttpLimits}. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxConcurrentScrapes: 16, maxQueuedPerSocket: 4, socketIdleMs: 30_000 };

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Listen host, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string;
  /** Listen port; 0 picks a free one. */
  readonly port: number;
  /** Produces the `/metrics` body (a Buffer is written without copying). A rejection answers 500. */
  readonly metrics: () => Promise<Buffer | string>;
  /** Readiness: `{ ready: true }` or `{ ready: false, reason }`. */
  readonly readiness: () => { readonly ready: boolean; readonly reason: string };
  readonly logger: Logger;
  /** Overrides of {@link DEFAULT_HTTP_LIMITS}. */
  readonly limits?: Partial<HttpLimits>;
}

/** Counters of the server, for tests and benchmarks. */
export interface HttpServerStats {
  /** `/metrics` answers in progress now. */
  readonly scrapesInFlight: number;
  /** Scrapes answered 503 because {@link HttpLimits.maxConcurrentScrapes} were in progress. */
  readonly scrapesRejected: number;
  /** Sockets closed for pipelining more than {@link HttpLimits.maxQueuedPerSocket} requests. */
  readonly socketsClosedForPipelining: number;
}

/** A started server. */
export interface HttpServerHandle {
  /** The port actually bound. */
  readonly port: number;
  /** Counters (see {@link HttpServerStats}). */
  stats(): HttpServerStats;
  /** Stop listening and drop open connections (idempotent). */
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: Buffer | string, contentType = 'text/plain; charset=utf-8', extra: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...extra });
  if (res.req.method === 'HEAD') res.end();
  else res.end(body);
}

/** Per-socket queue: the request being answered and the ones pipelined behind it. */
interface SocketQueue {
  busy: boolean;
  /** Closed for pipelining too much: requests parsed after that (from the same read) are dropped. */
  closed: boolean;
  readonly waiting: Array<() => void>;
}

/**
 * Start the server.
 * @throws Error (EADDRINUSE, EACCES ...) when the address cannot be bound; the message names host:port.
 * @throws RangeError when a limit is not a positive integer.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`telemetry HTTP limit ${name} must be a positive integer, got ${String(value)}`);
  }
  let scrapesInFlight = 0;
  let scrapesRejected = 0;
  let socketsClosedForPipelining = 0;
  const queues = new WeakMap<Socket, SocketQueue>();

  const metrics = (res: http.ServerResponse): void => {
    if (scrapesInFlight >= limits.maxConcurrentScrapes) {
      scrapesRejected += 1;
      send(res, 503, `too many concurrent scrapes (${limits.maxConcurrentScrapes}); retry\n`, undefined, { 'retry-after': '1' });
      return;
    }
    scrapesInFlight += 1;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      scrapesInFlight -= 1;
    };
    res.once('close', finish);
    options.metrics().then(
      (body) => {
        if (!res.destroyed) send(res, 200, body, PROMETHEUS_CONTENT_TYPE);
      },
      (err: unknown) => {
        options.logger.error({ err: errorMessage(err) }, 'telemetry: /metrics collection failed');
        if (!res.destroyed) send(res, 500, `metrics collection failed: ${errorMessage(err)}\n`);
      },
    );
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics':
        metrics(res);
        return;
      case '/healthz':
        send(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const r = options.readiness();
        if (r.ready) send(res, 200, 'ready\n');
        else send(res, 503, `not ready: ${r.reason}\n`);
        return;
      }
      default:
        send(res, 404, 'not found: try /metrics, /healthz, /readyz\n');
    }
  };

  const server = http.createServer((req, res) => {
    const socket = req.socket;
    let queue = queues.get(socket);
    if (queue === undefined) {
      queue = { busy: false, closed: false, waiting: [] };
      queues.set(socket, queue);
    }
    const q = queue;
    if (q.closed) return;
    const next = (): void => {
      const job = q.waiting.shift();
      if (job === undefined) q.busy = false;
      else job();
    };
    // The next request on this socket starts when this response was handed over (or the socket closed).
    const run = (): void => {
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        next();
      };
      res.once('close', release);
      res.once('finish', release);
      handle(req, res);
    };
    if (!q.busy) {
      q.busy = true;
      run();
      return;
    }
    if (q.waiting.length >= limits.maxQueuedPerSocket) {
      socketsClosedForPipelining += 1;
      options.logger.warn({ remote: socket.remoteAddress, queued: q.waiting.length }, 'telemetry: closing a connection that pipelines too many requests');
      q.closed = true;
      q.waiting.length = 0;
      socket.destroy();
      return;
    }
    q.waiting.push(run);
  });
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.setTimeout(limits.socketIdleMs); // no 'timeout' listener: Node destroys the idle socket
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`telemetry: cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => options.logger.error({ err: err.message }, 'telemetry: HTTP server error'));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port,
    stats: () => ({ scrapesInFlight, scrapesRejected, socketsClosedForPipelining }),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
