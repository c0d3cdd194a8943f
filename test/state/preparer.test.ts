/**
 * The preparer (src/state/preparer.ts), against fakes of the narrow ports it takes, and recovery's `adopt`:
 * references reach state checked (a `ClaimRef` is made only by the entry checks of src/model/claim-ref.ts:
 * the kubelet plugin's request, the API server's claim, the checkpoint; those refusals are tested there), so
 * every reference goes to the per-claim steps as it is; one answer per UID; a batch that cannot load the
 * checkpoint or take the lock answers every claim with the reason.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { ClaimRef, PrepareResult } from '../../src/model/types.js';
import { StateLockError } from '../../src/state/lock.js';
import { Preparer, type PreparerOps, type PreparerStore } from '../../src/state/preparer.js';
import { allocatedClaim, checkedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir } from '../helpers/claims.js';
import { claimRef } from '../helpers/names.js';

/** Per-claim steps that record what reached them. */
function fakeOps(): PreparerOps & { readonly calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    prepareOne: (ref: ClaimRef): Promise<PrepareResult> => {
      calls.push(`prepare ${ref.uid}`);
      return Promise.resolve({ devices: [] });
    },
    unprepareOne: (ref: ClaimRef) => {
      calls.push(`unprepare ${ref.uid}`);
      return Promise.resolve({});
    },
  };
}

/** A store whose sessions run at once (or answer `busy`), loaded unless `notReady` is given. */
function fakeStore(options: { notReady?: string; busy?: StateLockError } = {}): PreparerStore {
  return {
    lockedOr: <T>(job: () => Promise<T>, busy: (error: StateLockError) => T) => (options.busy !== undefined ? Promise.resolve(busy(options.busy)) : job()),
    ensureInitialized: () => Promise.resolve(options.notReady),
  };
}

const ref = (): ClaimRef => claimRef({ namespace: 'ml', name: 'c' });

describe('Preparer', () => {
  it('hands every reference to the steps once per UID, in request order, and answers each', async () => {
    const ops = fakeOps();
    const preparer = new Preparer({ store: fakeStore(), ops });
    const [a, b] = [ref(), ref()];
    const out = await preparer.prepare([a, b, a]);
    expect(Object.fromEntries(out)).toEqual({ [a.uid]: { devices: [] }, [b.uid]: { devices: [] } });
    const un = await preparer.unprepare([b, a, b]);
    expect(Object.fromEntries(un)).toEqual({ [b.uid]: {}, [a.uid]: {} });
    expect(ops.calls).toEqual([`prepare ${a.uid}`, `prepare ${b.uid}`, `unprepare ${b.uid}`, `unprepare ${a.uid}`]);
  });

  it('takes only checked references: plain strings do not type-check', () => {
    const plain = { namespace: 'ml', name: 'c', uid: '../../etc' };
    // @ts-expect-error a reference of plain strings is not a ClaimRef (only the entry checks make one)
    const unchecked: Parameters<Preparer['prepare']>[0] = [plain];
    // @ts-expect-error nor is one with a checked namespace and name but a plain uid
    const half: ClaimRef = { ...ref(), uid: plain.uid };
    expect([unchecked, half]).toHaveLength(2);
  });

  it('a checkpoint that cannot be loaded, or a lock held elsewhere, answers every claim with the reason', async () => {
    const claims = [ref(), ref()];
    const claims2 = [...claims, claims[0]!];
    for (const [store, reason] of [
      [fakeStore({ notReady: 'checkpoint not loaded: disk on fire' }), 'checkpoint not loaded: disk on fire'],
      [fakeStore({ busy: new StateLockError('/s/claims.lock', true, 'another gpulet instance holds /s/claims.lock; retry') }), 'another gpulet instance holds /s/claims.lock; retry'],
    ] as const) {
      const ops = fakeOps();
      const preparer = new Preparer({ store, ops });
      for (const out of [await preparer.prepare(claims2), await preparer.unprepare(claims2)]) {
        expect([...out.keys()]).toEqual(claims.map((c) => c.uid));
        for (const c of claims) expect(out.get(c.uid)?.error).toBe(`claim ml/c (uid ${c.uid}): ${reason}`);
      }
      expect(ops.calls).toEqual([]);
    }
  });
});

describe('ClaimRecovery.adopt', () => {
  it('prepares a listed claim (checked where it was read) without a GET; a recorded claim is left alone', async () => {
    const { dir, cleanup } = await tempDir('gpulet-adopt-');
    try {
      const inventory = await dgxInventory();
      const source = new MemoryClaimSource();
      const { store, recovery } = claimState({
        driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source,
        cdiDir: join(dir, 'cdi'), checkpointPath: join(dir, 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('b'),
      });
      await store.init();
      const listed = newRef('listed');
      const pod = { resource: 'pods', name: 'p', uid: newRef().uid };
      const claim = checkedClaim(allocatedClaim(listed, [{ device: 'gpu-0' }], { reservedFor: [pod] }));
      expect((await recovery.adopt(claim))?.error).toBeUndefined();
      expect(await recovery.adopt(claim)).toBeUndefined(); // recorded now: left alone
      expect(source.gets).toBe(0);
      expect(Object.keys(store.entries())).toEqual([listed.uid]);
      expect(store.entries()[listed.uid]?.pods).toEqual([{ namespace: 'ml', name: 'p', uid: pod.uid }]);
    } finally {
      await cleanup();
    }
  });
});
