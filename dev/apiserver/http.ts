/**
 * Small HTTP helpers for the embedded server: bounded body reading and JSON / Status answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StatusError, toStatus } from './status.js';

/** Largest accepted request body: 3 MiB, the real API server's limit (`apiserver` `MaxRequestBodyBytes`). */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** Read the whole body; rejects with a 413 StatusError past {@link MAX_BODY_BYTES} (further data is discarded). */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer 413 at once and discard the rest of the body (the connection stays usable).
        chunks.length = 0;
        reject(new StatusError(413, 'RequestEntityTooLarge', `the request body exceeds ${MAX_BODY_BYTES} bytes`));
        return;
      }
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Answer with a JSON body (no-op when the socket is already gone). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Answer with raw bytes of a content type. */
export function sendBytes(res: ServerResponse, status: number, body: Buffer | string, contentType: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Answer with a failure `Status`; adds `Retry-After` when the details carry `retryAfterSeconds`. */
export function sendStatus(res: ServerResponse, err: StatusError): void {
  const retry = err.details?.retryAfterSeconds;
  sendJson(res, err.httpStatus, toStatus(err), retry !== undefined ? { 'Retry-After': String(retry) } : {});
}
