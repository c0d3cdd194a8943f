/**
 * Child process of the scale simulation: real `SlicePublisher`s (src/dra/slices/publisher.ts) for simulated
 * nodes `from`..`to − 1`, each with its own inventory (scale-sim.ts), all through one connection loaded by the
 * agent's own client (src/k8s/kubeconfig.ts + rest.ts: one keep-alive `http.Agent` pool in this process).
 * Forked by scale-fleet.ts with argv `<from> <to>`; answers over IPC (scale-ipc.ts), each op over all its nodes:
 * - `init` `{ kubeconfig }` → creates the publishers (not started);
 * - `start` → `update(inventory)` + `start()`, resolves when every `whenSynced()` did;
 * - `rebuild` → `update()` with a rebuilt, equal inventory, resolves when synced;
 * - `change` `{ node, gpu }` → if `node` (global index) is here: that GPU's memory −1 GiB, resolves when synced;
 * - `changeAll` `{ gpu }` → that GPU's memory −1 GiB on every node, `update()`, resolves at once;
 * - `maxFailures` → the highest `consecutiveFailures` of its publishers; `errors` → their failed reconciles, summed,
 *   and how many publishers last failed with each error (node names and numbers replaced by N);
 * - `arm` → records, per node, the Unix ms its next `whenSynced()` resolves; `syncTimes` waits for all of them;
 * - `mismatched` → nodes whose stored slices (LISTs of slices and Nodes, a page at a time, outside measured windows) do not
 *   match their last inventory, compared as the publisher compares (`planReconcile(...).upToDate`);
 * - `memory` → this process's {@link ProcessMemory}; `exit` stops every publisher.
 */
import type { V1Node, V1ResourceSlice } from '@kubernetes/client-node';
import { SlicePublisher } from '../src/dra/slices/publisher.js';
import { planReconcile } from '../src/dra/slices/plan.js';
import { buildResourceSlices } from '../src/dra/slices/build.js';
import { buildMockInventory } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { loadKubeConfig } from '../src/k8s/kubeconfig.js';
import { kubeRequest, KubeStatusError, type KubeConnection } from '../src/k8s/rest.js';
import { silentLogger } from '../src/log.js';
import { poolNameOf, type DnsSubdomain } from '../src/model/names.js';
import { serveParent } from './scale-ipc.js';
import { memoryReport, retainedHeapBytes, sampleMemory, SCALE_DRIVER, SCALE_MACHINE, simNodeName, withGpuMemoryChanged } from './scale-sim.js';

const GIB = 1024 ** 3;
const PAGE = 500;

interface SimNode {
  readonly name: DnsSubdomain;
  readonly publisher: SlicePublisher;
  /** The inventory last given to `publisher.update()`. */
  inventory: Inventory;
}

function rec(v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null) throw new TypeError('expected an object argument');
  return v as Record<string, unknown>;
}

function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${what}: an integer, got ${String(v)}`);
  return v;
}

interface ListPage<T> {
  readonly items: T[];
  readonly metadata?: { readonly continue?: string };
}

/**
 * One page of a LIST; retried (3 attempts) when the connection fails: a keep-alive socket the server has just
 * closed as idle (Node's 5 s `keepAliveTimeout`) gives ECONNRESET to the request that reuses it. HTTP errors
 * (KubeStatusError) are not retried.
 */
async function getPage<T>(conn: KubeConnection, path: string, cont: string | undefined): Promise<ListPage<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await kubeRequest<ListPage<T>>(conn, { method: 'GET', path, query: { limit: PAGE, continue: cont }, timeoutMs: 120_000 });
    } catch (err) {
      if (err instanceof KubeStatusError || attempt >= 3) throw err;
    }
  }
}

/** Call `each` on every item of a collection, one page of `PAGE` at a time (the server's `limit`/`continue`), so
 * only one page is held at once. */
async function forEachItem<T>(conn: KubeConnection, path: string, each: (item: T) => void): Promise<void> {
  let cont: string | undefined;
  do {
    const page = await getPage<T>(conn, path, cont);
    if (!Array.isArray(page.items)) throw new Error(`GET ${path}: no items array in the answer`);
    for (const item of page.items) each(item);
    cont = page.metadata?.continue === '' ? undefined : page.metadata?.continue;
  } while (cont !== undefined);
}

const from = Number(process.argv[2]);
const to = Number(process.argv[3]);
if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to <= from) {
  throw new Error(`usage: scale-publishers-child.ts <from> <to>, got ${process.argv.slice(2).join(' ')}`);
}
const label = `publishers ${from}–${to - 1}`;
const mem = sampleMemory();
const baseline = retainedHeapBytes();
let conn: KubeConnection | undefined;
let nodes: SimNode[] = [];
let armed: Promise<number>[] = [];
const synced = async (which: readonly SimNode[] = nodes): Promise<void> => {
  await Promise.all(which.map((n) => n.publisher.whenSynced()));
};
const changeGpu = (n: SimNode, gpu: number): void => {
  n.inventory = withGpuMemoryChanged(n.inventory, gpu, GIB);
  n.publisher.update(n.inventory);
};

serveParent(
  {
    init: async (arg) => {
      const yaml = rec(arg).kubeconfig;
      if (typeof yaml !== 'string') throw new TypeError('init: kubeconfig (YAML) missing');
      conn = await loadKubeConfig({ mode: 'yaml', yaml });
      const logger = silentLogger();
      const c = conn;
      nodes = Array.from({ length: to - from }, (_, k) => {
        const name = simNodeName(from + k);
        return {
          name,
          inventory: buildMockInventory(SCALE_MACHINE, name),
          publisher: new SlicePublisher({ kubeConfig: c, driverName: SCALE_DRIVER, nodeName: name, poolName: poolNameOf(name), logger }),
        };
      });
      return { nodes: nodes.length };
    },
    start: async () => {
      for (const n of nodes) {
        n.publisher.update(n.inventory);
        n.publisher.start();
      }
      await synced();
    },
    rebuild: async () => {
      for (const n of nodes) {
        n.inventory = buildMockInventory(SCALE_MACHINE, n.name);
        n.publisher.update(n.inventory);
      }
      await synced();
    },
    change: async (arg) => {
      const a = rec(arg);
      const n = nodes[int(a.node, 'node') - from];
      if (n === undefined) return { here: false };
      changeGpu(n, int(a.gpu, 'gpu'));
      await n.publisher.whenSynced();
      return { here: true };
    },
    changeAll: (arg) => {
      const gpu = int(rec(arg).gpu, 'gpu');
      for (const n of nodes) changeGpu(n, gpu);
    },
    maxFailures: () => Math.max(0, ...nodes.map((n) => n.publisher.stats().consecutiveFailures)),
    errors: () => {
      const kinds: Record<string, number> = {};
      for (const n of nodes) {
        const e = n.publisher.stats().lastError;
        if (e === undefined) continue;
        const kind = e.replace(/sim-node-\d+/g, 'sim-node-N').replace(/\d+/g, 'N').slice(0, 160);
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      return { count: nodes.reduce((a, n) => a + n.publisher.stats().errors, 0), kinds };
    },
    arm: () => {
      armed = nodes.map((n) => n.publisher.whenSynced().then(() => Date.now()));
    },
    syncTimes: async () => Promise.all(armed),
    mismatched: async () => {
      if (conn === undefined) throw new Error('mismatched: call init first');
      const mine = new Set<string>(nodes.map((n) => n.name));
      const uids = new Map<string, string>();
      await forEachItem<V1Node>(conn, '/api/v1/nodes', (node) => {
        const name = node.metadata?.name;
        if (name !== undefined && mine.has(name) && node.metadata?.uid !== undefined) uids.set(name, node.metadata.uid);
      });
      const byNode = new Map<string, V1ResourceSlice[]>();
      await forEachItem<V1ResourceSlice>(conn, '/apis/resource.k8s.io/v1/resourceslices', (s) => {
        const nodeName = s.spec.nodeName;
        if (s.spec.driver !== SCALE_DRIVER || nodeName === undefined || !mine.has(nodeName)) return;
        byNode.set(nodeName, [...(byNode.get(nodeName) ?? []), s]);
      });
      let bad = 0;
      for (const n of nodes) {
        const uid = uids.get(n.name);
        const plan = planReconcile({
          existing: byNode.get(n.name) ?? [],
          build: (generation) => buildResourceSlices({
            driverName: SCALE_DRIVER, nodeName: n.name, poolName: poolNameOf(n.name), inventory: n.inventory, generation,
            ...(uid === undefined ? {} : { nodeUid: uid }),
          }),
          poolName: n.name,
          lastGeneration: 0,
          ignoreTaints: false,
        });
        if (!plan.upToDate) bad += 1;
      }
      return bad;
    },
    memory: () => memoryReport(label, mem, baseline),
  },
  async () => {
    await Promise.allSettled(nodes.map((n) => n.publisher.stop()));
  },
);
