/**
 * A session skips re-reading a checkpoint it already knows, and only that one (src/state/checkpoint-file.ts
 * `reload`): the file this store last wrote or read, unchanged, costs one `lstat`; any change by someone else —
 * another instance's atomic write (a new inode, even with the same size and the old mtime put back), a write in
 * place (same inode), a save of ours that failed — is read in full and seen. Calls are counted through
 * test/helpers/fs-faults.ts, which replaces src/state/fs.ts for this file; the "other instances" are second
 * ClaimStores on the same state dir (a rolling update's old and new agent).
 */
import { readdir, readFile, readlink, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { CheckpointClaim } from '../../src/state/checkpoint.js';
import { ClaimStore } from '../../src/state/claim-store.js';
import { faults } from '../helpers/fs-faults.js';
import { newRef, tempDir } from '../helpers/claims.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

let dir: string;
let cleanup: () => Promise<void>;
const stores: ClaimStore[] = [];
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-reread-'));
});
afterEach(async () => {
  faults.disarm();
  for (const s of stores.splice(0)) await s.close();
  await cleanup();
});

const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
const storeOn = (): ClaimStore => {
  const s = new ClaimStore({ checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1') });
  stores.push(s);
  return s;
};
const entryOf = (name: string): CheckpointClaim => ({ ...newRef(name), state: 'PrepareCompleted', devices: [], pods: [], configs: [] });
const names = (s: ClaimStore) => Object.values(s.entries()).map((e) => e.name).sort();
/** One empty session of `s` (what every batch starts with), counting its file calls. */
const countedSession = async (s: ClaimStore): Promise<ReadonlyMap<string, number>> => {
  faults.arm();
  await s.locked(() => Promise.resolve());
  const counts = faults.counts();
  faults.disarm();
  return counts;
};

describe('the session re-read of the checkpoint', () => {
  it('is one lstat when the file is the one this store last wrote, or last read', async () => {
    const a = storeOn();
    await a.init();
    await a.locked(() => a.commit(entryOf('x').uid, entryOf('x')));
    const afterWrite = await countedSession(a);
    expect(afterWrite.get('stat')).toBe(1);
    expect([afterWrite.get('open'), afterWrite.get('read')]).toEqual([undefined, undefined]);
    expect(names(a)).toEqual(['x']);

    const b = storeOn(); // loads the file a wrote
    await b.init();
    const afterRead = await countedSession(b);
    expect([afterRead.get('stat'), afterRead.get('open'), afterRead.get('read')]).toEqual([1, undefined, undefined]);
    expect(names(b)).toEqual(['x']);
  });

  it("sees another instance's write between sessions (a new file: read in full)", async () => {
    const a = storeOn();
    const b = storeOn();
    await a.init();
    await a.locked(() => a.commit(entryOf('x').uid, entryOf('x')));
    await b.init();
    const y = entryOf('y');
    await b.locked(() => b.commit(y.uid, y));
    const counts = await countedSession(a);
    expect(counts.get('read')).toBeGreaterThan(0);
    expect(names(a)).toEqual(['x', 'y']);
  });

  it('sees a replacement of the same size whose mtime was put back (another inode: the kept file holds its number)', async () => {
    const a = storeOn();
    const b = storeOn();
    await a.init();
    const x = entryOf('name-1');
    await a.locked(() => a.commit(x.uid, x));
    const mine = await stat(checkpointPath(), { bigint: true });
    await b.init();
    const other = { ...x, name: entryOf('name-2').name }; // the same uid, a name of the same length: the file keeps its size
    await b.locked(() => b.commit(x.uid, other));
    await utimes(checkpointPath(), Number(mine.atimeNs) / 1e9, Number(mine.mtimeNs) / 1e9);
    const theirs = await stat(checkpointPath(), { bigint: true });
    expect(theirs.size).toBe(mine.size);
    expect(Math.abs(Number(theirs.mtimeNs - mine.mtimeNs))).toBeLessThan(1e4); // put back, to within the double's precision
    expect(theirs.ino).not.toBe(mine.ino);
    await countedSession(a);
    expect(names(a)).toEqual(['name-2']);
  });

  it('sees a write in place (the same inode)', async () => {
    const a = storeOn();
    const b = storeOn();
    await a.init();
    await a.locked(() => a.commit(entryOf('x').uid, entryOf('x')));
    const ino = (await stat(checkpointPath())).ino;
    // b writes its checkpoint elsewhere; its content is then copied over a's file in place (O_TRUNC, same inode).
    const elsewhere = join(dir, 'other', 'checkpoint.json');
    const c = new ClaimStore({ checkpointPath: elsewhere, logger: silentLogger(), readBootId: () => Promise.resolve('boot-1') });
    stores.push(c, b);
    await c.init();
    await c.locked(() => c.commit(entryOf('z').uid, entryOf('z')));
    await writeFile(checkpointPath(), await readFile(elsewhere));
    expect((await stat(checkpointPath())).ino).toBe(ino);
    const counts = await countedSession(a);
    expect(counts.get('read')).toBeGreaterThan(0);
    expect(names(a)).toEqual(['z']);
  });

  it('reads in full when the lstat fails, and after a save of its own that failed (the image is the file again)', async () => {
    const a = storeOn();
    await a.init();
    await a.locked(() => a.commit(entryOf('x').uid, entryOf('x')));
    faults.arm({ op: 'stat', nth: 1, errno: 'EMFILE' });
    await a.locked(() => Promise.resolve());
    expect(faults.fired?.path).toBe(checkpointPath());
    expect(faults.counts().get('read')).toBeGreaterThan(0);
    expect(names(a)).toEqual(['x']);

    const y = entryOf('y');
    faults.arm({ op: 'fsync', nth: 1, errno: 'EIO' }); // the temp file's fsync: the file is not replaced
    await expect(a.locked(() => a.commit(y.uid, y))).rejects.toBeInstanceOf(CheckpointError);
    expect(names(a)).toEqual(['x', 'y']); // the image has it until the next session re-reads the file
    const counts = await countedSession(a);
    expect(counts.get('read')).toBeGreaterThan(0);
    expect(names(a)).toEqual(['x']);
  });

  it('keeps the file it knows open until close()', async () => {
    const a = storeOn();
    await a.init();
    await a.locked(() => a.commit(entryOf('x').uid, entryOf('x')));
    const openOnCheckpoint = async () => {
      const fds = await readdir('/proc/self/fd');
      const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
      return targets.filter((t) => t.startsWith(checkpointPath())).length;
    };
    expect(await openOnCheckpoint()).toBe(1);
    await a.close();
    expect(await openOnCheckpoint()).toBe(0);
    const counts = await countedSession(a); // still usable: reads in full, keeps the file again
    expect(counts.get('read')).toBeGreaterThan(0);
    expect(names(a)).toEqual(['x']);
    expect(await openOnCheckpoint()).toBe(1);
  });
});
