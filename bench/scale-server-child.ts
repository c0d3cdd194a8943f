/**
 * Child process of the scale simulation: the ONE embedded API server (dev/apiserver/server.ts) with the
 * simulated Nodes, alone on its event loop so that neither the harness nor the publishers delay its answers.
 * Forked by scale-fleet.ts with argv `<nodes>`; answers over IPC (scale-ipc.ts):
 * - `start` → `{ url, kubeconfig }` (starts the server with Nodes `sim-node-0000`...);
 * - `fault` `{ on: boolean }` → HTTP 500 on every request whose path contains `/resourceslices` while on;
 * - `window` `{ fromMs, toMs, retries?, name? }` → counts of the server's request log in `[fromMs, toMs]`
 *   (scale-count.ts), the peak per 1-s bucket, with `retries` the peak without each node's first request in
 *   the window (retries alone), and how many requests do not name node `name`; the log stays here (it is the
 *   server's own, timestamps are this machine's Unix ms);
 * - `memory` → this process's {@link ProcessMemory}; `exit` closes the server.
 */
import { startApiServer, type EmbeddedApiServer, type RequestRecord } from '../dev/apiserver/server.js';
import { countRequests, inWindow, peakPerSecond, type RequestCounts } from './scale-count.js';
import { serveParent } from './scale-ipc.js';
import { memoryReport, retainedHeapBytes, sampleMemory, simNodeName } from './scale-sim.js';

/** The `window` op's answer. */
export interface WindowFigures {
  readonly counts: RequestCounts;
  /** Largest count of requests in an aligned 1-s bucket of the window. */
  readonly peak: number;
  /** The same without each node's first request in the window: retries alone (0 when not asked). */
  readonly peakRetries: number;
  /** Requests whose path and query do not contain `name` (0 when not asked). */
  readonly notNaming: number;
  /** Records in the whole log. */
  readonly logRecords: number;
}

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${what}: a finite number, got ${String(v)}`);
  return v;
}

function rec(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new TypeError('expected an object argument');
  return v as Record<string, unknown>;
}

/** `records` without the first one that names each simulated node (`sim-node-N` in the path or decoded query). */
function withoutFirstPerNode(records: readonly RequestRecord[]): RequestRecord[] {
  const seen = new Set<string>();
  return records.filter((r) => {
    const node = /sim-node-\d+/.exec(`${r.path}?${decodeURIComponent(r.query)}`)?.[0];
    if (node === undefined || seen.has(node)) return true;
    seen.add(node);
    return false;
  });
}

const count = Number(process.argv[2]);
if (!Number.isInteger(count) || count < 1) throw new Error(`usage: scale-server-child.ts <nodes>, got ${String(process.argv[2])}`);
const mem = sampleMemory();
const baseline = retainedHeapBytes();
let server: EmbeddedApiServer | undefined;
let removeFault: (() => void) | undefined;
const live = (): EmbeddedApiServer => {
  if (server === undefined) throw new Error('the server is not started (call start first)');
  return server;
};

serveParent(
  {
    start: async () => {
      server ??= await startApiServer({ nodes: Array.from({ length: count }, (_, i) => simNodeName(i)) });
      return { url: server.url, kubeconfig: server.kubeconfig() };
    },
    fault: (arg) => {
      const on = rec(arg).on === true;
      if (on && removeFault === undefined) removeFault = live().injectFault({ pathIncludes: '/resourceslices', status: 500 });
      if (!on && removeFault !== undefined) {
        removeFault();
        removeFault = undefined;
      }
      return { at: Date.now() };
    },
    window: (arg): WindowFigures => {
      const a = rec(arg);
      const fromMs = num(a.fromMs, 'fromMs');
      const toMs = a.toMs === undefined || a.toMs === null ? Number.POSITIVE_INFINITY : num(a.toMs, 'toMs');
      const records = inWindow(live().requests, fromMs, toMs);
      const name = typeof a.name === 'string' ? a.name : undefined;
      return {
        counts: countRequests(records),
        peak: peakPerSecond(records),
        peakRetries: a.retries === true ? peakPerSecond(withoutFirstPerNode(records)) : 0,
        notNaming: name === undefined ? 0 : records.filter((r) => !`${r.path}?${r.query}`.includes(name)).length,
        logRecords: live().requests.length,
      };
    },
    memory: () => memoryReport('api server', mem, baseline),
  },
  async () => {
    await server?.close();
  },
);
