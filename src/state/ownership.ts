/**
 * The ownership view of the claim state: which prepared claim (and which pods) hold each device, for
 * telemetry to attribute metrics (the `OwnershipSource` port, src/model/types.ts). Read-only: it never opens
 * a session or touches a file; it reads the store's current image (claim-store.ts).
 *
 * Only PrepareCompleted entries count (a claim mid-prepare holds nothing yet). `owners()` is cached: it
 * returns the same map, with the same arrays, until the store's image is replaced (a commit, a session's
 * re-read of the checkpoint, a load); then a device whose owners are unchanged keeps its array, so telemetry
 * can key its own caches on those objects.
 */
import type { ClaimRef, ClaimUsage, DeviceOwner, OwnershipSource, PodRef, PreparedDevice } from '../model/types.js';
import type { CheckpointClaims } from './checkpoint.js';
import type { ClaimStore } from './claim-store.js';

/** A claim in state PrepareCompleted. */
export interface PreparedClaim {
  readonly claim: ClaimRef;
  /** Devices as answered to the kubelet, with their UUIDs. */
  readonly devices: readonly (PreparedDevice & { readonly uuid: string })[];
  readonly pods: readonly PodRef[];
}

/** What the view needs of the claim store: its current image. */
export type OwnershipStore = Pick<ClaimStore, 'entries'>;

/** Device ownership over the claim store (see file doc). */
export class OwnershipView implements OwnershipSource {
  private cache: { readonly image: CheckpointClaims; readonly owners: ReadonlyMap<string, readonly DeviceOwner[]> } | undefined;
  private usageCache: { readonly image: CheckpointClaims; readonly usages: ReadonlyMap<string, ClaimUsage> } | undefined;

  constructor(private readonly store: OwnershipStore) {}

  /**
   * Device owners keyed by device UUID (`GPU-...`, `MIG-...`), from claims in PrepareCompleted; a shared
   * device has several. The same map object until the store's image changes.
   */
  owners(): ReadonlyMap<string, readonly DeviceOwner[]> {
    const image = this.store.entries();
    if (this.cache?.image === image) return this.cache.owners;
    const map = new Map<string, readonly DeviceOwner[]>();
    for (const prepared of preparedOf(image)) {
      for (const d of prepared.devices) {
        const list = (map.get(d.uuid) ?? []) as DeviceOwner[];
        list.push({ claim: prepared.claim, pods: prepared.pods, deviceName: d.deviceName, uuid: d.uuid });
        map.set(d.uuid, list);
      }
    }
    // A device whose owners did not change keeps its previous array: every commit replaces the image (a
    // prepare, an unprepare, a usage record of the accounting), and telemetry's caches are keyed on these arrays.
    const previous = this.cache?.owners;
    if (previous !== undefined) {
      for (const [uuid, list] of map) {
        const before = previous.get(uuid);
        if (before !== undefined && sameOwners(before, list)) map.set(uuid, before);
      }
    }
    this.cache = { image, owners: map };
    return map;
  }

  /**
   * The recorded usage (per-claim accounting) of the claims in PrepareCompleted that have one, by claim UID. The
   * same map until the store's image changes.
   */
  usages(): ReadonlyMap<string, ClaimUsage> {
    const image = this.store.entries();
    if (this.usageCache?.image === image) return this.usageCache.usages;
    const usages = new Map<string, ClaimUsage>();
    for (const c of Object.values(image)) if (c.state === 'PrepareCompleted' && c.usage !== undefined) usages.set(c.uid, c.usage);
    this.usageCache = { image, usages };
    return usages;
  }

  /** Claims in PrepareCompleted, in the image's order. A new array on every call. */
  prepared(): readonly PreparedClaim[] {
    return preparedOf(this.store.entries());
  }
}

function preparedOf(image: CheckpointClaims): PreparedClaim[] {
  return Object.values(image)
    .filter((c) => c.state === 'PrepareCompleted')
    .map((c) => ({ claim: { namespace: c.namespace, name: c.name, uid: c.uid }, devices: c.devices, pods: c.pods }));
}

const sameRef = (a: ClaimRef | PodRef, b: ClaimRef | PodRef): boolean => a.uid === b.uid && a.name === b.name && a.namespace === b.namespace;

/** Equal owner lists: the same claims, pods and device names, in the same order. */
function sameOwners(a: readonly DeviceOwner[], b: readonly DeviceOwner[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i];
    return (
      y !== undefined && x.uuid === y.uuid && x.deviceName === y.deviceName && sameRef(x.claim, y.claim) &&
      x.pods.length === y.pods.length && x.pods.every((p, j) => {
        const q = y.pods[j];
        return q !== undefined && sameRef(p, q);
      })
    );
  });
}
