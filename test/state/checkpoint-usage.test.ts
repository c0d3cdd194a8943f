/**
 * Per-claim accounting in the checkpoint (src/state/checkpoint-entry.ts `usage`, `ClaimStore.recordUsage`,
 * `OwnershipView.usages`), over real files and the real state lock. Proves:
 * - recorded usage survives a new store loading the file (the checksum verifies), for prepared claims only;
 *   a claim not prepared (or unknown: unprepared meanwhile) gets none, and nothing is written when none is left;
 * - a file of the older shape (no `usage`) loads unchanged; a `usage` that fails its schema reads as none and
 *   the claim's entry stays;
 * - a commit of a later state of an entry (unprepare's UnprepareStarted) keeps its usage.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { ClaimUsage } from '../../src/model/types.js';
import { encodeCheckpoint, type CheckpointClaim, type CheckpointClaims } from '../../src/state/checkpoint.js';
import { ClaimStore } from '../../src/state/claim-store.js';
import { OwnershipView } from '../../src/state/ownership.js';
import { newRef, tempDir } from '../helpers/claims.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-usage-'));
});
afterEach(() => cleanup());

const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
const storeOn = () => new ClaimStore({ checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1') });
const entryOf = (name: string, state: CheckpointClaim['state'] = 'PrepareCompleted'): CheckpointClaim => ({ ...newRef(name), state, devices: [], pods: [], configs: [] });
const USAGE: ClaimUsage = {
  lastSampleMs: 1_767_225_600_000,
  deviceSeconds: 3600.5,
  energyJoules: 1_234_567.25,
  activeSeconds: 1800.125,
  memoryPeakBytes: 42 * 2 ** 30,
  baselines: [{ uuid: 'GPU-0f5a2b8c-1d3e-4f60-8a9b-0c1d2e3f4a5b', energyMillijoules: 98_765_432_100 }],
};

describe('per-claim usage in the checkpoint', () => {
  it('is recorded for prepared claims only and read back by a new store', async () => {
    const store = storeOn();
    await store.init();
    const prepared = entryOf('prepared');
    const starting = entryOf('starting', 'PrepareStarted');
    await store.locked(async () => {
      await store.commit(prepared.uid, prepared);
      await store.commit(starting.uid, starting);
    });
    await store.recordUsage(new Map([[prepared.uid, USAGE], [starting.uid, USAGE], ['0b9a5c3e-7f1d-4e2a-9c8b-6d5e4f3a2b1c', USAGE]]));

    const again = storeOn();
    await again.init();
    expect(again.entries()[prepared.uid]?.usage).toEqual(USAGE);
    expect(again.entries()[starting.uid]?.usage).toBeUndefined();
    expect(Object.keys(again.entries()).sort()).toEqual([prepared.uid, starting.uid].sort());
    expect(new OwnershipView(again).usages()).toEqual(new Map([[prepared.uid, USAGE]]));

    // Nothing left to record: the file is not written.
    const before = await readFile(checkpointPath(), 'utf8');
    await again.recordUsage(new Map([[starting.uid, USAGE]]));
    expect(await readFile(checkpointPath(), 'utf8')).toBe(before);
  });

  it('reads the older shape (no usage), and a usage that fails its schema as none, keeping the entry', async () => {
    const old = entryOf('old');
    const bad = { ...entryOf('bad'), usage: { ...USAGE, deviceSeconds: -1, baselines: 'nope' } };
    const claims = { [old.uid]: old, [bad.uid]: bad } as unknown as CheckpointClaims;
    await storeOn().init(); // creates the state dir
    await writeFile(checkpointPath(), encodeCheckpoint(claims, 'boot-1'));
    encodeCheckpoint({}, 'boot-1'); // so the load decodes the file rather than answer from the encoder's last document
    const store = storeOn();
    const loaded = await store.init();
    expect(loaded.error).toBeUndefined();
    expect(store.needsRebuild).toBe(false); // no entry was dropped
    expect(store.entries()[old.uid]).toEqual(old);
    const withoutUsage: Partial<typeof bad> = { ...bad };
    delete withoutUsage.usage;
    expect(store.entries()[bad.uid]).toEqual(withoutUsage);
    expect(store.entries()[bad.uid]).not.toHaveProperty('usage');
  });

  it('stays with the entry through a later commit of it (unprepare\'s UnprepareStarted)', async () => {
    const store = storeOn();
    await store.init();
    const e = entryOf('moving');
    await store.locked(() => store.commit(e.uid, e));
    await store.recordUsage(new Map([[e.uid, USAGE]]));
    const recorded = store.entries()[e.uid]!;
    await store.locked(() => store.commit(e.uid, { ...recorded, state: 'UnprepareStarted' }));
    const again = storeOn();
    await again.init();
    expect(again.entries()[e.uid]).toMatchObject({ state: 'UnprepareStarted', usage: USAGE });
  });
});
