/**
 * One recipe for a claim's CDI spec, shared by prepare (from the API server's allocation) and startup
 * reconciliation (from the checkpoint alone), so a spec rebuilt after a reboot or an upgrade is exactly
 * what prepare would write today. Pure: no I/O.
 */
import type { AllocatableDevice } from '../model/devices.js';
import type { PreparedDevice } from '../model/types.js';
import { CdiError } from '../errors.js';
import { buildCdiSpec, CDI_CLAIM_CLASS, cdiDeviceId, type CdiSpec, type DeviceMajors } from './cdi.js';
import { splitClaimEnv, type ClaimConfig } from './claim-env.js';
import { canonicalJson, type CheckpointDevice } from './checkpoint.js';
import type { UserspaceEdits } from '../userspace/edits.js';

/** A device of a claim as far as its spec is concerned. */
export interface SpecDevice {
  /** DRA device name, e.g. `gpu-3`. */
  readonly deviceName: string;
}

/** Input of {@link claimCdiSpec}. */
export interface ClaimSpecInput {
  readonly driverName: string;
  readonly claimUid: string;
  /** Devices in allocation order; a device listed twice (several shareIDs) appears once, at its first position. */
  readonly devices: readonly SpecDevice[];
  /**
   * The claim's opaque-config env, stored once per claim (claim-env.ts): what every device shares goes into
   * the spec-level edits once, the rest to each device.
   */
  readonly configs: readonly ClaimConfig[];
  /** The current inventory's allocatable devices by name (`devicesByName`). */
  readonly byName: ReadonlyMap<string, AllocatableDevice>;
  readonly devRoot?: string | undefined;
  readonly majors?: DeviceMajors | undefined;
  /** The driver userspace's edits (`--driver-userspace=discover`), the same for every claim. */
  readonly userspace?: UserspaceEdits | undefined;
}

/**
 * Build the spec of a claim.
 * @throws CdiError when a device is not in the current inventory (a GPU fell off the bus, MIG reconfigured),
 *   or for the reasons of `buildCdiSpec` (invalid UID, no devices).
 */
export function claimCdiSpec(input: ClaimSpecInput): CdiSpec {
  const names = [...new Set(input.devices.map((d) => d.deviceName))];
  const env = splitClaimEnv(input.configs, names);
  const devices = names.map((name) => {
    const device = input.byName.get(name);
    if (device === undefined) {
      throw new CdiError(
        `claim ${input.claimUid}: device ${JSON.stringify(name)} is not in the current inventory; ` +
          'its CDI spec cannot be written (check the GPU is present and its MIG layout unchanged)',
      );
    }
    return { device, env: env.perDevice.get(name) ?? {} };
  });
  return buildCdiSpec({
    driverName: input.driverName,
    claimUid: input.claimUid,
    devices,
    env: env.shared,
    ...(input.devRoot !== undefined ? { devRoot: input.devRoot } : {}),
    ...(input.majors !== undefined ? { majors: input.majors } : {}),
    ...(input.userspace !== undefined ? { userspace: input.userspace } : {}),
  });
}

/** True when two specs are the same document (key order and whitespace ignored). */
export function sameSpec(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * The kubelet's view of a recorded device (its UUID stays internal). The CDI device ID is derived from the
 * claim UID and the device name, never read from the record (the checkpoint is not trusted for it).
 * @param vendor our CDI vendor, `k8s.<driver>` (`cdiVendor`).
 * @param extraIds CDI IDs the runtime injects after ours (`--driver-userspace=toolkit`: `nvidia.com/gpu=<uuid>`).
 */
export function toPreparedDevice(vendor: string, claimUid: string, d: CheckpointDevice, extraIds: readonly string[] = []): PreparedDevice {
  return {
    requestNames: d.requestNames,
    poolName: d.poolName,
    deviceName: d.deviceName,
    cdiDeviceIds: [cdiDeviceId(vendor, CDI_CLAIM_CLASS, claimUid, d.deviceName), ...extraIds],
    ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
  };
}
