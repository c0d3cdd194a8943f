/**
 * Pure ResourceSlice builder: inventory (+ health) → resource.k8s.io/v1 ResourceSlice bodies for one node-local
 * pool. No I/O; same input → deep-equal output. The reconciling writer is `publisher.ts`.
 *
 * Attribute and capacity names follow NVIDIA's k8s-dra-driver-gpu (`cmd/gpu-kubelet-plugin/deviceinfo.go`,
 * `GetDevice()`), so CEL selectors carry over by changing the domain only; see docs/contracts.md §4 and
 * test/reference/examples.md for the worked example this reproduces.
 */
import type { V1CounterSet, V1Device, V1DeviceAttribute, V1DeviceCapacity, V1DeviceTaint, V1ObjectMeta, V1OwnerReference, V1ResourceSlice, V1ResourceSliceSpec } from '@kubernetes/client-node';
import { GpuletError } from '../../errors.js';
import type { GpuInfo, Inventory } from '../../gpu/types.js';
import { allocatableDevices, migDeviceName, type AllocatableDevice } from '../../model/devices.js';
import { computeCapabilityVersion, cudaDriverVersion, isStrictSemver, normalizeVersion, SemverError } from './semver.js';
import {
  deviceQualifiedNameProblem, dnsLabelProblem, labelNameProblem, labelValueProblem, type DnsSubdomain, type DriverName, type PoolName,
} from '../../model/names.js';
import {
  binaryQuantity, MAX_ATTRIBUTES_AND_CAPACITIES, MAX_DEVICES_PER_SLICE, MAX_DEVICES_PER_SLICE_WITH_TAINTS, MAX_GENERATE_NAME_LENGTH,
  MAX_STRING_VALUE_LENGTH, MAX_TAINTS_PER_DEVICE,
} from './limits.js';
import { DynamicMigProblem, dynamicSlices, type DynamicMigPolicy, type DynamicSlices } from './dynamic-mig.js';

/** A slice could not be built: names the device and attribute at fault (or the pool generation). */
export class SliceError extends GpuletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLICE', message, options);
  }
}

/**
 * A ResourceSlice body ready to POST (metadata has `generateName`, never `name`). A slice holds devices or, in
 * dynamic MIG mode, counter sets (`sharedCounters`); a counter slice carries `devices: []` here, which the API
 * rejects beside `sharedCounters` — {@link wireSlice} drops it, and the planner sends only wire bodies.
 */
export interface SliceSpec {
  apiVersion: 'resource.k8s.io/v1';
  kind: 'ResourceSlice';
  metadata: V1ObjectMeta & { generateName: string; labels: Record<string, string> };
  spec: V1ResourceSliceSpec & { driver: string; nodeName: string; devices: V1Device[] };
}

/**
 * Input of {@link buildResourceSlices}. The names were checked where they entered (src/config.ts, with the rules
 * of src/model/names.ts) and arrive branded, so the builder does not check them again.
 */
export interface BuildSlicesInput {
  /** DRA driver name, a DNS subdomain ≤ 63 chars, e.g. `gpu.gpulet.dev`. */
  readonly driverName: DriverName;
  /** Node the devices are on (`spec.nodeName`), a DNS subdomain. */
  readonly nodeName: DnsSubdomain;
  /** Pool name (≤ 253 chars, DNS subdomains separated by `/`); gpulet's is `poolNameOf(nodeName)`. */
  readonly poolName: PoolName;
  readonly inventory: Inventory;
  /** `spec.pool.generation` to stamp on every slice (≥ 0). */
  readonly generation: number;
  /** Node `metadata.uid`; when known, every slice gets a controller owner reference to the Node. */
  readonly nodeUid?: string;
  /**
   * Device taints (KEP-5055) by UUID (`GPU-...`/`MIG-...`), as `taintsByUuid()` of ./taints.ts makes them from
   * the health conditions; devices not in the map are untainted.
   */
  readonly taints?: ReadonlyMap<string, readonly V1DeviceTaint[]>;
  /** GPUs published in dynamic MIG mode (`--mig-mode`), with their MIG facts; absent: every GPU static. */
  readonly dynamicMig?: DynamicMigPolicy;
}

/** Label keys put on every slice (label selectors; the publisher itself lists by field selector). */
export const SLICE_LABEL_DRIVER = 'gpulet.dev/driver';
export const SLICE_LABEL_NODE = 'gpulet.dev/node';

type Attributes = Record<string, V1DeviceAttribute>;
type Capacities = Record<string, V1DeviceCapacity>;

/** Attributes shared by a GPU and its MIG devices (the GPU's identity, versions and PCI location). */
function parentAttributes(gpu: GpuInfo, versions: Versions): Attributes {
  return {
    productName: { string: gpu.productName },
    brand: { string: gpu.brand },
    architecture: { string: gpu.architecture },
    cudaComputeCapability: { version: versions.cc(gpu) },
    driverVersion: { version: versions.driver },
    cudaDriverVersion: { version: versions.cuda },
    // NVIDIA's driver name for the bus ID (unprefixed = driver domain) ...
    pcieBusID: { string: gpu.pci.busId },
    // ... and the standard names (KEP-5316 `resource.kubernetes.io/pciBusID`, KEP-4381 `.../pcieRoot`).
    'resource.kubernetes.io/pciBusID': { string: gpu.pci.busId },
    // Unknown when the device is not in sysfs: omitted, as NVIDIA's driver does, rather than published empty.
    ...(gpu.pci.pcieRoot === '' ? {} : { 'resource.kubernetes.io/pcieRoot': { string: gpu.pci.pcieRoot } }),
    // `HMM` / `ATS` / `None`, only where NVML says (deviceinfo.go `GpuInfo.Attributes`, mig.go `CommonAttributesMig`).
    ...(gpu.addressingMode === undefined ? {} : { addressingMode: { string: gpu.addressingMode } }),
  };
}

interface Versions {
  readonly driver: string;
  readonly cuda: string;
  cc(gpu: GpuInfo): string;
}

function versionsOf(inventory: Inventory): Versions {
  const wrap = (what: string, f: () => string): string => {
    try {
      return f();
    } catch (err) {
      if (err instanceof SemverError) throw new SliceError(`node ${what}: ${err.message}`, { cause: err });
      throw err;
    }
  };
  return {
    driver: wrap('attribute driverVersion', () => normalizeVersion(inventory.system.driverVersion)),
    cuda: wrap('attribute cudaDriverVersion', () => cudaDriverVersion(inventory.system.cudaDriverVersion)),
    cc: (gpu) => wrap(`device ${gpu.uuid} attribute cudaComputeCapability`, () => computeCapabilityVersion(gpu.cudaComputeCapability)),
  };
}

function deviceBody(d: AllocatableDevice, versions: Versions): { attributes: Attributes; capacity: Capacities } {
  if (d.kind === 'gpu') {
    return {
      attributes: { type: { string: 'gpu' }, uuid: { string: d.uuid }, ...parentAttributes(d.gpu, versions) },
      capacity: { memory: { value: binaryQuantity(d.gpu.memoryBytes) } },
    };
  }
  const m = d.mig;
  const capacity: Capacities = {
    multiprocessors: { value: binaryQuantity(m.multiprocessors) },
    copyEngines: { value: binaryQuantity(m.copyEngines) },
    decoders: { value: binaryQuantity(m.decoders) },
    encoders: { value: binaryQuantity(m.encoders) },
    jpegEngines: { value: binaryQuantity(m.jpegEngines) },
    ofaEngines: { value: binaryQuantity(m.ofaEngines) },
    memory: { value: binaryQuantity(m.memoryBytes) },
  };
  // NVIDIA's driver also publishes one `memorySlice<i>` = 1 per memory slice the placement covers.
  for (let i = m.placement.start; i < m.placement.start + m.placement.size; i++) capacity[`memorySlice${i}`] = { value: '1' };
  return {
    attributes: {
      type: { string: 'mig' },
      uuid: { string: d.uuid },
      parentUUID: { string: m.parentUuid },
      profile: { string: m.profile },
      ...parentAttributes(d.gpu, versions),
    },
    capacity,
  };
}

/** Throw a {@link SliceError} naming the device and attribute when the device breaks a v1 validation limit. */
export function validateDevice(device: V1Device): void {
  const where = `device ${device.name}`;
  const p = dnsLabelProblem(device.name);
  if (p !== undefined) throw new SliceError(`${where}: name ${p}`);
  const attrs = Object.entries(device.attributes ?? {});
  const caps = Object.entries(device.capacity ?? {});
  if (attrs.length + caps.length > MAX_ATTRIBUTES_AND_CAPACITIES) {
    throw new SliceError(`${where}: ${attrs.length + caps.length} attributes + capacities, at most ${MAX_ATTRIBUTES_AND_CAPACITIES} allowed`);
  }
  for (const [key, value] of attrs) {
    const kp = deviceQualifiedNameProblem(key);
    if (kp !== undefined) throw new SliceError(`${where}: attribute name ${JSON.stringify(key)} ${kp}`);
    const set = [value.string, value.version, value.bool, value._int].filter((v) => v !== undefined);
    if (set.length !== 1) throw new SliceError(`${where}: attribute ${key} must have exactly one value field`);
    if (value.string !== undefined && Buffer.byteLength(value.string, 'utf8') > MAX_STRING_VALUE_LENGTH) {
      throw new SliceError(`${where}: attribute ${key} value ${JSON.stringify(value.string)} is ${Buffer.byteLength(value.string, 'utf8')} bytes, at most ${MAX_STRING_VALUE_LENGTH} allowed`);
    }
    if (value.version !== undefined && !isStrictSemver(value.version)) {
      throw new SliceError(`${where}: attribute ${key} value ${JSON.stringify(value.version)} is not semver 2.0.0 (≤ 64 chars)`);
    }
  }
  for (const [key] of caps) {
    const kp = deviceQualifiedNameProblem(key);
    if (kp !== undefined) throw new SliceError(`${where}: capacity name ${JSON.stringify(key)} ${kp}`);
  }
  if ((device.taints?.length ?? 0) > MAX_TAINTS_PER_DEVICE) throw new SliceError(`${where}: more than ${MAX_TAINTS_PER_DEVICE} taints`);
  for (const t of device.taints ?? []) {
    const tp = labelNameProblem(t.key) ?? (t.value === undefined ? undefined : labelValueProblem(t.value));
    if (tp !== undefined) throw new SliceError(`${where}: taint ${t.key}: ${tp}`);
  }
}

function validateGeneration(input: BuildSlicesInput): void {
  if (!Number.isSafeInteger(input.generation) || input.generation < 0) {
    throw new SliceError(`pool generation ${input.generation} must be a non-negative integer`);
  }
}

/**
 * `metadata.generateName` for the slices: `<driver>-<node>-`, lower-cased, characters outside `[a-z0-9.-]`
 * replaced by `-`, cut to the 58 characters the API server keeps (it appends 5 random characters).
 */
export function sliceGenerateName(driverName: string, nodeName: string): string {
  const base = `${driverName}-${nodeName}-`.toLowerCase().replace(/[^a-z0-9.-]/g, '-');
  return base.slice(0, MAX_GENERATE_NAME_LENGTH);
}

/** Labels identifying driver and node. The node label is omitted when the node name is not a valid label value (> 63 chars). */
export function sliceLabels(driverName: string, nodeName: string): Record<string, string> {
  const labels: Record<string, string> = { [SLICE_LABEL_DRIVER]: driverName };
  if (labelValueProblem(nodeName) === undefined) labels[SLICE_LABEL_NODE] = nodeName;
  return labels;
}

/** Greedy, order-preserving split: ≤ 128 devices per slice, ≤ 64 in a slice holding any tainted device. */
function chunk(devices: readonly V1Device[]): V1Device[][] {
  const out: V1Device[][] = [];
  let cur: V1Device[] = [];
  let curTainted = false;
  for (const d of devices) {
    const tainted = (d.taints?.length ?? 0) > 0;
    const limit = curTainted || tainted ? MAX_DEVICES_PER_SLICE_WITH_TAINTS : MAX_DEVICES_PER_SLICE;
    if (cur.length + 1 > limit) {
      out.push(cur);
      cur = [];
      curTainted = false;
    }
    cur.push(d);
    curTainted ||= tainted;
  }
  if (cur.length > 0 || out.length === 0) out.push(cur);
  return out;
}

/** The dynamic MIG GPUs' slices (src/dra/slices/dynamic-mig.ts), with gpulet's taints and device checks. */
function dynamicMigSlices(input: BuildSlicesInput, policy: DynamicMigPolicy, versions: Versions, seen: Set<string>): DynamicSlices {
  try {
    return dynamicSlices({
      inventory: input.inventory,
      policy,
      parentAttributes: (gpu) => parentAttributes(gpu, versions),
      existingDevice: (gpu, mig) => ({ name: migDeviceName(mig), ...deviceBody({ kind: 'mig', name: migDeviceName(mig), uuid: mig.uuid, gpu, mig }, versions) }),
      // A placement of a tainted GPU is as unusable as the GPU: it carries the GPU's taints (and an existing
      // instance its own too; the GPU's win on a shared key, as a MIG device's effective conditions do).
      taints: (uuids) => {
        const byKey = new Map<string, V1DeviceTaint>();
        for (const u of uuids) for (const t of input.taints?.get(u) ?? []) if (!byKey.has(t.key)) byKey.set(t.key, { ...t });
        return byKey.size > 0 ? [...byKey.values()] : undefined;
      },
      check: (device) => {
        if (seen.has(device.name)) throw new SliceError(`device ${device.name}: duplicate device name in pool ${input.poolName}`);
        seen.add(device.name);
        validateDevice(device);
      },
    });
  } catch (err) {
    if (err instanceof DynamicMigProblem) throw new SliceError(err.message, { cause: err });
    throw err;
  }
}

/**
 * Build the ResourceSlices of one node-local pool. Devices come from `allocatableDevices(inventory)` in its
 * stable order. A pool always has at least one slice (an empty `devices` list when there are no GPUs), so
 * consumers see the pool exists. GPUs in dynamic MIG mode (`input.dynamicMig`) come after the static slices:
 * their counter sets in slices of their own, then one device slice per GPU (src/dra/slices/dynamic-mig.ts).
 * @throws SliceError naming the device and attribute when a value breaks a resource.k8s.io/v1 limit (string
 *   > 64 bytes, bad version, > 32 attributes + capacities, bad device or attribute name) or a device name
 *   repeats, or when the generation is not a non-negative integer; naming the GPU when its dynamic MIG devices
 *   cannot be published (an existing instance outside its profile table); never truncates.
 */
export function buildResourceSlices(input: BuildSlicesInput): SliceSpec[] {
  validateGeneration(input);
  const versions = versionsOf(input.inventory);
  const seen = new Set<string>();
  const devices: V1Device[] = [];
  const isDynamic = (gpu: GpuInfo): boolean => input.dynamicMig?.geometryOf(gpu) !== undefined;
  for (const d of allocatableDevices(input.inventory)) {
    if (isDynamic(d.gpu)) continue; // published by dynamicSlices below
    if (seen.has(d.name)) throw new SliceError(`device ${d.name} (${d.uuid}): duplicate device name in pool ${input.poolName}`);
    seen.add(d.name);
    const device: V1Device = { name: d.name, ...deviceBody(d, versions) };
    const taints = input.taints?.get(d.uuid);
    if (taints !== undefined && taints.length > 0) device.taints = taints.map((t) => ({ ...t }));
    validateDevice(device);
    devices.push(device);
  }
  const dynamic = input.dynamicMig === undefined ? undefined : dynamicMigSlices(input, input.dynamicMig, versions, seen);
  const staticGroups = devices.length > 0 || dynamic === undefined || dynamic.counterGroups.length === 0 ? chunk(devices) : [];
  const groups: Array<{ devices: V1Device[]; sharedCounters?: V1CounterSet[] }> = [
    ...staticGroups.map((g) => ({ devices: g })),
    ...(dynamic?.counterGroups ?? []).map((sharedCounters) => ({ devices: [], sharedCounters })),
    ...(dynamic?.deviceGroups ?? []).map((g) => ({ devices: g })),
  ];
  const ownerReferences: V1OwnerReference[] | undefined =
    input.nodeUid === undefined
      ? undefined
      : [{ apiVersion: 'v1', kind: 'Node', name: input.nodeName, uid: input.nodeUid, controller: true }];
  return groups.map((group) => ({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: {
      generateName: sliceGenerateName(input.driverName, input.nodeName),
      labels: sliceLabels(input.driverName, input.nodeName),
      ...(ownerReferences === undefined ? {} : { ownerReferences: ownerReferences.map((o) => ({ ...o })) }),
    },
    spec: {
      driver: input.driverName,
      nodeName: input.nodeName,
      pool: { name: input.poolName, generation: input.generation, resourceSliceCount: groups.length },
      devices: group.devices,
      ...(group.sharedCounters === undefined ? {} : { sharedCounters: group.sharedCounters }),
    },
  }));
}

/**
 * The body as the API takes it: a counter slice without its empty `devices` (kubernetes v1.37.2
 * pkg/apis/resource/validation `validateResourceSliceSpec`: "only one of `sharedCounters` or `devices` is
 * allowed", and an empty list is not absent). Device slices are returned as they are.
 */
export function wireSlice(slice: V1ResourceSlice): V1ResourceSlice {
  if (slice.spec.sharedCounters === undefined) return slice;
  const spec: V1ResourceSliceSpec = { ...slice.spec };
  delete spec.devices;
  return { ...slice, spec };
}
