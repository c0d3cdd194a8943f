/**
 * Dynamic MIG test helpers: a one-GPU node of a mock model in dynamic mode, its published slices as the API
 * server takes them (wire JSON), and a reading of those slices as the scheduler reads them — counter sets and
 * per-device consumption parsed from the Quantity strings (own parser, not gpulet's `binaryQuantity`), MIG
 * placements parsed from the device names (NVIDIA's `gpu-<minor>-mig-<profile>-<giProfileId>-<start>`).
 */
import { taintsByUuid } from '../../src/dra/slices/taints.js';
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { buildResourceSlices, wireSlice, type SliceSpec } from '../../src/dra/slices/build.js';
import { dynamicMigPolicy } from '../../src/dra/slices/dynamic-mig.js';
import { buildMockInventory, GPU_MODELS, migProfilesByProductName, type GpuModelName } from '../../src/gpu/mock/index.js';
import type { GpuInfo, Inventory, MigDeviceInfo } from '../../src/gpu/types.js';
import { MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES, type MigGeometry, type MigPlacement } from '../../src/model/mig-placements.js';
import { parseMigMode } from '../../src/model/mig-mode.js';
import { DEFAULT_DRIVER_NAME, poolNameOf, type DnsSubdomain } from '../../src/model/names.js';

export const MIG_MODELS = Object.keys(GPU_MODELS) as GpuModelName[];
export const NODE = 'node-a' as DnsSubdomain;
const MIB = 1024 * 1024;

/** The geometry of a mock model: 8 memory and 7 compute slices (MIG guide), its profile table. */
export function geometryOf(model: GpuModelName): MigGeometry {
  return { memorySlices: MIG_MEMORY_SLICES, computeSlices: MIG_COMPUTE_SLICES, profiles: GPU_MODELS[model].migProfiles };
}

/** A MigDeviceInfo for an existing instance at `p` on `gpu` (as discovery would report it). */
export function instanceAt(gpu: GpuInfo, p: MigPlacement, index: number): MigDeviceInfo {
  return {
    uuid: `MIG-${gpu.minor.toString(16).padStart(4, '0')}${p.start.toString(16).padStart(4, '0')}-${p.profile.id.toString(16).padStart(4, '0')}-2222-3333-444455556666`,
    parentUuid: gpu.uuid,
    parentMinor: gpu.minor,
    index,
    profile: p.profile.name,
    giProfileId: p.profile.id,
    placement: { start: p.start, size: p.profile.placementSize },
    gpuInstanceId: index + 1,
    computeInstanceId: 0,
    multiprocessors: p.profile.multiprocessors,
    copyEngines: p.profile.copyEngines,
    decoders: p.profile.decoders,
    encoders: p.profile.encoders,
    jpegEngines: p.profile.jpegEngines,
    ofaEngines: p.profile.ofaEngines,
    memoryBytes: p.profile.memoryMiB * MIB,
  };
}

/** A node with `count` GPUs of `model` (MIG mode on when `existing` instances are given for GPU 0). */
export function nodeOf(model: GpuModelName, count = 1, existing: readonly MigPlacement[] = []): Inventory {
  const inv = buildMockInventory({ gpus: Array.from({ length: count }, () => ({ model })) }, NODE);
  const [first, ...rest] = inv.gpus;
  if (first === undefined || existing.length === 0) return inv;
  const gpu0: GpuInfo = { ...first, migEnabled: true, migDevices: existing.map((p, i) => instanceAt(first, p, i)) };
  return { ...inv, gpus: [gpu0, ...rest] };
}

/**
 * gpulet's slices of `inventory` with `--mig-mode=<migMode>`, through the production policy; the GPUs in
 * `unhealthy` have a fatal XID 79 (their `<driver>/xid` taint, as the health pipeline makes it).
 */
export function dynamicSlices(inventory: Inventory, migMode = 'dynamic', unhealthy?: ReadonlySet<string>): SliceSpec[] {
  const parsed = parseMigMode(migMode);
  if (!parsed.ok) throw new Error(parsed.problem);
  const { policy } = dynamicMigPolicy(parsed.config, inventory, (gpu) => migProfilesByProductName(gpu.productName));
  return buildResourceSlices({
    driverName: DEFAULT_DRIVER_NAME,
    nodeName: NODE,
    poolName: poolNameOf(NODE),
    inventory,
    generation: 1,
    ...(policy === undefined ? {} : { dynamicMig: policy }),
    ...(unhealthy === undefined
      ? {}
      : { taints: taintsByUuid(DEFAULT_DRIVER_NAME, new Map([...unhealthy].map((u) => [u, { xid: { xid: 79, fatal: true, sinceMs: 0, lastMs: 0 } }]))) }),
  });
}

/** The slices as JSON on the wire. */
export function onWire(slices: readonly SliceSpec[]): V1ResourceSlice[] {
  return slices.map((s) => JSON.parse(JSON.stringify(wireSlice(s))) as V1ResourceSlice);
}

const SUFFIX: Record<string, bigint> = { '': 1n, Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };

/** A non-negative integer Quantity (`80384Mi`, `132`) as a bigint; throws on anything else. */
export function quantity(q: string): bigint {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(q);
  if (!m) throw new Error(`not an integer binary quantity: ${q}`);
  return BigInt(m[1]!) * SUFFIX[m[2] ?? '']!;
}

/** One published device as the scheduler sees it. */
export interface SeenDevice {
  readonly name: string;
  /** Counter set name → counter → value; undefined when the device consumes nothing. */
  readonly consumes: ReadonlyMap<string, ReadonlyMap<string, bigint>> | undefined;
  /** The MIG placement its name encodes (GI profile ID, start), for MIG devices. */
  readonly placement?: { readonly profileId: number; readonly start: number };
  readonly whole: boolean;
}

/** What a pool publishes: counter sets and devices. */
export interface SeenPool {
  readonly counterSets: ReadonlyMap<string, ReadonlyMap<string, bigint>>;
  readonly devices: ReadonlyMap<string, SeenDevice>;
}

const MIG_NAME = /^gpu-(\d+)-mig-([a-z0-9-]+)-(\d+)-(\d+)$/;

function counters(c: Record<string, { value: string }>): Map<string, bigint> {
  return new Map(Object.entries(c).map(([k, v]) => [k, quantity(v.value)]));
}

/** Read wire slices as the scheduler does (sets by name, devices with their consumption). */
export function readPool(slices: readonly V1ResourceSlice[]): SeenPool {
  const counterSets = new Map<string, Map<string, bigint>>();
  const devices = new Map<string, SeenDevice>();
  for (const s of slices) {
    for (const set of s.spec.sharedCounters ?? []) counterSets.set(set.name, counters(set.counters));
    for (const d of s.spec.devices ?? []) {
      const m = MIG_NAME.exec(d.name);
      const consumes = d.consumesCounters === undefined ? undefined : new Map(d.consumesCounters.map((c) => [c.counterSet, counters(c.counters)]));
      devices.set(d.name, {
        name: d.name,
        consumes,
        ...(m ? { placement: { profileId: Number(m[3]), start: Number(m[4]) } } : {}),
        whole: /^gpu-\d+$/.test(d.name),
      });
    }
  }
  return { counterSets, devices };
}

/**
 * Whether the scheduler may allocate `names` together: per counter set and counter, the consumption of the
 * chosen devices sums to at most the published value; a consumed counter the set lacks is an invalid pool.
 */
export function fitsPublished(pool: SeenPool, names: readonly string[]): boolean {
  const used = new Map<string, Map<string, bigint>>();
  for (const n of names) {
    const d = pool.devices.get(n);
    if (d === undefined) throw new Error(`no device ${n}`);
    for (const [set, cs] of d.consumes ?? []) {
      const u = used.get(set) ?? new Map<string, bigint>();
      for (const [c, v] of cs) u.set(c, (u.get(c) ?? 0n) + v);
      used.set(set, u);
    }
  }
  for (const [set, u] of used) {
    const have = pool.counterSets.get(set);
    if (have === undefined) throw new Error(`counter set ${set} is not published`);
    for (const [c, v] of u) {
      const cap = have.get(c);
      if (cap === undefined) throw new Error(`counter ${c} is not in set ${set}`);
      if (v > cap) return false;
    }
  }
  return true;
}

/** The placements and whole-GPU uses a set of published device names stands for, in `geometry`'s terms. */
export function asLayout(geometry: MigGeometry, pool: SeenPool, names: readonly string[]): { instances: MigPlacement[]; whole: number } {
  const instances: MigPlacement[] = [];
  let whole = 0;
  for (const n of names) {
    const d = pool.devices.get(n)!;
    if (d.whole) whole += 1;
    else if (d.placement !== undefined) {
      const profile = geometry.profiles.find((p) => p.id === d.placement!.profileId);
      if (profile === undefined) throw new Error(`device ${n}: GI profile ${d.placement.profileId} not in the table`);
      instances.push({ profile, start: d.placement.start });
    }
  }
  return { instances, whole };
}
