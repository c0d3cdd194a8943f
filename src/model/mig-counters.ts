/**
 * The counter model of dynamic MIG (KEP-4815 partitionable devices), as NVIDIA's DRA driver publishes it with
 * its DynamicMIG feature (kubernetes-sigs/dra-driver-nvidia-gpu, cmd/gpu-kubelet-plugin/partitions.go,
 * nvlib.go `inspectMigProfilesAndPlacements`, mig.go `CommonCapacitiesMig`/`camelToDNSName`), and the fit the
 * scheduler computes from it. Pure, no I/O; quantities are bigints (bytes for memory, counts otherwise).
 *
 * - One counter set per GPU, `gpu-<minor>-counter-set` (`GetSharedCounterSetName`).
 * - Its counters: one per MIG capacity, named by NVIDIA's camelCase → DNS label rule (`multiprocessors`,
 *   `copy-engines`, `decoders`, `encoders`, `jpeg-engines`, `ofa-engines`, `memory`), each valued at the largest
 *   value any profile has (`setMax` over every profile and placement: the full-GPU profile's, in practice), plus
 *   `memory-slice-<i>` = 1 for i in 0 … (largest placement size − 1) (`addCountersForMemSlices`).
 * - A placement device consumes its profile's capacities and `memory-slice-<i>` = 1 for each memory slice of its
 *   placement (`MigSpec.PartConsumesCounters`); the full-GPU device consumes the whole set
 *   (`GpuInfo.PartConsumesCounters`).
 * - The scheduler allocates a set of devices only if, per counter, their consumption sums to at most the set's
 *   value; a device consuming a counter its set lacks makes the pool invalid (KEP-4815; k8s.io/dynamic-resource-
 *   allocation v0.37.2 structured/internal/stable: allocator_stable.go `checkAvailableCounters`, pools_stable.go
 *   `validateDeviceCounterConsumption`). Only allocated devices consume: an unallocated device reserves nothing.
 *
 * Which hardware rules these counters express is proven in test/model/mig-counters.test.ts; the rest is checked
 * by `fitsHardwareRules` (mig-placements.ts).
 */
import type { MigGeometry, MigPlacement, MigProfileSpec } from './mig-placements.js';

/** Counter name → value (bytes for `memory`, counts otherwise). */
export type Counters = ReadonlyMap<string, bigint>;

/** The MIG capacities of a device, by NVIDIA's capacity names (mig.go `CommonCapacitiesMig`). */
export const MIG_CAPACITY_NAMES = ['multiprocessors', 'copyEngines', 'decoders', 'encoders', 'jpegEngines', 'ofaEngines', 'memory'] as const;
export type MigCapacityName = (typeof MIG_CAPACITY_NAMES)[number];

const MIB = 1024n * 1024n;

/** Name of a GPU's counter set: `gpu-<minor>-counter-set`. */
export function counterSetName(minor: number): string {
  return `gpu-${minor}-counter-set`;
}

/** Counter of memory slice `i` (0-based): `memory-slice-<i>` (partitions.go `memsliceCounterName`). */
export function memorySliceCounterName(i: number): string {
  return `memory-slice-${i}`;
}

/** NVIDIA's `camelToDNSName` for the capacity names: `copyEngines` → `copy-engines`. */
export function counterNameOf(capacity: MigCapacityName): string {
  return capacity.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** A profile's MIG capacities (`CommonCapacitiesMig`): counts, and memory in bytes (`memorySizeMB` × 2^20). */
export function profileCapacities(p: MigProfileSpec): Record<MigCapacityName, bigint> {
  return {
    multiprocessors: BigInt(p.multiprocessors),
    copyEngines: BigInt(p.copyEngines),
    decoders: BigInt(p.decoders),
    encoders: BigInt(p.encoders),
    jpegEngines: BigInt(p.jpegEngines),
    ofaEngines: BigInt(p.ofaEngines),
    memory: BigInt(p.memoryMiB) * MIB,
  };
}

/**
 * The full GPU's capacities in dynamic mode: per capacity, the largest any profile has (NVIDIA's `maxCapacities`,
 * published as the full-GPU device's `capacity`).
 */
export function maxCapacities(geometry: MigGeometry): Record<MigCapacityName, bigint> {
  const out = Object.fromEntries(MIG_CAPACITY_NAMES.map((n) => [n, 0n])) as Record<MigCapacityName, bigint>;
  for (const p of geometry.profiles) {
    if (p.placementStarts.length === 0) continue;
    const caps = profileCapacities(p);
    for (const n of MIG_CAPACITY_NAMES) if (caps[n] > out[n]) out[n] = caps[n];
  }
  return out;
}

/** Memory slices the counter set announces: the largest placement size (NVIDIA's `maxMemSlicesConsumed`). */
export function memorySliceCount(geometry: MigGeometry): number {
  let n = 0;
  for (const p of geometry.profiles) if (p.placementStarts.length > 0) n = Math.max(n, p.placementSize);
  return n;
}

/** The counters of a GPU's counter set (and what its full-GPU device consumes). Insertion order: capacities, then slices. */
export function gpuCounters(geometry: MigGeometry): Counters {
  const out = new Map<string, bigint>();
  const caps = maxCapacities(geometry);
  for (const n of MIG_CAPACITY_NAMES) out.set(counterNameOf(n), caps[n]);
  for (let i = 0; i < memorySliceCount(geometry); i++) out.set(memorySliceCounterName(i), 1n);
  return out;
}

/** What a placement device consumes from its GPU's counter set. */
export function placementConsumption(p: MigPlacement): Counters {
  const out = new Map<string, bigint>();
  const caps = profileCapacities(p.profile);
  for (const n of MIG_CAPACITY_NAMES) out.set(counterNameOf(n), caps[n]);
  for (let i = p.start; i < p.start + p.profile.placementSize; i++) out.set(memorySliceCounterName(i), 1n);
  return out;
}

/** Answer of {@link countersFit}. */
export type CounterFit =
  | { readonly ok: true; readonly remaining: Counters }
  | { readonly ok: false; readonly counter: string; readonly needed: bigint; readonly available: bigint };

/**
 * Do `consumptions` together fit in `available`, as the scheduler counts (sum per counter ≤ the set's value; a
 * counter the set lacks has 0)? @returns what remains, or the first counter that runs out.
 */
export function countersFit(available: Counters, consumptions: readonly Counters[]): CounterFit {
  const used = new Map<string, bigint>();
  for (const c of consumptions) for (const [name, v] of c) used.set(name, (used.get(name) ?? 0n) + v);
  const remaining = new Map(available);
  for (const [name, need] of used) {
    const have = available.get(name) ?? 0n;
    if (need > have) return { ok: false, counter: name, needed: need, available: have };
    remaining.set(name, have - need);
  }
  return { ok: true, remaining };
}
