/**
 * The simulated fleet of the scale benchmark: N real `SlicePublisher`s (src/dra/slices/publisher.ts), one per
 * simulated node, each with the inventory of an 8 × H100 80GB machine (no MIG) built by `buildMockInventory`
 * for its own node name (so every node's UUIDs, serials differ), all talking to ONE embedded API server
 * (dev/apiserver/server.ts) through the agent's own client (src/k8s/kubeconfig.ts + rest.ts, one connection
 * pool shared by every publisher); the harness's own LIST through @kubernetes/client-node. Also a process
 * memory sampler.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { KubeConfig, ResourceV1Api, type V1ResourceSlice } from '@kubernetes/client-node';
import { startApiServer, type EmbeddedApiServer } from '../dev/apiserver/server.js';
import { SlicePublisher } from '../src/dra/slices/publisher.js';
import { loadKubeConfig } from '../src/k8s/kubeconfig.js';
import { planReconcile } from '../src/dra/slices/plan.js';
import { buildResourceSlices } from '../src/dra/slices/build.js';
import { buildMockInventory, type GpuSpec, type MachineSpec } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { silentLogger } from '../src/log.js';
import { dnsSubdomainSchema, driverNameSchema, poolNameOf, type DnsSubdomain } from '../src/model/names.js';

/** DRA driver name the simulated nodes publish under. */
export const SCALE_DRIVER = driverNameSchema.parse('gpu.gpulet.dev');

/** The simulated machine: 8 × H100 80GB, MIG off (8 allocatable devices, one slice per node). */
export const SCALE_MACHINE: MachineSpec = {
  name: '8x-h100-80gb',
  gpus: Array.from({ length: 8 }, (): GpuSpec => ({ model: 'h100-80gb' })),
};

/** Name of simulated node `i` (0-based): `sim-node-0000`, ... */
export function simNodeName(i: number): DnsSubdomain {
  return dnsSubdomainSchema.parse(`sim-node-${String(i).padStart(4, '0')}`);
}

/**
 * `inventory` with GPU `gpuIndex`'s memory lowered by `deltaBytes` (a new object; the input is not changed).
 * Changes exactly one device's `capacity.memory` in the slices.
 * @throws RangeError when the GPU does not exist
 */
export function withGpuMemoryChanged(inventory: Inventory, gpuIndex: number, deltaBytes: number): Inventory {
  if (inventory.gpus[gpuIndex] === undefined) throw new RangeError(`no GPU ${gpuIndex} in the inventory`);
  return {
    ...inventory,
    gpus: inventory.gpus.map((g, i) => (i === gpuIndex ? { ...g, memoryBytes: g.memoryBytes - deltaBytes } : g)),
  };
}

/** One simulated node. */
export interface SimNode {
  readonly name: DnsSubdomain;
  readonly publisher: SlicePublisher;
  /** The inventory last given to `publisher.update()`. */
  inventory: Inventory;
}

/** The API server and the simulated nodes. */
export interface Fleet {
  readonly server: EmbeddedApiServer;
  readonly nodes: readonly SimNode[];
  /** Give every node (or the given ones) a new inventory via `update()`. */
  update(nodes?: readonly SimNode[]): void;
  /** Resolves when every publisher's `whenSynced()` has resolved. */
  allSynced(): Promise<void>;
  /**
   * LIST every ResourceSlice through the client (one request; do it outside measured windows) and count the
   * nodes whose stored slices do not match their last inventory (content compared as the publisher does:
   * `planReconcile(...).upToDate`). 0 means the server holds exactly what every node should publish.
   */
  mismatchedNodes(): Promise<number>;
  /** Stop every publisher, then close the server. */
  close(): Promise<void>;
}

/**
 * Start the server with `count` Nodes and create (not start) one publisher per node, with its inventory set.
 * Call `start()` on the publishers to begin.
 * @throws when the server cannot bind a port
 */
export async function createFleet(count: number): Promise<Fleet> {
  const names = Array.from({ length: count }, (_, i) => simNodeName(i));
  const server = await startApiServer({ nodes: names });
  const conn = await loadKubeConfig({ mode: 'yaml', yaml: server.kubeconfig() });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(server.kubeconfig());
  const logger = silentLogger();
  const nodes: SimNode[] = names.map((name) => ({
    name,
    inventory: buildMockInventory(SCALE_MACHINE, name),
    publisher: new SlicePublisher({ kubeConfig: conn, driverName: SCALE_DRIVER, nodeName: name, poolName: poolNameOf(name), logger }),
  }));
  const nodeUid = (name: string): string | undefined => server.get('v1', 'Node', undefined, name)?.metadata.uid;
  return {
    server,
    nodes,
    update(which = nodes) {
      for (const n of which) n.publisher.update(n.inventory);
    },
    async allSynced() {
      await Promise.all(nodes.map((n) => n.publisher.whenSynced()));
    },
    async mismatchedNodes() {
      const api = kubeConfig.makeApiClient(ResourceV1Api);
      const all = await api.listResourceSlice();
      const byNode = new Map<string, V1ResourceSlice[]>();
      for (const s of all.items) {
        if (s.spec.driver !== SCALE_DRIVER || s.spec.nodeName === undefined) continue;
        byNode.set(s.spec.nodeName, [...(byNode.get(s.spec.nodeName) ?? []), s]);
      }
      let bad = 0;
      for (const n of nodes) {
        const uid = nodeUid(n.name);
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
    async close() {
      await Promise.allSettled(nodes.map((n) => n.publisher.stop()));
      await server.close();
    },
  };
}

/** Peak and latest process memory over a sampling period. */
export interface MemoryPeak {
  /** Highest RSS seen, bytes. */
  readonly peakRssBytes: number;
  /** Highest V8 heapUsed seen, bytes. */
  readonly peakHeapBytes: number;
}

/** Sample `process.memoryUsage()` every `everyMs` (timer unref'ed) until `stop()`, which returns the peaks. */
export function sampleMemory(everyMs = 200): { stop(): MemoryPeak; peek(): MemoryPeak } {
  let peakRssBytes = 0;
  let peakHeapBytes = 0;
  const tick = (): void => {
    const m = process.memoryUsage();
    peakRssBytes = Math.max(peakRssBytes, m.rss);
    peakHeapBytes = Math.max(peakHeapBytes, m.heapUsed);
  };
  tick();
  const timer = setInterval(tick, everyMs);
  timer.unref();
  return {
    peek: () => ({ peakRssBytes, peakHeapBytes }),
    stop: () => {
      clearInterval(timer);
      tick();
      return { peakRssBytes, peakHeapBytes };
    },
  };
}

let gcFn: (() => void) | undefined;

/**
 * V8 heap in use after a full garbage collection, bytes: what is retained, without garbage. Exposes `gc` at run
 * time (`v8.setFlagsFromString('--expose-gc')`, then `gc` from a fresh context), so no node flag is needed.
 */
export function retainedHeapBytes(): number {
  if (gcFn === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  return process.memoryUsage().heapUsed;
}
