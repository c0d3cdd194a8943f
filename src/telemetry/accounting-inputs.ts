/**
 * The per-sample inputs of the claim accounting (accounting.ts), rebuilt only when they change, so that a sample of
 * an unchanged node allocates next to nothing: the readings by device, and the claims holding devices.
 */
import type { DeviceSample, Sample } from '../gpu/types.js';
import type { ClaimRef, DeviceOwner, PodRef } from '../model/types.js';

/** Device UUID → its reading in a sample: one map, refilled for each sample. */
export class SampleReadings {
  private readonly map = new Map<string, DeviceSample>();

  /** The readings of `sample` (the same map each time: valid until the next call). */
  of(sample: Sample): ReadonlyMap<string, DeviceSample> {
    const map = this.map;
    for (const d of sample.devices) map.set(d.uuid, d);
    if (map.size !== sample.devices.length) {
      // A device of an earlier sample is not in this one (lost, or a MIG device destroyed): start over.
      map.clear();
      for (const d of sample.devices) map.set(d.uuid, d);
    }
    return map;
  }
}

/** A claim holding devices in an `owners` map: its reference, pods and device UUIDs. */
export interface Holding {
  readonly claim: ClaimRef;
  readonly pods: readonly PodRef[];
  readonly devices: string[];
}

/** Claim UID → {@link Holding}, from an `owners` map (`OwnershipSource.owners()`), kept while it is unchanged. */
export class Holdings {
  private last: { readonly lists: ReadonlyMap<string, readonly DeviceOwner[]>; readonly map: ReadonlyMap<string, Holding> } | undefined;

  /**
   * The claims holding devices in `owners`; the same map as at the last call while `owners` has the same devices
   * with the same owner arrays (OwnershipView keeps a device's array while its owners are unchanged), so callers
   * may compare it by identity.
   */
  of(owners: ReadonlyMap<string, readonly DeviceOwner[]>): ReadonlyMap<string, Holding> {
    if (this.last !== undefined && sameEntries(this.last.lists, owners)) return this.last.map;
    const map = new Map<string, Holding>();
    for (const [uuid, list] of owners) {
      for (const owner of list) {
        let h = map.get(owner.claim.uid);
        if (h === undefined) {
          h = { claim: owner.claim, pods: owner.pods, devices: [] };
          map.set(owner.claim.uid, h);
        }
        if (!h.devices.includes(uuid)) h.devices.push(uuid);
      }
    }
    this.last = { lists: new Map(owners), map };
    return map;
  }
}

/** The same keys, each with the same (identical) owner array. */
function sameEntries(a: ReadonlyMap<string, readonly DeviceOwner[]>, b: ReadonlyMap<string, readonly DeviceOwner[]>): boolean {
  if (a.size !== b.size) return false;
  let same = true;
  b.forEach((list, uuid) => {
    if (same && a.get(uuid) !== list) same = false;
  });
  return same;
}
