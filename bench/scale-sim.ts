/**
 * What every process of the scale simulation shares: the simulated machine (an 8 × H100 80GB machine, no MIG,
 * built by `buildMockInventory` for each node's own name, so every node's UUIDs and serials differ), the node
 * names, the one-device change, and the memory figures each process reports about itself (peak RSS and heap
 * sampled every 200 ms, V8 heap retained after a full GC).
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { GpuSpec, MachineSpec } from '../src/gpu/mock/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { dnsSubdomainSchema, driverNameSchema, type DnsSubdomain } from '../src/model/names.js';

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

/** What one process of the simulation reports about its own memory (the `memory` op of each child). */
export interface ProcessMemory {
  /** `api server`, `publishers 0–999`, `harness`. */
  readonly label: string;
  readonly pid: number;
  /** Highest RSS sampled so far (every 200 ms), bytes. */
  readonly peakRssBytes: number;
  /** Highest V8 heapUsed sampled so far, bytes. */
  readonly peakHeapBytes: number;
  /** RSS now, bytes. */
  readonly rssBytes: number;
  /** V8 heap after a full GC now, minus the same before the process built its part of the simulation, bytes. */
  readonly retainedBytes: number;
  /** V8 heap after a full GC now (modules included), bytes. */
  readonly heapAfterGcBytes: number;
  /** The V8 heap limit of the process (`v8.getHeapStatistics().heap_size_limit`: old space limit + young), bytes. */
  readonly heapLimitBytes: number;
}

/**
 * The memory report of this process: the sampler's peaks, RSS now, and the heap retained after a full GC minus
 * `baselineBytes` (the same measured before the simulation's objects were built).
 */
export function memoryReport(label: string, sampler: { peek(): MemoryPeak }, baselineBytes: number): ProcessMemory {
  const retained = retainedHeapBytes();
  const { peakRssBytes, peakHeapBytes } = sampler.peek();
  return {
    label, pid: process.pid, peakRssBytes, peakHeapBytes, rssBytes: process.memoryUsage().rss, retainedBytes: retained - baselineBytes,
    heapAfterGcBytes: retained, heapLimitBytes: v8.getHeapStatistics().heap_size_limit,
  };
}
