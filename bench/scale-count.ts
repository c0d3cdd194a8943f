/**
 * Pure counting over the embedded API server's request log (`EmbeddedApiServer.requests`, dev/apiserver/types.ts)
 * for the scale simulation: requests in a time window by kind, writes, and the peak per 1-s bucket.
 * Timestamps are Unix ms as the server records them (`Date.now()` when the answer's status was written).
 */
import type { RequestRecord } from '../dev/apiserver/types.js';

/** HTTP methods that change a ResourceSlice (the publisher's POST create, PUT replace, DELETE). */
export const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Requests by kind, as the publisher makes them (publisher-client.ts). */
export interface RequestCounts {
  readonly total: number;
  /** GET of a Node (`/api/v1/nodes/<name>`: the owner-reference UID). */
  readonly getNode: number;
  /** GET of the resourceslices collection (LIST with a field selector). */
  readonly list: number;
  readonly post: number;
  readonly put: number;
  readonly del: number;
  /** POST + PUT + PATCH + DELETE. */
  readonly writes: number;
  /** Answers with a status ≥ 500 or no answer (status 0: dropped / timed out). */
  readonly failed: number;
  /** Everything else (discovery, anything unexpected). */
  readonly other: number;
}

/** Records with `fromMs ≤ timestampMs ≤ toMs` (inclusive on both ends: the log has 1-ms resolution). */
export function inWindow(records: readonly RequestRecord[], fromMs: number, toMs: number = Number.POSITIVE_INFINITY): RequestRecord[] {
  return records.filter((r) => r.timestampMs >= fromMs && r.timestampMs <= toMs);
}

/** Count `records` by kind (see {@link RequestCounts}). */
export function countRequests(records: readonly RequestRecord[]): RequestCounts {
  let getNode = 0, list = 0, post = 0, put = 0, del = 0, writes = 0, failed = 0, other = 0;
  for (const r of records) {
    if (r.status === 0 || r.status >= 500) failed += 1;
    if (WRITE_METHODS.has(r.method)) writes += 1;
    const slices = r.path.includes('/resourceslices');
    if (r.method === 'GET' && r.path.startsWith('/api/v1/nodes/')) getNode += 1;
    else if (r.method === 'GET' && slices) list += 1;
    else if (r.method === 'POST' && slices) post += 1;
    else if (r.method === 'PUT' && slices) put += 1;
    else if (r.method === 'DELETE' && slices) del += 1;
    else other += 1;
  }
  return { total: records.length, getNode, list, post, put, del, writes, failed, other };
}

/** Peak of requests per second: the largest count in any aligned 1-s bucket (`floor(timestampMs / 1000)`); 0 for none. */
export function peakPerSecond(records: readonly RequestRecord[]): number {
  const buckets = new Map<number, number>();
  let peak = 0;
  for (const r of records) {
    const k = Math.floor(r.timestampMs / 1000);
    const n = (buckets.get(k) ?? 0) + 1;
    buckets.set(k, n);
    if (n > peak) peak = n;
  }
  return peak;
}

/** `GET node 1, LIST 1, POST 1` style breakdown per `per` (e.g. per node), non-zero kinds only. */
export function describeCounts(c: RequestCounts, per = 1): string {
  const parts: [string, number][] = [
    ['GET node', c.getNode], ['LIST', c.list], ['POST', c.post], ['PUT', c.put], ['DELETE', c.del], ['other', c.other],
  ];
  const fmt = (n: number): string => (Number.isInteger(n / per) ? String(n / per) : (n / per).toFixed(2));
  const shown = parts.filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmt(n)}`);
  return shown.length === 0 ? 'none' : shown.join(', ');
}
