/**
 * The ownership view (src/state/ownership.ts) over a real claim store: only PrepareCompleted claims own
 * devices, a shared device lists every claim, and `owners()` answers the same map (same arrays) until the
 * store's image changes — a commit, or a session's re-read of what another instance wrote — and a fresh map
 * after, in which only the devices whose owners changed have new arrays, so telemetry's caches keyed on those
 * objects are invalidated exactly for them.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { CheckpointClaim, CheckpointDevice } from '../../src/state/checkpoint.js';
import { ClaimStore } from '../../src/state/claim-store.js';
import { OwnershipView } from '../../src/state/ownership.js';
import { DRIVER, newRef, NODE, tempDir } from '../helpers/claims.js';
import { podRef } from '../helpers/names.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-ownership-'));
});
afterEach(() => cleanup());

const storeOn = () => new ClaimStore({ checkpointPath: join(dir, 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('b') });
type Device = Omit<CheckpointDevice, 'cdiDeviceIds'>;
const device = (name: string, uuid: string): Device => ({ requestNames: ['gpu'], poolName: NODE, deviceName: name, uuid });
/** An entry as prepare records it (CDI IDs derived from the uid and the device: what a session's re-read accepts). */
const entryOf = (name: string, devices: Device[], state: CheckpointClaim['state'] = 'PrepareCompleted'): CheckpointClaim => {
  const ref = newRef(name);
  const recorded = devices.map((d) => ({ ...d, cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-${d.deviceName}`] }));
  return { ...ref, state, devices: recorded, pods: [podRef({ namespace: 'ml', name: `${name}-pod` })], configs: [] };
};
const commit = (store: ClaimStore, entry: CheckpointClaim, remove = false) =>
  store.locked(() => store.commit(entry.uid, remove ? undefined : entry));

describe('OwnershipView', () => {
  it('owners of PrepareCompleted claims only, every claim of a shared device, by device UUID', async () => {
    const store = storeOn();
    await store.init();
    const view = new OwnershipView(store);
    const a = entryOf('a', [device('gpu-0', 'GPU-0'), device('gpu-1', 'GPU-1')]);
    const b = entryOf('b', [device('gpu-1', 'GPU-1')]);
    const started = entryOf('mid-prepare', [device('gpu-2', 'GPU-2')], 'PrepareStarted');
    for (const e of [a, b, started]) await commit(store, e);
    const owners = view.owners();
    expect([...owners.keys()].sort()).toEqual(['GPU-0', 'GPU-1']);
    expect(owners.get('GPU-0')).toEqual([{ claim: { namespace: 'ml', name: 'a', uid: a.uid }, pods: a.pods, deviceName: 'gpu-0', uuid: 'GPU-0' }]);
    expect(owners.get('GPU-1')?.map((o) => o.claim.name)).toEqual(['a', 'b']);
    expect(view.prepared().map((p) => p.claim.uid)).toEqual([a.uid, b.uid]);
  });

  it('answers the same map and arrays until a commit, then a fresh one', async () => {
    const store = storeOn();
    await store.init();
    const view = new OwnershipView(store);
    const a = entryOf('a', [device('gpu-0', 'GPU-0')]);
    await commit(store, a);
    const first = view.owners();
    expect(view.owners()).toBe(first);
    expect(view.owners().get('GPU-0')).toBe(first.get('GPU-0'));

    const b = entryOf('b', [device('gpu-3', 'GPU-3')]);
    await commit(store, b);
    const second = view.owners();
    expect(second).not.toBe(first);
    expect([...second.keys()].sort()).toEqual(['GPU-0', 'GPU-3']);
    expect(view.owners()).toBe(second);
    // GPU-0's owners did not change: the same array, so telemetry's caches keyed on it still hit.
    expect(second.get('GPU-0')).toBe(first.get('GPU-0'));

    // A commit that changes GPU-0's owners (another claim shares it; then its pods change) gives a new array.
    const c = entryOf('c', [device('gpu-0', 'GPU-0')]);
    await commit(store, c);
    const third = view.owners();
    expect(third.get('GPU-0')).not.toBe(first.get('GPU-0'));
    expect(third.get('GPU-0')?.map((o) => o.claim.name)).toEqual(['a', 'c']);
    expect(third.get('GPU-3')).toBe(second.get('GPU-3'));
    await commit(store, { ...c, pods: [podRef({ namespace: 'ml', name: 'other-pod' })] });
    expect(view.owners().get('GPU-0')).not.toBe(third.get('GPU-0'));
    expect(view.owners().get('GPU-0')?.[1]?.pods.map((p) => p.name)).toEqual(['other-pod']);
    await commit(store, c, true);

    await commit(store, a, true);
    expect([...view.owners().keys()]).toEqual(['GPU-3']);
    expect(first.get('GPU-0')).toHaveLength(1); // an old answer is never changed in place
  });

  it('sees what another instance committed once a session re-read the checkpoint', async () => {
    const ours = storeOn();
    const theirs = storeOn();
    await ours.init();
    await theirs.init();
    const view = new OwnershipView(ours);
    const before = view.owners();
    await commit(theirs, entryOf('theirs', [device('gpu-4', 'GPU-4')]));
    expect(view.owners()).toBe(before); // no session of ours yet: the image is unchanged
    await ours.locked(() => Promise.resolve());
    expect([...view.owners().keys()]).toEqual(['GPU-4']);
  });
});
