/**
 * One recipe for a claim's CDI spec, shared by prepare (from the API server's allocation) and startup
 * reconciliation (from the checkpoint alone), so a spec rebuilt after a reboot or an upgrade is exactly
 * what prepare would write today. Pure: no I/O.
 */
import type { AllocatableDevice } from '../model/devices.js';
import type { PreparedDevice } from '../model/types.js';
import { CdiError } from '../errors.js';
import { buildCdiSpec, type CdiSpec, type DeviceMajors } from './cdi.js';
import { canonicalJson, type CheckpointDevice } from './checkpoint.js';

/** A device of a claim as far as its spec is concerned. */
export interface SpecDevice {
  /** DRA device name, e.g. `gpu-3`. */
  readonly deviceName: string;
  /** Extra container environment from our opaque config. */
  readonly env?: Readonly<Record<string, string>> | undefined;
}

/** Input of {@link claimCdiSpec}. */
export interface ClaimSpecInput {
  readonly driverName: string;
  readonly claimUid: string;
  /** Devices in allocation order; a device listed twice (several shareIDs) appears once, at its first
   * position, with the last occurrence's env. */
  readonly devices: readonly SpecDevice[];
  /** The current inventory's allocatable devices by name (`devicesByName`). */
  readonly byName: ReadonlyMap<string, AllocatableDevice>;
  readonly devRoot?: string | undefined;
  readonly majors?: DeviceMajors | undefined;
}

/**
 * Build the spec of a claim.
 * @throws CdiError when a device is not in the current inventory (a GPU fell off the bus, MIG reconfigured),
 *   or for the reasons of `buildCdiSpec` (invalid UID, no devices).
 */
export function claimCdiSpec(input: ClaimSpecInput): CdiSpec {
  const unique = new Map<string, SpecDevice>();
  for (const d of input.devices) unique.set(d.deviceName, d);
  const devices = [...unique.values()].map((d) => {
    const device = input.byName.get(d.deviceName);
    if (device === undefined) {
      throw new CdiError(
        `claim ${input.claimUid}: device ${JSON.stringify(d.deviceName)} is not in the current inventory; ` +
          'its CDI spec cannot be written (check the GPU is present and its MIG layout unchanged)',
      );
    }
    return { device, env: d.env ?? {} };
  });
  return buildCdiSpec({
    driverName: input.driverName,
    claimUid: input.claimUid,
    devices,
    ...(input.devRoot !== undefined ? { devRoot: input.devRoot } : {}),
    ...(input.majors !== undefined ? { majors: input.majors } : {}),
  });
}

/** True when two specs are the same document (key order and whitespace ignored). */
export function sameSpec(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The kubelet's view of a recorded device (UUID and env stay internal). */
export function toPreparedDevice(d: CheckpointDevice): PreparedDevice {
  return {
    requestNames: d.requestNames,
    poolName: d.poolName,
    deviceName: d.deviceName,
    cdiDeviceIds: d.cdiDeviceIds,
    ...(d.shareId !== undefined ? { shareId: d.shareId } : {}),
  };
}
