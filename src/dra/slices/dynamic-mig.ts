/**
 * The devices and counter set of one GPU in dynamic MIG mode (KEP-4815 partitionable devices), as NVIDIA's DRA
 * driver publishes them with DynamicMIG (kubernetes-sigs/dra-driver-nvidia-gpu, cmd/gpu-kubelet-plugin:
 * partitions.go `PartGetDevice`/`PartSharedCounterSets`/`PartConsumesCounters`, mig.go `CommonAttributesMig`/
 * `CommonCapacitiesMig`, driver.go `generateSplitResourceSlices`). Pure; `build.ts` places the results in slices.
 *
 * Per GPU:
 * - counter set `gpu-<minor>-counter-set` with the counters of src/model/mig-counters.ts;
 * - the full GPU `gpu-<minor>`: the GPU's attributes, NVIDIA's `maxCapacities` as capacity, consuming the whole set;
 * - one device per GI profile and possible placement, `gpu-<minor>-mig-<profile>-<giProfileId>-<start>`:
 *   `type`=mig, `parentUUID`, `profile` and the GPU's attributes (no `uuid`: the instance does not exist yet),
 *   the profile's capacities, consuming them and its `memory-slice-<i>` counters;
 * - devices sorted by name, as NVIDIA's driver sorts them (the scheduler tries devices in slice order).
 *
 * MIG instances that already exist and that gpulet did not create (a foreign instance: made by an administrator,
 * mig-parted, or left by another driver) are never destroyed. Their share is taken out of the counter set (the
 * set is published with their consumption already subtracted: an unallocated device reserves nothing in the
 * scheduler, so publishing them as ordinary consuming devices would let the scheduler give their slices to a
 * placement device). Each is published as the static MIG device it is (same name as its placement, with its
 * `uuid`, no `consumesCounters`), so a claim can still get it. With any foreign instance the full GPU is not
 * published, nor any placement that no longer fits the counters or the hardware rules. Nor is the full GPU of an
 * Ampere GPU in MIG mode (leaving MIG mode needs a reset there; NVIDIA's driver does the same).
 *
 * Instances gpulet created for prepared claims (issue 12 item 3) are NOT foreign: the scheduler accounts for them
 * through the claims' allocations, so they stay placement devices; their names come in `ownInstances`.
 */
import type { V1CounterSet, V1Device, V1DeviceAttribute, V1DeviceCapacity, V1DeviceCounterConsumption, V1DeviceTaint } from '@kubernetes/client-node';
import type { GpuInfo, Inventory, MigDeviceInfo } from '../../gpu/types.js';
import { gpuDeviceName, migDeviceName } from '../../model/devices.js';
import {
  counterNameOf, counterSetName, countersFit, gpuCounters, maxCapacities, MIG_CAPACITY_NAMES, placementConsumption, profileCapacities,
  type Counters,
} from '../../model/mig-counters.js';
import {
  fitsHardwareRules, layoutViolations, MIG_COMPUTE_SLICES, MIG_MEMORY_SLICES, placementOfInstance, possiblePlacements,
  togglesMigModeWithoutReset, type MigGeometry, type MigPlacement, type MigProfileSpec,
} from '../../model/mig-placements.js';
import { migModeOf, unmatchedOverrides, type MigModeConfig } from '../../model/mig-mode.js';
import { dnsLabelProblem } from '../../model/names.js';
import {
  binaryQuantity, MAX_COUNTER_SETS_PER_SLICE, MAX_COUNTERS_PER_CONSUMPTION, MAX_COUNTERS_PER_COUNTER_SET,
  MAX_DEVICES_PER_SLICE_WITH_COUNTERS,
} from './limits.js';

/** A GPU's dynamic MIG facts could not be published (build.ts turns it into a SliceError). */
export class DynamicMigProblem extends Error {
  override readonly name = 'DynamicMigProblem';
}

/**
 * Which GPUs are published in dynamic MIG mode, and their MIG facts. Given to the slice builder by the
 * composition root (from `--mig-mode` and the GPU's profile table).
 */
export interface DynamicMigPolicy {
  /** The MIG geometry of `gpu` when it is published in dynamic mode; undefined: static mode. */
  geometryOf(gpu: GpuInfo): MigGeometry | undefined;
  /** Device names of the MIG instances gpulet created for prepared claims (not foreign). Default none. */
  readonly ownInstances?: ReadonlySet<string>;
}

/** Input of {@link dynamicGpuPart}. */
export interface DynamicGpuInput {
  readonly gpu: GpuInfo;
  readonly geometry: MigGeometry;
  /** The GPU's attributes that its devices share (build.ts `parentAttributes`). */
  readonly parentAttributes: Record<string, V1DeviceAttribute>;
  /** The device an existing MIG instance is in static mode (build.ts), used for foreign instances. */
  readonly existingDevice: (mig: MigDeviceInfo) => V1Device;
  readonly ownInstances: ReadonlySet<string>;
}

/** The counter set and devices of one dynamic GPU. */
export interface DynamicGpuPart {
  readonly counterSet: V1CounterSet;
  /** Sorted by name. */
  readonly devices: V1Device[];
}

function quantities(c: Counters): Record<string, { value: string }> {
  return Object.fromEntries([...c].map(([name, v]) => [name, { value: binaryQuantity(v) }]));
}

function capacityOf(caps: Record<(typeof MIG_CAPACITY_NAMES)[number], bigint>): Record<string, V1DeviceCapacity> {
  return Object.fromEntries(MIG_CAPACITY_NAMES.map((n) => [n, { value: binaryQuantity(caps[n]) }]));
}

/**
 * The placement of an existing instance in `geometry`'s terms.
 * @throws DynamicMigProblem when its GI profile is not in the GPU's table (what to do: publish the GPU statically).
 */
function placementOrThrow(geometry: MigGeometry, mig: MigDeviceInfo): MigPlacement {
  const p = placementOfInstance(geometry, mig);
  if (p === undefined) {
    throw new DynamicMigProblem(
      `GPU ${mig.parentUuid}: existing MIG instance ${mig.uuid} (${mig.profile}, GI profile ${mig.giProfileId}, placement ` +
        `${mig.placement.start}:${mig.placement.size}) is not in the GPU's MIG profile table; publish this GPU with --mig-mode <gpu>=static`,
    );
  }
  return p;
}

function checkCounters(where: string, counters: Record<string, unknown>, max: number): void {
  const names = Object.keys(counters);
  if (names.length === 0 || names.length > max) throw new DynamicMigProblem(`${where}: ${names.length} counters, 1 to ${max} allowed`);
  for (const n of names) {
    const p = dnsLabelProblem(n);
    if (p !== undefined) throw new DynamicMigProblem(`${where}: counter name ${JSON.stringify(n)} ${p}`);
  }
}

/**
 * Build one dynamic GPU's counter set and devices.
 * @throws DynamicMigProblem when an existing instance is not in the GPU's profile table, when the existing
 *   instances break the hardware rules together or need more than the counters hold, or when a counter set or
 *   consumption breaks a v1 limit (`MAX_COUNTERS_PER_COUNTER_SET`, `MAX_COUNTERS_PER_CONSUMPTION`, DNS-label
 *   counter and counter-set names).
 */
export function dynamicGpuPart(input: DynamicGpuInput): DynamicGpuPart {
  const { gpu, geometry } = input;
  const setName = counterSetName(gpu.minor);
  const nameProblem = dnsLabelProblem(setName);
  if (nameProblem !== undefined) throw new DynamicMigProblem(`GPU ${gpu.uuid}: counter set name ${setName} ${nameProblem}`);
  const full = gpuCounters(geometry);
  const foreignMigs = gpu.migDevices.filter((m) => !input.ownInstances.has(migDeviceName(m)));
  const foreign = foreignMigs.map((m) => placementOrThrow(geometry, m));
  const broken = layoutViolations(geometry, foreign);
  if (broken.length > 0) {
    throw new DynamicMigProblem(`GPU ${gpu.uuid}: its existing MIG instances break the hardware rules (${broken.map((v) => v.message).join('; ')})`);
  }
  const fit = countersFit(full, foreign.map(placementConsumption));
  if (!fit.ok) {
    throw new DynamicMigProblem(`GPU ${gpu.uuid}: its existing MIG instances need ${fit.needed} of counter ${fit.counter}, the GPU has ${fit.available}`);
  }
  const available = fit.remaining;
  const counterSet: V1CounterSet = { name: setName, counters: quantities(available) };
  checkCounters(`counter set ${setName}`, counterSet.counters, MAX_COUNTERS_PER_COUNTER_SET);

  // One consumption per device, from its own GPU's set (MAX_COUNTER_CONSUMPTIONS_PER_DEVICE is 2).
  const consumes = (c: Counters, device: string): V1DeviceCounterConsumption[] => {
    const consumption: V1DeviceCounterConsumption = { counterSet: setName, counters: quantities(c) };
    checkCounters(`device ${device} consumesCounters`, consumption.counters, MAX_COUNTERS_PER_CONSUMPTION);
    return [consumption];
  };

  const devices: V1Device[] = [];
  // The full GPU: not beside existing instances, nor on an Ampere GPU in MIG mode (MIG mode off needs a reset there).
  if (foreign.length === 0 && (!gpu.migEnabled || togglesMigModeWithoutReset(gpu.architecture))) {
    const name = gpuDeviceName(gpu);
    devices.push({
      name,
      attributes: { type: { string: 'gpu' }, uuid: { string: gpu.uuid }, ...input.parentAttributes },
      capacity: capacityOf(maxCapacities(geometry)),
      consumesCounters: consumes(full, name),
    });
  }
  const foreignNames = new Set(foreignMigs.map((m) => migDeviceName(m)));
  for (const p of possiblePlacements(geometry)) {
    const name = migDeviceName({ parentMinor: gpu.minor, profile: p.profile.name, giProfileId: p.profile.id, placement: { start: p.start, size: p.profile.placementSize } });
    if (foreignNames.has(name)) continue; // published below as the instance it is
    const consumption = placementConsumption(p);
    if (foreign.length > 0 && (!countersFit(available, [consumption]).ok || !fitsHardwareRules(geometry, foreign, p).ok)) continue;
    devices.push({
      name,
      attributes: { type: { string: 'mig' }, parentUUID: { string: gpu.uuid }, profile: { string: p.profile.name }, ...input.parentAttributes },
      capacity: capacityOf(profileCapacities(p.profile)),
      consumesCounters: consumes(consumption, name),
    });
  }
  for (const m of foreignMigs) devices.push(input.existingDevice(m));
  devices.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { counterSet, devices };
}

/** Counter names, for docs and tests: `multiprocessors`, `copy-engines`, … (NVIDIA's `camelToDNSName`). */
export const MIG_COUNTER_NAMES: readonly string[] = MIG_CAPACITY_NAMES.map(counterNameOf);

/** Input of {@link dynamicSlices}: the node's inventory and what build.ts supplies. */
export interface DynamicSlicesInput {
  readonly inventory: Inventory;
  readonly policy: DynamicMigPolicy;
  readonly parentAttributes: (gpu: GpuInfo) => Record<string, V1DeviceAttribute>;
  readonly existingDevice: (gpu: GpuInfo, mig: MigDeviceInfo) => V1Device;
  /** Taints of a device given the UUIDs it depends on (its GPU's, and an instance's own); undefined: none. */
  readonly taints: (uuids: readonly string[]) => V1DeviceTaint[] | undefined;
  /** Check one finished device (name unique in the pool, v1 limits); throws to refuse it. */
  readonly check: (device: V1Device) => void;
}

/** The slice groups of the dynamic GPUs: counter sets (≤ 8 per slice), and each GPU's devices (≤ 64 per slice). */
export interface DynamicSlices {
  readonly counterGroups: V1CounterSet[][];
  readonly deviceGroups: V1Device[][];
}

/**
 * Every dynamic GPU of the inventory, by minor number: counter sets in slices of their own
 * (`MAX_COUNTER_SETS_PER_SLICE` each), and per GPU one device slice (split at
 * `MAX_DEVICES_PER_SLICE_WITH_COUNTERS`), as NVIDIA's `generateSplitResourceSlices` lays them out for 1.35+.
 * @throws DynamicMigProblem (see {@link dynamicGpuPart}), or what `check` throws.
 */
export function dynamicSlices(input: DynamicSlicesInput): DynamicSlices {
  const sets: V1CounterSet[] = [];
  const deviceGroups: V1Device[][] = [];
  const gpus = [...input.inventory.gpus].sort((a, b) => a.minor - b.minor);
  for (const gpu of gpus) {
    const geometry = input.policy.geometryOf(gpu);
    if (geometry === undefined) continue;
    const part = dynamicGpuPart({
      gpu,
      geometry,
      parentAttributes: input.parentAttributes(gpu),
      existingDevice: (mig) => input.existingDevice(gpu, mig),
      ownInstances: input.policy.ownInstances ?? new Set(),
    });
    sets.push(part.counterSet);
    for (const d of part.devices) {
      const uuid = d.attributes?.['uuid']?.string;
      const taints = input.taints(uuid === undefined || uuid === gpu.uuid ? [gpu.uuid] : [gpu.uuid, uuid]);
      if (taints !== undefined) d.taints = taints;
      input.check(d);
    }
    for (let i = 0; i < part.devices.length; i += MAX_DEVICES_PER_SLICE_WITH_COUNTERS) {
      deviceGroups.push(part.devices.slice(i, i + MAX_DEVICES_PER_SLICE_WITH_COUNTERS));
    }
  }
  const counterGroups: V1CounterSet[][] = [];
  for (let i = 0; i < sets.length; i += MAX_COUNTER_SETS_PER_SLICE) counterGroups.push(sets.slice(i, i + MAX_COUNTER_SETS_PER_SLICE));
  return { counterGroups, deviceGroups };
}

/** What {@link dynamicMigPolicy} decided, for the composition root to log. */
export interface DynamicMigDecision {
  /** Undefined when no GPU is dynamic (the slices are then exactly those of static mode). */
  readonly policy: DynamicMigPolicy | undefined;
  /** UUIDs of the GPUs published in dynamic mode. */
  readonly dynamicGpus: readonly string[];
  /** `--mig-mode` overrides that name no GPU of this node. */
  readonly unmatched: readonly string[];
}

/**
 * Decide, once at start-up, which GPUs are dynamic and their geometry (8 memory and 7 compute slices, the
 * profiles and placements `profilesOf` gives).
 * @param profilesOf the GPU's GI profiles with possible placements, undefined when unknown.
 * @throws DynamicMigProblem when a GPU set to dynamic has no known profile table, saying which GPU and what to do.
 */
export function dynamicMigPolicy(
  config: MigModeConfig,
  inventory: Inventory,
  profilesOf: (gpu: GpuInfo) => readonly MigProfileSpec[] | undefined,
): DynamicMigDecision {
  const geometries = new Map<string, MigGeometry>();
  for (const gpu of inventory.gpus) {
    if (migModeOf(config, gpu) !== 'dynamic') continue;
    const profiles = profilesOf(gpu);
    if (profiles === undefined || profiles.length === 0) {
      throw new DynamicMigProblem(
        `GPU ${gpu.uuid} (index ${gpu.index}, ${gpu.productName}) is set to --mig-mode dynamic, but gpulet has no MIG profile table ` +
          `for this product; set it static (--mig-mode ...,${gpu.index}=static)`,
      );
    }
    geometries.set(gpu.uuid, { memorySlices: MIG_MEMORY_SLICES, computeSlices: MIG_COMPUTE_SLICES, profiles });
  }
  const unmatched = unmatchedOverrides(config, inventory.gpus);
  if (geometries.size === 0) return { policy: undefined, dynamicGpus: [], unmatched };
  return { policy: { geometryOf: (gpu) => geometries.get(gpu.uuid) }, dynamicGpus: [...geometries.keys()], unmatched };
}
