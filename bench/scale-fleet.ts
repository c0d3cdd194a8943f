/**
 * The simulated fleet of the scale benchmark, in child processes (`child_process.fork`, scale-ipc.ts): the ONE
 * embedded API server in its own process (scale-server-child.ts: its request log and the outage fault stay
 * there) and the N real `SlicePublisher`s in ⌈N / perChild⌉ processes (scale-publishers-child.ts, `perChild`
 * nodes each), so the server, each share of the publishers and the harness have their own event loop and heap.
 * Every method is one call to every child (in parallel) and resolves when all answered.
 */
import type { ProcessMemory } from './scale-sim.js';
import type { WindowFigures } from './scale-server-child.js';
import { forkChild, type ChildHandle } from './scale-ipc.js';

/** Publishers per child process by default. */
export const PUBLISHERS_PER_CHILD = 1000;

/**
 * V8 old-space limit (`--max-old-space-size`) of a process holding `nodes` of the simulation, MiB: a base for
 * the modules (tsx, the server's OpenAPI documents) and transient garbage, plus 64 KiB per node (the measured
 * retained heap is 7 KiB per publisher and 27 KiB per node at the server, BENCHMARKS.md), so the simulation's
 * memory is bounded by construction and a leak shows as a heap out-of-memory failure.
 */
export function heapLimitMiB(nodes: number): number {
  return 128 + Math.ceil((nodes * 64) / 1024);
}

/** The API server process and the publisher processes. */
export interface Fleet {
  readonly count: number;
  /** Publisher processes. */
  readonly children: number;
  /** Start every publisher; resolves when every node is synced. */
  start(): Promise<void>;
  /** `update()` with a rebuilt, equal inventory on every node; resolves when every node is synced. */
  rebuild(): Promise<void>;
  /** Lower GPU `gpu`'s memory by 1 GiB on node `node` (global index); resolves when that node is synced. */
  changeOne(node: number, gpu: number): Promise<void>;
  /** Lower GPU `gpu`'s memory by 1 GiB on every node and `update()`; resolves once every child has applied it. */
  changeAll(gpu: number): Promise<void>;
  /** Highest `consecutiveFailures` over every publisher. */
  maxFailures(): Promise<number>;
  /**
   * Failed reconciles so far over every publisher (`stats().errors`: HTTP errors, client-side timeouts, connection
   * errors), and the publishers counted by their last error (`stats().lastError`, node names and numbers as N).
   */
  errors(): Promise<{ count: number; kinds: Record<string, number> }>;
  /** Record, per node, when its next `whenSynced()` resolves; {@link syncTimes} returns them. */
  arm(): Promise<void>;
  /** Unix ms at which each node's armed `whenSynced()` resolved (waits for all). */
  syncTimes(): Promise<number[]>;
  /** Nodes whose stored slices do not match their last inventory (paged LISTs; outside measured windows). */
  mismatched(): Promise<number>;
  /** HTTP 500 on every `/resourceslices` request while on; resolves with the server's Unix ms of the switch. */
  fault(on: boolean): Promise<number>;
  /** The server's request log in `[fromMs, toMs]` (see scale-server-child.ts `window`). */
  window(fromMs: number, toMs?: number, extra?: { retries?: boolean; name?: string }): Promise<WindowFigures>;
  /** Memory of the server process, then of each publisher process. */
  memory(): Promise<ProcessMemory[]>;
  /** Stop every publisher and the server; the children exit. */
  close(): Promise<void>;
}

/**
 * Fork the server process (with `count` Nodes) and the publisher processes (publishers created, not started).
 * @throws when a child cannot start (e.g. the server cannot bind a port)
 */
export async function createFleet(count: number, perChild = PUBLISHERS_PER_CHILD): Promise<Fleet> {
  const started: ChildHandle[] = [];
  const closeAll = async (): Promise<void> => {
    // Publishers first (they stop their reconciles), then the server.
    await Promise.allSettled(started.slice(1).map((c) => c.close()));
    await started[0]?.close();
  };
  try {
    const server = await forkChild(new URL('./scale-server-child.ts', import.meta.url), [String(count)], 'scale API server', 2 * heapLimitMiB(count));
    started.push(server);
    const { kubeconfig } = await server.call<{ url: string; kubeconfig: string }>('start');
    const ranges: [number, number][] = [];
    for (let f = 0; f < count; f += perChild) ranges.push([f, Math.min(count, f + perChild)]);
    const pubs = await Promise.all(
      ranges.map(async ([f, t]) => {
        const c = await forkChild(new URL('./scale-publishers-child.ts', import.meta.url), [String(f), String(t)], `scale publishers ${f}–${t - 1}`, heapLimitMiB(t - f));
        started.push(c);
        await c.call('init', { kubeconfig });
        return c;
      }),
    );
    const all = async <T>(op: string, arg?: unknown): Promise<T[]> => Promise.all(pubs.map((c) => c.call<T>(op, arg)));
    return {
      count,
      children: pubs.length,
      start: async () => void (await all('start')),
      rebuild: async () => void (await all('rebuild')),
      changeOne: async (node, gpu) => void (await all('change', { node, gpu })),
      changeAll: async (gpu) => void (await all('changeAll', { gpu })),
      maxFailures: async () => Math.max(0, ...(await all<number>('maxFailures'))),
      errors: async () => {
        const parts = await all<{ count: number; kinds: Record<string, number> }>('errors');
        const kinds: Record<string, number> = {};
        for (const p of parts) for (const [k, n] of Object.entries(p.kinds)) kinds[k] = (kinds[k] ?? 0) + n;
        return { count: parts.reduce((a, p) => a + p.count, 0), kinds };
      },
      arm: async () => void (await all('arm')),
      syncTimes: async () => (await all<number[]>('syncTimes')).flat(),
      mismatched: async () => (await all<number>('mismatched')).reduce((a, b) => a + b, 0),
      fault: async (on) => (await server.call<{ at: number }>('fault', { on })).at,
      window: async (fromMs, toMs, extra = {}) => server.call<WindowFigures>('window', { fromMs, toMs: toMs ?? null, ...extra }),
      memory: async () => [await server.call<ProcessMemory>('memory'), ...(await all<ProcessMemory>('memory'))],
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
