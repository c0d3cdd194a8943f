/**
 * Our node:http server for `/metrics` (Prometheus text 0.0.4), `/healthz` (process alive: 200) and
 * `/readyz` (200 when ready, 503 with the reason otherwise). The OTel Prometheus exporter runs with
 * `preventServerStart`; this server asks it for text on each scrape.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** Content type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Listen host, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string;
  /** Listen port; 0 picks a free one. */
  readonly port: number;
  /** Produces the `/metrics` body. A rejection answers 500. */
  readonly metrics: () => Promise<string>;
  /** Readiness: `{ ready: true }` or `{ ready: false, reason }`. */
  readonly readiness: () => { readonly ready: boolean; readonly reason: string };
  readonly logger: Logger;
}

/** A started server. */
export interface HttpServerHandle {
  /** The port actually bound. */
  readonly port: number;
  /** Stop listening and drop open connections (idempotent). */
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Start the server.
 * @throws Error (EADDRINUSE, EACCES ...) when the address cannot be bound; the message names host:port.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/metrics':
        options.metrics().then(
          (body) => send(res, 200, body, PROMETHEUS_CONTENT_TYPE),
          (err: unknown) => {
            options.logger.error({ err: errorMessage(err) }, 'telemetry: /metrics collection failed');
            send(res, 500, `metrics collection failed: ${errorMessage(err)}\n`);
          },
        );
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
  });
  server.keepAliveTimeout = 5_000;
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
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
