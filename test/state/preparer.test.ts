/**
 * The preparer (src/state/preparer.ts), against fakes of the narrow ports it takes, and recovery's `adopt`:
 * where a claim reference enters state it is checked once (prepare: namespace, name and a lower-case UUID;
 * unprepare: the UID), and only checked references reach the per-claim steps; one answer per UID; a batch
 * that cannot load the checkpoint or take the lock answers every claim with the reason.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { ClaimError } from '../../src/errors.js';
import type { ClaimRef, PrepareResult } from '../../src/model/types.js';
import type { CheckedClaimRef } from '../../src/state/claim-ops.js';
import { StateLockError } from '../../src/state/lock.js';
import { Preparer, type PreparerOps, type PreparerStore } from '../../src/state/preparer.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir } from '../helpers/claims.js';

/** Per-claim steps that record what reached them. */
function fakeOps(): PreparerOps & { readonly calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    prepareOne: (ref: CheckedClaimRef): Promise<PrepareResult> => {
      calls.push(`prepare ${ref.uid}`);
      return Promise.resolve({ devices: [] });
    },
    unprepareOne: (ref: CheckedClaimRef) => {
      calls.push(`unprepare ${ref.uid}`);
      return Promise.resolve({});
    },
    reject: (ref: ClaimRef, error: ClaimError) => {
      calls.push(`reject ${ref.uid}`);
      return { error: error.message };
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

const ref = (over: Partial<ClaimRef> = {}): ClaimRef => ({ namespace: 'ml', name: 'c', uid: randomUUID(), ...over });

describe('Preparer', () => {
  it('checks each reference where it enters: only checked ones reach the steps, one answer per UID', async () => {
    const ops = fakeOps();
    const preparer = new Preparer({ store: fakeStore(), ops });
    const good = ref();
    const bad = [ref({ uid: '../../etc' }), ref({ uid: good.uid.toUpperCase() }), ref({ namespace: '' }), ref({ name: '' }), ref({ uid: 'constructor' })];
    const out = await preparer.prepare([good, ...bad, good]);
    expect([...out.keys()]).toEqual([good.uid, ...bad.map((r) => r.uid)]);
    expect(out.get(good.uid)).toEqual({ devices: [] });
    for (const r of bad) {
      expect(out.get(r.uid)?.error).toBe(`claim ${r.namespace}/${r.name} (uid ${r.uid}): invalid claim reference: namespace and name must be set and uid must be a lower-case UUID`);
    }
    expect(ops.calls).toEqual([`prepare ${good.uid}`, ...bad.map((r) => `reject ${r.uid}`)]);
  });

  it('unprepare needs only a valid UID; another UID succeeds without reaching the steps', async () => {
    const ops = fakeOps();
    const preparer = new Preparer({ store: fakeStore(), ops });
    const noNames = ref({ namespace: '', name: '' });
    const notUuid = ref({ uid: 'not-a-uuid' });
    const out = await preparer.unprepare([noNames, notUuid, noNames]);
    expect(Object.fromEntries(out)).toEqual({ [noNames.uid]: {}, [notUuid.uid]: {} });
    expect(ops.calls).toEqual([`unprepare ${noNames.uid}`]);
  });

  it('a checkpoint that cannot be loaded, or a lock held elsewhere, answers every claim with the reason', async () => {
    const claims = [ref(), ref({ uid: 'x' })];
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
  it('checks the listed claim\'s reference first; a recorded claim is left alone', async () => {
    const { dir, cleanup } = await tempDir('gpulet-adopt-');
    try {
      const inventory = await dgxInventory();
      const { store, recovery } = claimState({
        driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: new MemoryClaimSource(),
        cdiDir: join(dir, 'cdi'), checkpointPath: join(dir, 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('b'),
      });
      await store.init();
      const listed = newRef('listed');
      const claim = allocatedClaim(listed, [{ device: 'gpu-0' }], { reservedFor: [{ resource: 'pods', name: 'p', uid: 'p1' }] });
      expect((await recovery.adopt(claim))?.error).toBeUndefined();
      expect(await recovery.adopt(claim)).toBeUndefined(); // recorded now: left alone
      // A UID naming an Object.prototype member is an invalid reference, not "already recorded".
      for (const uid of ['constructor', '__proto__', 'not-a-uuid']) {
        const bad = allocatedClaim({ namespace: 'ml', name: 'odd', uid }, [{ device: 'gpu-1' }]);
        expect((await recovery.adopt(bad))?.error).toBe(`claim ml/odd (uid ${uid}): invalid claim reference: namespace and name must be set and uid must be a lower-case UUID`);
      }
      expect(Object.keys(store.entries())).toEqual([listed.uid]);
    } finally {
      await cleanup();
    }
  });
});
