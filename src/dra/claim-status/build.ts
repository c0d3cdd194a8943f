/**
 * What gpulet writes into a ResourceClaim's `status.devices` after preparing it (KEP-4817, "DRA: resource
 * claim status with possible standardized network interface data"; feature DRAResourceClaimDeviceStatus).
 * Pure: the entries are a function of the prepared devices, the inventory, the claim as read and the time.
 *
 * One entry per prepared device of ours, keyed as the API keys the list (`+listType=map`, keys driver, device,
 * pool, shareID: k8s.io/api resource/v1 `ResourceClaimStatus.Devices`), with
 * - `conditions`: one `Ready` condition, status `True`, reason `Prepared` (the API's doc of
 *   `AllocatedDeviceStatus.Conditions`: "If the device has been configured according to the class and claim
 *   config references, the `Ready` condition should be True"), `lastTransitionTime` the time given (the
 *   write that follows the prepare);
 * - `data`: a JSON object of the device's facts, named as gpulet's ResourceSlice attributes name them
 *   (docs/contracts.md §4): `type` (`gpu` | `mig`), `uuid`, `productName`, `driverVersion` (as NVML prints it,
 *   `nvmlSystemGetDriverVersion`, e.g. `580.95.05`), `memory` (bytes, a number), and for a MIG device
 *   `profile` (`1g.10gb`) and `parentUUID`.
 *
 * The API server's rules (k8s.io/kubernetes v1.37.2 pkg/apis/resource/validation `validateDeviceStatus`):
 * every entry must name a device allocated in the claim (driver/pool/device[/shareID] of
 * `status.allocation.devices.results`: the prepared devices are, the preparer resolved them from it), `data`
 * must be a JSON object of at most 10 Ki bytes (`AllocatedDeviceStatusDataMaxLength`: checked here), at most 8
 * conditions (`AllocatedDeviceStatusMaxConditions`: gpulet writes one).
 */
import type { AllocatableDevice } from '../../model/devices.js';

/** `AllocatedDeviceStatusDataMaxLength` (k8s.io/kubernetes pkg/apis/resource/types.go): bytes of `data`'s JSON. */
export const DEVICE_STATUS_DATA_MAX_BYTES = 10 * 1024;

/** The condition type the API documents for a configured device. */
export const READY_CONDITION = 'Ready';
/** Reason of gpulet's Ready condition (a metav1.Condition reason: CamelCase). */
export const PREPARED_REASON = 'Prepared';

/** `data` of one entry: the device's facts, named as gpulet's ResourceSlice attributes are. */
export interface DeviceStatusData {
  readonly type: 'gpu' | 'mig';
  /** `GPU-...` or `MIG-...` (nvmlDeviceGetUUID). */
  readonly uuid: string;
  /** nvmlDeviceGetName of the (parent) GPU, e.g. `NVIDIA H100 80GB HBM3`. */
  readonly productName: string;
  /** nvmlSystemGetDriverVersion, as NVML prints it, e.g. `580.95.05`. */
  readonly driverVersion: string;
  /** Framebuffer memory of the device (the GPU, or the MIG device's GPU instance), bytes. */
  readonly memory: number;
  /** MIG profile as nvidia-smi prints it, e.g. `1g.10gb` (MIG devices only). */
  readonly profile?: string;
  /** UUID of the parent GPU (MIG devices only). */
  readonly parentUUID?: string;
}

/** A metav1.Condition as gpulet writes it (`lastTransitionTime` RFC 3339, seconds). */
export interface StatusCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

/** One `status.devices[]` entry (resource.k8s.io/v1 AllocatedDeviceStatus), as applied. */
export interface DeviceStatusEntry {
  readonly driver: string;
  readonly pool: string;
  readonly device: string;
  readonly shareID?: string;
  readonly conditions: readonly StatusCondition[];
  readonly data: DeviceStatusData;
}

/** A prepared device of ours: where it is and which allocation share it is (v1 `shareID`). */
export interface PreparedDeviceKey {
  readonly poolName: string;
  readonly deviceName: string;
  readonly shareId?: string;
}

/** The identity of an entry: `<driver>/<pool>/<device>[/<shareID>]` (apiserver's SharedDeviceID). */
export function entryKey(e: { readonly driver: string; readonly pool: string; readonly device: string; readonly shareID?: string | undefined }): string {
  return `${e.driver}/${e.pool}/${e.device}${e.shareID === undefined ? '' : `/${e.shareID}`}`;
}

/** `data` of a device, from the inventory (see file doc). */
export function deviceStatusData(device: AllocatableDevice, driverVersion: string): DeviceStatusData {
  if (device.kind === 'gpu') {
    return { type: 'gpu', uuid: device.uuid, productName: device.gpu.productName, driverVersion, memory: device.gpu.memoryBytes };
  }
  return {
    type: 'mig',
    uuid: device.uuid,
    productName: device.gpu.productName,
    driverVersion,
    memory: device.mig.memoryBytes,
    profile: device.mig.profile,
    parentUUID: device.mig.parentUuid,
  };
}

/** RFC 3339 in UTC at seconds precision, as metav1.Time serializes (`2026-12-04T14:46:39Z`). */
export function rfc3339Seconds(at: Date): string {
  return `${at.toISOString().slice(0, 19)}Z`;
}

/** What {@link buildDeviceStatuses} needs. */
export interface BuildInput {
  /** Our driver name, e.g. `gpu.gpulet.dev`. */
  readonly driverName: string;
  /** Our node's name (said in the condition's message). */
  readonly nodeName: string;
  /** The prepared devices of the claim (the preparer's answer to the kubelet). */
  readonly prepared: readonly PreparedDeviceKey[];
  /** The devices of the current inventory by DRA name (`devicesByName`) and the driver version. */
  readonly byName: ReadonlyMap<string, AllocatableDevice>;
  readonly driverVersion: string;
  /** The Ready condition's lastTransitionTime. */
  readonly now: Date;
}

/** Result of {@link buildDeviceStatuses}: the entries, and the prepared devices left out with why. */
export interface BuildResult {
  readonly entries: readonly DeviceStatusEntry[];
  readonly skipped: readonly string[];
}

/**
 * The entries for a prepared claim (see file doc). A prepared device no longer in the inventory, or whose
 * `data` would pass the API's limit, is left out and said in `skipped`. Entries are ordered by key;
 * duplicates (a device answered twice) once.
 */
export function buildDeviceStatuses(input: BuildInput): BuildResult {
  const entries = new Map<string, DeviceStatusEntry>();
  const skipped: string[] = [];
  for (const p of input.prepared) {
    const id = { driver: input.driverName, pool: p.poolName, device: p.deviceName, ...(p.shareId === undefined ? {} : { shareID: p.shareId }) };
    const key = entryKey(id);
    if (entries.has(key)) continue;
    const device = input.byName.get(p.deviceName);
    if (device === undefined) {
      skipped.push(`${key}: not in the current inventory`);
      continue;
    }
    const data = deviceStatusData(device, input.driverVersion);
    const size = Buffer.byteLength(JSON.stringify(data));
    if (size > DEVICE_STATUS_DATA_MAX_BYTES) {
      skipped.push(`${key}: data of ${size} bytes exceeds the API's ${DEVICE_STATUS_DATA_MAX_BYTES}`);
      continue;
    }
    entries.set(key, {
      ...id,
      conditions: [
        {
          type: READY_CONDITION,
          status: 'True',
          reason: PREPARED_REASON,
          message: `prepared by ${input.driverName} on node ${input.nodeName}`,
          lastTransitionTime: rfc3339Seconds(input.now),
        },
      ],
      data,
    });
  }
  return { entries: [...entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e), skipped };
}
