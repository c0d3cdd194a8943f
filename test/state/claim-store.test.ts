/**
 * The claim store's contract (src/state/claim-store.ts), over real files and the real state lock:
 * - a session is re-entrant for its own store (one lock acquisition, nested jobs run at once) and only for it
 *   (a second store on the same state dir waits for the lock like another process);
 * - sessions of one store run one after the other, and a job that throws releases the lock for the next;
 * - every session re-reads the checkpoint, so it sees what another store wrote; an unusable file met on the
 *   re-read keeps the image in memory, writes it back, reports it and marks a rebuild due;
 * - `entries()` is an immutable snapshot whose identity changes exactly when the image is replaced;
 * - the first batch loads the checkpoint when `init()` was not called.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { CheckpointClaim } from '../../src/state/checkpoint.js';
import { ClaimStore, type ClaimStoreOptions } from '../../src/state/claim-store.js';
import { StateLockError } from '../../src/state/lock.js';
import { newRef, tempDir } from '../helpers/claims.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-store-'));
});
afterEach(() => cleanup());

const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
const storeOn = (over: Partial<ClaimStoreOptions> = {}) =>
  new ClaimStore({ checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'), ...over });
const entryOf = (name: string, state: CheckpointClaim['state'] = 'PrepareCompleted'): CheckpointClaim => {
  return { ...newRef(name), state, devices: [], pods: [], configs: [] };
};
const fileClaims = async () => Object.keys((JSON.parse(await readFile(checkpointPath(), 'utf8')) as { claims: object }).claims);

describe('ClaimStore sessions', () => {
  it('are re-entrant for the same store: nested sessions run at once under one lock acquisition', async () => {
    const store = storeOn();
    await store.init();
    const acquire = vi.spyOn(store.stateLock, 'acquire');
    const depth = await store.locked(() => store.locked(() => store.lockedOr(() => Promise.resolve(3), () => -1)));
    expect(depth).toBe(3);
    expect(acquire).toHaveBeenCalledTimes(1);
  });

  it('are not re-entrant across stores: another store on the same state dir waits for the lock', async () => {
    const a = storeOn();
    const b = storeOn({ lockTimings: { acquireTimeoutMs: 200 } });
    await a.init();
    await b.init();
    const inside = await a.locked(async () => ({
      locked: await b.locked(() => Promise.resolve('ran')).catch((e: unknown) => e),
      lockedOr: await b.lockedOr(() => Promise.resolve('ran'), (busy) => `busy: ${busy instanceof StateLockError && busy.busy}`),
    }));
    expect(inside.locked).toBeInstanceOf(StateLockError);
    expect((inside.locked as StateLockError).busy).toBe(true);
    expect(inside.lockedOr).toBe('busy: true');
    expect(await b.locked(() => Promise.resolve('ran'))).toBe('ran'); // free again once a's session ended
  });

  it('run one after the other; a job that throws releases the lock for the next', async () => {
    const store = storeOn();
    await store.init();
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = store.locked(async () => {
      events.push('first:start');
      await gate;
      events.push('first:end');
      throw new Error('boom');
    });
    const second = store.locked(() => {
      events.push('second');
      return Promise.resolve('second done');
    });
    await vi.waitFor(() => expect(events).toEqual(['first:start']));
    release();
    await expect(first).rejects.toThrow('boom');
    expect(await second).toBe('second done');
    expect(events).toEqual(['first:start', 'first:end', 'second']);
  });
});

describe('ClaimStore image', () => {
  it('entries() keeps its identity until the image is replaced; commit saves it', async () => {
    const store = storeOn();
    await store.init();
    const before = store.entries();
    expect(store.entries()).toBe(before);
    const entry = entryOf('a');
    await store.locked(() => store.commit(entry.uid, entry));
    const after = store.entries();
    expect(after).not.toBe(before);
    expect(before).toEqual({}); // the old snapshot is untouched
    expect(Object.keys(after)).toEqual([entry.uid]);
    expect(await fileClaims()).toEqual([entry.uid]);
    store.restoreEntry(entry.uid, entry); // present: no-op
    expect(store.entries()).toBe(after);
    await store.locked(() => store.commit(entry.uid, undefined));
    expect(store.entries()).toEqual({});
    expect(await fileClaims()).toEqual([]);
    store.restoreEntry(entry.uid, entry); // an unsaved removal put back
    expect(Object.keys(store.entries())).toEqual([entry.uid]);
  });

  it('each session re-reads the checkpoint: what another store committed is seen', async () => {
    const a = storeOn();
    const b = storeOn();
    await a.init();
    await b.init();
    const entry = entryOf('from-b');
    await b.locked(() => b.commit(entry.uid, entry));
    expect(a.entries()).toEqual({}); // not until a session
    await a.locked(() => Promise.resolve());
    expect(Object.keys(a.entries())).toEqual([entry.uid]);
  });

  it('an unusable checkpoint met on a re-read: keeps the image, writes it back, reports it, marks a rebuild due', async () => {
    const lost: string[] = [];
    const store = storeOn({ onCheckpointLost: (e) => void lost.push(e.message) });
    await store.init();
    const entry = entryOf('kept');
    await store.locked(() => store.commit(entry.uid, entry));
    expect(store.needsRebuild).toBe(false);
    await writeFile(checkpointPath(), '{"apiVersion": "gpulet.dev/v1", "kind": "Check'); // torn by someone else
    await store.locked(() => Promise.resolve());
    expect(lost).toHaveLength(1);
    expect(lost[0]).toContain('not valid JSON');
    expect(store.needsRebuild).toBe(true);
    expect(Object.keys(store.entries())).toEqual([entry.uid]);
    expect(await fileClaims()).toEqual([entry.uid]); // written back
    expect((await readdir(join(dir, 'state'))).some((n) => n.startsWith('checkpoint.json.corrupt-'))).toBe(true);
    store.rebuilt();
    expect(store.needsRebuild).toBe(false);
  });

  it('ensureInitialized() loads the checkpoint once when init() was not called', async () => {
    const writer = storeOn();
    await writer.init();
    const entry = entryOf('recorded');
    await writer.locked(() => writer.commit(entry.uid, entry));
    const lazy = storeOn();
    expect(lazy.entries()).toEqual({});
    expect(await lazy.locked(() => lazy.ensureInitialized())).toBeUndefined();
    expect(Object.keys(lazy.entries())).toEqual([entry.uid]);
  });

  it('ensureInitialized() answers the reason when the checkpoint cannot be loaded', async () => {
    await writeFile(join(dir, 'state'), 'a file where the state dir should be');
    const store = storeOn({ lockTimings: { acquireTimeoutMs: 100 } });
    expect(await store.ensureInitialized()).toMatch(/^checkpoint not loaded: cannot create the state dir of the lock/);
  });
});
