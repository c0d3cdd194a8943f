/**
 * The checkpoint file's store (src/state/checkpoint-file.ts) on its own, in real temp directories: what `load`
 * answers for a missing file, a file that does not decode, and things that cannot be a checkpoint (a FIFO, a
 * symlink, a directory), each moved aside under `<file>.corrupt-<clock>`; what it throws for an I/O error
 * (the file left in place); the listing of set-aside files; `save`'s size cap in bytes (exactly the cap is
 * written, one byte more is not), its two kinds of failure (not written / written but the directory not
 * synced); the removal of crash-left temp files; and where the boot ID comes from (`GPULET_BOOT_ID_FILE`,
 * else the kernel's /proc/sys/kernel/random/boot_id), read once.
 *
 * I/O errors are injected with test/helpers/fs-faults.ts (src/state/fs.ts replaced for this file, every call
 * passed through until a test arms a fault); the directory listing can be reordered, as POSIX leaves
 * `readdir`'s order unspecified (ext4 lists in hash order). Files are inspected with the real node:fs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { DirSyncError } from '../../src/state/atomic-file.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointClaims } from '../../src/state/checkpoint.js';
import { CHECKPOINT_MAX_BYTES, CheckpointStore, readKernelBootId } from '../../src/state/checkpoint-file.js';
import { StateIoError } from '../../src/state/plain-file.js';
import { faults } from '../helpers/fs-faults.js';
import { tempDir } from '../helpers/claims.js';
import { claimRef, podRef } from '../helpers/names.js';

/** How the replaced `readdir` reorders a listing (identity unless a test sets it). */
const listing = vi.hoisted(() => ({ order: (names: string[]): string[] => names }));

vi.mock('../../src/state/fs.js', async (original) => {
  const fs = (await import('../helpers/fs-faults.js')).faultyFs(await original());
  const readdir = async (path: string): Promise<string[]> => listing.order(await fs.readdir(path));
  return { ...fs, readdir };
});

/** The kernel's boot ID file (Linux drivers/char/random.c, `/proc/sys/kernel/random/boot_id`), read directly. */
const KERNEL_FILE = '/proc/sys/kernel/random/boot_id';
/** The environment variable the agent's tests use to stand in for it (README, "Testing"). */
const ENV = 'GPULET_BOOT_ID_FILE';
/** The clock of every store here, so set-aside names are known. */
const NOW = 42;

const REF = claimRef({ namespace: 'ml', name: 'train', uid: '3b0c7a52-4a1f-4c77-9a55-0d6e1f2a3b4c' });
const POD = podRef({ namespace: 'ml', name: 'p', uid: '7d2e9c41-1b3a-4f5e-8c6d-9a0b1c2d3e4f' });
/** One prepared claim; `pad` goes into its opaque-config env (to size the file). */
const claimsWith = (pad = 'llama'): CheckpointClaims => ({
  [REF.uid]: {
    ...REF,
    state: 'PrepareCompleted',
    devices: [{ requestNames: ['gpu'], poolName: 'node-a', deviceName: 'gpu-0', uuid: 'GPU-1', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${REF.uid}-gpu-0`] }],
    pods: [POD],
    configs: [{ devices: [], env: { MODEL: pad } }],
  },
});

/** `fn`'s rejection (fails the test when it resolves). */
async function rejectionOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

let dir: string;
let cleanup: () => Promise<void>;
let path: string;
const store = (options: { readBootId?: () => Promise<string>; now?: () => number } = {}) =>
  new CheckpointStore({ path, readBootId: () => Promise.resolve('boot-1'), now: () => NOW, ...options });
const names = async (d = dir) => (await readdir(d)).sort();

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-ckpt-'));
  path = join(dir, 'checkpoint.json');
  faults.arm(); // count only
  listing.order = (n) => n;
});
afterEach(async () => {
  faults.disarm();
  faults.release();
  await cleanup();
});

describe('readKernelBootId', () => {
  const saved = process.env[ENV];
  afterEach(() => {
    if (saved === undefined) delete process.env[ENV];
    else process.env[ENV] = saved;
  });

  it('answers the trimmed content of the file it is given', async () => {
    await writeFile(join(dir, 'id'), '  5f0c8f2e-0d4b-4a55-9d6b-1c2a3b4c5d6e\n');
    expect(await readKernelBootId(join(dir, 'id'))).toBe('5f0c8f2e-0d4b-4a55-9d6b-1c2a3b4c5d6e');
  });

  it("answers 'unknown' for a file that is empty or blank, missing, or a directory (never throws)", async () => {
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'blank'), ' \n\t\n');
    expect(await readKernelBootId(join(dir, 'empty'))).toBe('unknown');
    expect(await readKernelBootId(join(dir, 'blank'))).toBe('unknown');
    expect(await readKernelBootId(join(dir, 'missing'))).toBe('unknown');
    expect(await readKernelBootId(dir)).toBe('unknown');
  });

  it(`reads the file ${ENV} names, else (unset or empty) the kernel's ${KERNEL_FILE}`, async () => {
    const kernel = readFileSync(KERNEL_FILE, 'utf8').trim();
    expect(kernel).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await writeFile(join(dir, 'id'), 'simulated-boot\n');
    process.env[ENV] = join(dir, 'id');
    expect(await readKernelBootId()).toBe('simulated-boot');
    process.env[ENV] = '';
    expect(await readKernelBootId()).toBe(kernel);
    delete process.env[ENV];
    expect(await readKernelBootId()).toBe(kernel);
  });

  it(`is the store's default: a store without readBootId saves the boot ID of ${ENV}'s file`, async () => {
    await writeFile(join(dir, 'id'), 'boot-from-env\n');
    process.env[ENV] = join(dir, 'id');
    const s = new CheckpointStore({ path });
    await s.save(claimsWith());
    expect(decodeCheckpoint(await readFile(path, 'utf8')).bootId).toBe('boot-from-env');
  });
});

describe('CheckpointStore: the boot ID and the clock', () => {
  it('reads the boot ID once: later saves and bootId() answer the first one', async () => {
    let calls = 0;
    const s = store({ readBootId: () => Promise.resolve(`boot-${++calls}`) });
    await s.save(claimsWith());
    await s.save(claimsWith('mistral'));
    expect(await s.bootId()).toBe('boot-1');
    expect(calls).toBe(1);
    expect(await s.load()).toEqual({ claims: claimsWith('mistral'), fileBootId: 'boot-1' });
  });

  it('names a set-aside file by Date.now when given no clock', async () => {
    await writeFile(path, 'not json');
    const before = Date.now();
    const loaded = await new CheckpointStore({ path, readBootId: () => Promise.resolve('b') }).load();
    const after = Date.now();
    const ms = Number(/\.corrupt-(\d+)$/.exec(loaded.movedTo ?? '')?.[1]);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });
});

describe('CheckpointStore.load', () => {
  it('answers missing, and changes nothing, when there is no file or a directory of its path is a file', async () => {
    expect(await store().load()).toEqual({ claims: {}, fileBootId: '', missing: true });
    await writeFile(join(dir, 'file'), 'x');
    path = join(dir, 'file', 'checkpoint.json'); // ENOTDIR
    expect(await store().load()).toEqual({ claims: {}, fileBootId: '', missing: true });
    expect(await names()).toEqual(['file']);
  });

  it('answers the claims and the boot ID of a file it saved', async () => {
    await store({ readBootId: () => Promise.resolve('boot-7') }).save(claimsWith());
    expect(await store().load()).toEqual({ claims: claimsWith(), fileBootId: 'boot-7' });
  });

  it('moves a file that does not decode aside, saying why (the decode error as cause), where, and what follows', async () => {
    const text = '{"apiVersion": "gpulet.dev/v1", "kind": "Checkpoint", "claims": {';
    await writeFile(path, text);
    const decodeError = rejectionOf(() => Promise.resolve().then(() => decodeCheckpoint(text)));
    const movedTo = `${path}.corrupt-${NOW}`;
    const loaded = await store().load();
    expect(loaded).toEqual({ claims: {}, fileBootId: '', error: expect.any(CheckpointError) as unknown, movedTo });
    const reason = ((await decodeError) as Error).message;
    expect(reason).toMatch(/^not valid JSON/);
    expect(loaded.error?.message).toBe(`checkpoint ${path}: ${reason}; moved aside to ${movedTo}; rebuilding the prepared claims from the API server`);
    expect((loaded.error?.cause as Error).message).toBe(reason);
    expect(await readFile(movedTo, 'utf8')).toBe(text);
    expect(await names()).toEqual([`checkpoint.json.corrupt-${NOW}`]);
  });

  const notFiles: [string, (p: string) => Promise<void>, string, (s: Awaited<ReturnType<typeof lstat>>) => boolean][] = [
    ['a FIFO', (p) => Promise.resolve(void execFileSync('mkfifo', [p])), 'a FIFO', (s) => s.isFIFO()],
    ['a directory', (p) => mkdir(p), 'a directory', (s) => s.isDirectory()],
    ['a symlink to a valid checkpoint', async (p) => {
      const target = join(dir, 'elsewhere.json');
      await writeFile(target, encodeCheckpoint(claimsWith(), 'boot-1'));
      await symlink(target, p);
    }, 'a symbolic link (not followed)', (s) => s.isSymbolicLink()],
  ];
  for (const [name, make, words, isIt] of notFiles) {
    it(`moves ${name} at the path aside without opening it for writing, no decode error as cause`, async () => {
      await make(path);
      const movedTo = `${path}.corrupt-${NOW}`;
      const loaded = await store().load();
      expect(loaded).toEqual({ claims: {}, fileBootId: '', error: expect.any(CheckpointError) as unknown, movedTo });
      expect(loaded.error?.message).toBe(`checkpoint ${path}: cannot be a checkpoint: ${words} is at the path; moved aside to ${movedTo}; rebuilding the prepared claims from the API server`);
      expect(loaded.error?.cause).toBeUndefined();
      expect(isIt(await lstat(movedTo))).toBe(true);
      await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  }

  it('leaves a link\'s target as it was', async () => {
    const target = join(dir, 'elsewhere.json');
    const text = encodeCheckpoint(claimsWith(), 'boot-1');
    await writeFile(target, text);
    await symlink(target, path);
    await store().load();
    expect(await readFile(target, 'utf8')).toBe(text);
  });

  for (const op of ['open', 'read'] as const) {
    it(`throws a StateIoError for an I/O error of ${op}, the file left in place and nothing set aside`, async () => {
      await store().save(claimsWith());
      const text = await readFile(path, 'utf8');
      faults.arm({ op, nth: 1, errno: 'EIO' });
      const err = await rejectionOf(() => store().load());
      expect(err).toBeInstanceOf(StateIoError);
      expect(err).toMatchObject({ errno: 'EIO', what: 'checkpoint', path, op });
      expect((err as Error).message).toMatch(new RegExp(`^checkpoint ${path}: cannot ${op}: EIO: `));
      expect(await names()).toEqual(['checkpoint.json']);
      expect(await readFile(path, 'utf8')).toBe(text);
    });
  }

  it('throws a StateIoError when the unusable file cannot be moved aside: it stays, unchanged, with the reason', async () => {
    await writeFile(path, 'not json');
    faults.arm({ op: 'rename', nth: 1, errno: 'EIO' });
    const err = await rejectionOf(() => store().load());
    const movedTo = `${path}.corrupt-${NOW}`;
    expect(err).toBeInstanceOf(StateIoError);
    expect(err).toMatchObject({ errno: 'EIO', what: 'checkpoint', path });
    expect((err as Error).message).toMatch(new RegExp(`^checkpoint ${path}: cannot move the unusable file aside to ${movedTo}: EIO: .*; it is unusable \\(not valid JSON.*\\) and was left in place, nothing was changed; retryable$`));
    expect(await names()).toEqual(['checkpoint.json']);
    expect(await readFile(path, 'utf8')).toBe('not json');
  });

  it('still answers the file set aside when its directory cannot be synced after the move, and says so', async () => {
    await writeFile(path, 'not json');
    faults.arm({ op: 'fsync', nth: 1, errno: 'EIO' });
    const loaded = await store().load();
    const movedTo = `${path}.corrupt-${NOW}`;
    expect(faults.fired).toEqual({ op: 'fsync', path: dir });
    expect(loaded.movedTo).toBe(movedTo);
    expect(loaded.error?.message).toMatch(new RegExp(
      `; moved aside to ${movedTo} \\(the directory could not be synced: EIO: [^;]*; a crash may bring it back, and it is set aside again\\); rebuilding the prepared claims from the API server$`,
    ));
    expect(await names()).toEqual([`checkpoint.json.corrupt-${NOW}`]);
  });
});

describe('CheckpointStore.setAside', () => {
  const files = ['checkpoint.json', 'checkpoint.json.corrupt-3', 'checkpoint.json.corrupt-1', 'checkpoint.json.corrupt-20', 'other.json.corrupt-1', 'checkpoint.json.corrupt', 'xcheckpoint.json.corrupt-5', '.checkpoint.json.tmp-1-ab'];
  const expected = () => ['checkpoint.json.corrupt-1', 'checkpoint.json.corrupt-20', 'checkpoint.json.corrupt-3'].map((n) => join(dir, n));

  for (const [order, reorder] of [['as listed', (n: string[]) => n], ['listed in reverse', (n: string[]) => [...n].sort().reverse()]] as const) {
    it(`answers the paths of <file>.corrupt-* beside it, sorted by name, and nothing else (${order})`, async () => {
      for (const f of files) await writeFile(join(dir, f), '');
      listing.order = reorder;
      expect(await store().setAside()).toEqual(expected());
    });
  }

  it('answers none when its directory is missing, or is a file', async () => {
    path = join(dir, 'state', 'checkpoint.json');
    expect(await store().setAside()).toEqual([]);
    await writeFile(join(dir, 'state'), 'x');
    expect(await store().setAside()).toEqual([]);
  });

  it('throws a StateIoError naming the state dir when the listing fails otherwise', async () => {
    faults.arm({ op: 'readdir', nth: 1, errno: 'EIO' });
    const err = await rejectionOf(() => store().setAside());
    expect(err).toBeInstanceOf(StateIoError);
    expect(err).toMatchObject({ errno: 'EIO', what: 'state dir', path: dir, op: 'list' });
    expect((err as Error).message).toMatch(new RegExp(`^state dir ${dir}: cannot list: EIO: `));
  });
});

describe('CheckpointStore.save', () => {
  it('writes encodeCheckpoint(claims, bootId) byte for byte, file 0600, creating its directories 0700', async () => {
    path = join(dir, 'a', 'b', 'checkpoint.json');
    await store().save(claimsWith());
    expect(await readFile(path, 'utf8')).toBe(encodeCheckpoint(claimsWith(), 'boot-1'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'a', 'b'))).mode & 0o777).toBe(0o700);
    expect(await names(join(dir, 'a', 'b'))).toEqual(['checkpoint.json']);
  });

  it(`writes a file of exactly CHECKPOINT_MAX_BYTES (64 MiB) bytes, which load reads; one byte more, counted in UTF-8 bytes, is not written`, async () => {
    expect(CHECKPOINT_MAX_BYTES).toBe(64 * 1024 * 1024);
    const base = Buffer.byteLength(encodeCheckpoint(claimsWith(''), 'boot-1'));
    /** Claims whose file is `bytes` long: the pad is 2-byte 'é's (one JSON character each), and an 'a' when odd. */
    const sized = (bytes: number) => claimsWith(`${(bytes - base) % 2 === 1 ? 'a' : ''}${'é'.repeat(Math.floor((bytes - base) / 2))}`);
    const atCap = sized(CHECKPOINT_MAX_BYTES);
    await store().save(atCap);
    expect((await stat(path)).size).toBe(CHECKPOINT_MAX_BYTES);
    const loaded = await store().load();
    expect(loaded.error).toBeUndefined();
    expect(loaded.fileBootId).toBe('boot-1');

    const over = sized(CHECKPOINT_MAX_BYTES + 1);
    expect(encodeCheckpoint(over, 'boot-1').length).toBeLessThan(CHECKPOINT_MAX_BYTES); // in characters, under it
    const err = await rejectionOf(() => store().save(over));
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toBe(`checkpoint ${path}: not written: it would be ${CHECKPOINT_MAX_BYTES + 1} bytes, more than the ${CHECKPOINT_MAX_BYTES}-byte limit`);
    expect((await stat(path)).size).toBe(CHECKPOINT_MAX_BYTES); // the file at the cap is still there
    expect(await names()).toEqual(['checkpoint.json']);
  });

  it('reports a failed write as "cannot write" with the errno, the old file kept and no temp file left', async () => {
    await store().save(claimsWith());
    const before = await readFile(path, 'utf8');
    faults.arm({ op: 'write', nth: 1, errno: 'ENOSPC' });
    const err = await rejectionOf(() => store().save(claimsWith('mistral')));
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(new RegExp(`^checkpoint ${path}: cannot write: ENOSPC: [^;]*; check that its directory is writable and has space$`));
    expect((err as Error).cause).toMatchObject({ code: 'ENOSPC' });
    expect(await readFile(path, 'utf8')).toBe(before);
    expect(await names()).toEqual(['checkpoint.json']);
  });

  it('reports a file written whose directory could not be synced as such (a DirSyncError cause): the new file is in place', async () => {
    faults.arm({ op: 'fsync', nth: 2, errno: 'EIO' }); // 1: the temp file, 2: the directory after the rename
    const err = await rejectionOf(() => store().save(claimsWith()));
    expect(faults.fired).toEqual({ op: 'fsync', path: dir });
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).cause).toBeInstanceOf(DirSyncError);
    expect((err as Error).message).toMatch(new RegExp(`^checkpoint ${path}: written, but its directory could not be synced: EIO: [^;]*; the change may not survive a crash$`));
    expect(await readFile(path, 'utf8')).toBe(encodeCheckpoint(claimsWith(), 'boot-1'));
  });
});

describe('CheckpointStore.removeTempFiles', () => {
  const temps = ['.checkpoint.json.tmp-1-aa', '.checkpoint.json.tmp-2-bb', '.checkpoint.json.tmp-3-cc'];
  const others = ['checkpoint.json', 'checkpoint.json.corrupt-1', '.other.json.tmp-1-dd', 'checkpoint.json.tmp-4-ee'];

  it("removes this file's crash-left temp files only, and answers how many", async () => {
    for (const f of [...temps, ...others]) await writeFile(join(dir, f), '');
    expect(await store().removeTempFiles()).toBe(3);
    expect(await names()).toEqual([...others].sort());
  });

  it('answers 0 when its directory is missing or cannot be listed (never throws)', async () => {
    path = join(dir, 'state', 'checkpoint.json');
    expect(await store().removeTempFiles()).toBe(0);
    path = join(dir, 'checkpoint.json');
    for (const f of temps) await writeFile(join(dir, f), '');
    faults.arm({ op: 'readdir', nth: 1, errno: 'EIO' });
    expect(await store().removeTempFiles()).toBe(0);
    expect(await names()).toEqual([...temps].sort());
  });

  it('does not count a removal that failed, and goes on with the others', async () => {
    for (const f of temps) await writeFile(join(dir, f), '');
    faults.arm({ op: 'unlink', nth: 2, errno: 'EIO' });
    expect(await store().removeTempFiles()).toBe(2);
    expect(await names()).toHaveLength(1);
  });
});
