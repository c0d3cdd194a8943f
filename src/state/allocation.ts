/**
 * From a ResourceClaim's allocation to the devices gpulet must prepare. Pure: no I/O, deterministic.
 *
 * Rules (docs/contracts.md §2 and §5; resource.k8s.io/v1 `AllocationResult`, and the upstream kubelet-plugin
 * helper k8s.io/dynamic-resource-allocation/kubeletplugin):
 * - the claim must be allocated (`status.allocation` set) and its UID must equal the kubelet's;
 * - only `status.allocation.devices.results[]` whose `driver` is ours count; results of other drivers
 *   are ignored; ours must name our pool and a device of the current inventory;
 * - a subrequest suffix is stripped from the request name (`req/sub` → `req`);
 * - `shareID` is passed through; opaque config of our driver is validated (see `opaque-config.ts`),
 *   other drivers' config is ignored; ours is resolved once per claim, each config with the devices it applies
 *   to (`claim-env.ts`: upstream's `requests`, empty = all), and the claim's env must stay within
 *   `MAX_CLAIM_ENV_BYTES`;
 * - `status.reservedFor[]` entries with resource "pods" name the pods using the claim (same namespace); this is
 *   where pod references enter gpulet, checked by `parsePodRef` (src/model/claim-ref.ts).
 * The claim's metadata was checked where it was read (`claimFromApi`, claim-source.ts); its status is checked
 * here, field by field.
 */
import { parsePodRef } from '../model/claim-ref.js';
import type { AllocatableDevice } from '../model/devices.js';
import type { PrepareDevice } from '../model/placement-devices.js';
import type { DnsLabel } from '../model/names.js';
import type { ClaimRef, PodRef } from '../model/types.js';
import { ClaimError, quoteBounded } from '../errors.js';
import type { ApiClaim } from './claim-source.js';
import { claimEnvProblem, type ClaimConfig } from './claim-env.js';
import { isJsonObject, parseGpuConfig } from './opaque-config.js';

/** resource.k8s.io/v1 validation: AllocationResultsMaxSize = 32 results per claim. */
export const MAX_ALLOCATION_RESULTS = 32;

/** One device to prepare for a claim. */
export interface AllocatedDevice<D extends PrepareDevice = AllocatableDevice> {
  /** Request names (subrequest stripped), in result order, without duplicates. */
  readonly requestNames: readonly string[];
  readonly poolName: string;
  /** DRA device name, e.g. `gpu-3`. */
  readonly deviceName: string;
  /** `shareID` of the result(s), when the allocation shares the device. */
  readonly shareId?: string;
  /** The inventory's device (GPU or MIG device) of that name, or the placement device of a dynamic GPU. */
  readonly device: D;
}

/** What prepare needs from a claim. */
export interface ClaimAllocation<D extends PrepareDevice = AllocatableDevice> {
  /** Devices in result order; one entry per (device, shareID) pair. */
  readonly devices: readonly AllocatedDevice<D>[];
  /**
   * Our driver's opaque configs that set variables for some of these devices, in allocation order, each with
   * the device names it applies to (`[]`: all; claim-env.ts). Within `MAX_CLAIM_ENV_BYTES`.
   */
  readonly configs: readonly ClaimConfig[];
  /** Pods holding the claim (`status.reservedFor`, resource "pods"). */
  readonly pods: readonly PodRef[];
}

/** Input of {@link resolveAllocation}. */
export interface ResolveAllocationInput<D extends PrepareDevice = AllocatableDevice> {
  /** The claim as read from the API server (its metadata checked). */
  readonly claim: ApiClaim;
  /** The claim as the kubelet named it. */
  readonly ref: ClaimRef;
  /** Our driver name, e.g. `gpu.gpulet.dev`. */
  readonly driverName: string;
  /** Our pool name (the node name). */
  readonly poolName: string;
  /**
   * Devices of the current inventory by name (`devicesByName` of src/model/devices.ts), with the placement
   * devices of dynamic GPUs (`prepareDevicesByName`, src/model/placement-devices.ts) when there are any.
   */
  readonly devices: ReadonlyMap<string, D>;
}

/** `req/sub` → `req` (KEP-4816 prioritized list: the kubelet wants the parent request name). */
export function stripSubrequest(request: string): string {
  const slash = request.indexOf('/');
  return slash < 0 ? request : request.slice(0, slash);
}

/**
 * Resolve the devices and pods of a claim.
 * @throws ClaimError naming the claim and the reason: not allocated, UID mismatch, too many results,
 *   malformed result, another pool, unknown device, no results for our driver, invalid opaque config.
 */
export function resolveAllocation<D extends PrepareDevice = AllocatableDevice>(input: ResolveAllocationInput<D>): ClaimAllocation<D> {
  const { claim, ref, driverName, poolName } = input;
  const fail = (reason: string): never => {
    throw new ClaimError(ref, reason);
  };

  const uid = claim.metadata.uid;
  if (uid !== ref.uid) {
    fail(
      `UID mismatch: the API server's claim has uid ${quoteBounded(uid)} ` +
        `(deleted and re-created?); the kubelet asked for ${ref.uid}`,
    );
  }
  const status = isJsonObject(claim.status) ? claim.status : {};
  const allocation = status['allocation'];
  if (allocation === undefined || allocation === null) {
    fail('not allocated: status.allocation is empty (the scheduler has not allocated the claim yet)');
  }
  if (!isJsonObject(allocation)) fail('status.allocation is not an object');
  const devicesField = (allocation as Record<string, unknown>)['devices'] ?? {};
  if (!isJsonObject(devicesField)) fail('status.allocation.devices is not an object');
  const results = asArray((devicesField as Record<string, unknown>)['results'], 'status.allocation.devices.results', fail);
  const configs = asArray((devicesField as Record<string, unknown>)['config'], 'status.allocation.devices.config', fail);
  if (results.length > MAX_ALLOCATION_RESULTS) {
    fail(`status.allocation.devices.results has ${results.length} entries, more than the API limit of ${MAX_ALLOCATION_RESULTS}`);
  }

  const ourConfigs = parseConfigs(configs, driverName, fail);

  const byKey = new Map<string, { names: string[]; device: D; shareId?: string }>();
  /** Requests (as the results name them, subrequest included) of each device name. */
  const requestsOf = new Map<string, string[]>();
  results.forEach((raw, i) => {
    const where = `status.allocation.devices.results[${i}]`;
    if (!isJsonObject(raw)) fail(`${where} is not an object`);
    const r = raw as Record<string, unknown>;
    const driver = r['driver'];
    const pool = r['pool'];
    const deviceName = r['device'];
    const request = r['request'];
    if (typeof driver !== 'string' || typeof pool !== 'string' || typeof deviceName !== 'string' || typeof request !== 'string') {
      fail(`${where} lacks a string driver, pool, device or request`);
    }
    if (driver !== driverName) return; // another driver's device: not ours to prepare
    if (pool !== poolName) {
      fail(`${where}: device ${quoteBounded(deviceName)} is in pool ${quoteBounded(pool)}, not this node's pool ${JSON.stringify(poolName)}`);
    }
    const device = input.devices.get(deviceName as string);
    if (device === undefined) {
      fail(`${where}: unknown device ${quoteBounded(deviceName)} in pool ${JSON.stringify(poolName)} (not in the current inventory)`);
    }
    const shareRaw = r['shareID'];
    if (shareRaw !== undefined && shareRaw !== null && typeof shareRaw !== 'string') fail(`${where}.shareID is not a string`);
    const shareId = typeof shareRaw === 'string' && shareRaw !== '' ? shareRaw : undefined;
    const key = `${deviceName as string}\u0000${shareId ?? ''}`;
    let entry = byKey.get(key);
    if (entry === undefined) {
      entry = { names: [], device: device as D, ...(shareId !== undefined ? { shareId } : {}) };
      byKey.set(key, entry);
    }
    const name = stripSubrequest(request as string);
    if (!entry.names.includes(name)) entry.names.push(name);
    requestsOf.set(deviceName as string, [...(requestsOf.get(deviceName as string) ?? []), request as string]);
  });

  if (byKey.size === 0) {
    fail(`no allocation results for driver ${JSON.stringify(driverName)} (the claim holds only other drivers' devices)`);
  }

  const devices: AllocatedDevice<D>[] = [...byKey.values()].map((e) => ({
    requestNames: e.names,
    poolName,
    deviceName: e.device.name,
    ...(e.shareId !== undefined ? { shareId: e.shareId } : {}),
    device: e.device,
  }));
  const claimConfigs = configsFor(ourConfigs, requestsOf);
  const tooBig = claimEnvProblem(claimConfigs, [...requestsOf.keys()]);
  if (tooBig !== undefined) fail(tooBig);
  return { devices, configs: claimConfigs, pods: reservedPods(status['reservedFor'], ref.namespace) };
}

/**
 * Pods of `status.reservedFor` (resource "pods", core group), in the claim's namespace. Malformed entries are
 * skipped: not an object, or a name or uid that breaks the rules of a pod reference (`parsePodRef`: a DNS
 * subdomain, a lower-case UUID). Pods only attribute metrics; they never fail a prepare.
 */
export function reservedPods(reservedFor: unknown, namespace: DnsLabel): PodRef[] {
  if (!Array.isArray(reservedFor)) return [];
  const pods: PodRef[] = [];
  for (const entry of reservedFor as unknown[]) {
    if (!isJsonObject(entry) || entry['resource'] !== 'pods') continue;
    const group = entry['apiGroup'];
    if (group !== undefined && group !== null && group !== '') continue;
    const { ref } = parsePodRef({ namespace, name: entry['name'], uid: entry['uid'] });
    if (ref !== undefined) pods.push(ref);
  }
  return pods;
}

/** One opaque config of our driver: upstream's `requests` (empty: all) and its validated env. */
interface OurConfig {
  readonly requests: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Validate our driver's opaque configs (other drivers' are skipped), in allocation order. */
function parseConfigs(configs: readonly unknown[], driverName: string, fail: (reason: string) => never): OurConfig[] {
  const ours: OurConfig[] = [];
  configs.forEach((raw, i) => {
    const where = `status.allocation.devices.config[${i}]`;
    if (!isJsonObject(raw)) fail(`${where} is not an object`);
    const opaque = (raw)['opaque'];
    if (!isJsonObject(opaque) || opaque['driver'] !== driverName) return; // not ours
    const requests = (raw)['requests'] ?? [];
    if (!Array.isArray(requests) || !requests.every((r): r is string => typeof r === 'string')) {
      fail(`${where}.requests is not a list of strings`);
    }
    const parsed = parseGpuConfig(opaque['parameters']);
    if ('error' in parsed) fail(`invalid opaque config for driver ${driverName} in ${where}: ${parsed.error}`);
    ours.push({ requests: requests, env: (parsed as { env: Record<string, string> }).env });
  });
  return ours;
}

/**
 * The configs as the claim stores them (claim-env.ts): each with the device names it applies to (upstream
 * semantics: `requests` empty = all; a listed `req` covers `req/<sub>`), `[]` when it applies to every device;
 * configs that set nothing, or apply to none of our devices, are left out.
 * @param requestsOf our device names (in result order) → the requests of their results, subrequests included.
 */
function configsFor(configs: readonly OurConfig[], requestsOf: ReadonlyMap<string, readonly string[]>): ClaimConfig[] {
  const out: ClaimConfig[] = [];
  for (const c of configs) {
    if (Object.keys(c.env).length === 0) continue;
    const covers = (request: string): boolean => c.requests.includes(request) || c.requests.includes(stripSubrequest(request));
    const devices = c.requests.length === 0 ? [...requestsOf.keys()] : [...requestsOf].filter(([, requests]) => requests.some(covers)).map(([d]) => d);
    if (devices.length === 0) continue;
    out.push({ devices: devices.length === requestsOf.size ? [] : devices, env: c.env });
  }
  return out;
}

function asArray(value: unknown, what: string, fail: (reason: string) => never): readonly unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(`${what} is not a list`);
  return value as unknown[];
}
