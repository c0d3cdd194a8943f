/**
 * State files are plain files (issue 9, item 3; src/state/plain-file.ts). A FIFO, or a symlink (to a FIFO
 * elsewhere, or to /etc/passwd), at `checkpoint.json` or at a claim's CDI spec path never makes a prepare or
 * the start-up wait: nothing follows a link or waits on a FIFO. At the checkpoint it is set aside (renamed,
 * never opened for writing) and the claims are rebuilt from the API server; at a spec it is replaced by the
 * spec (the atomic rename). A checkpoint over the size cap is refused on read and never written.
 * Every test bounds itself ({@link BOUND_MS}): before the fix, each hung on a blocking open.
 */
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import type { ClaimRef } from '../../src/model/types.js';
import { CHECKPOINT_MAX_BYTES, CheckpointStore } from '../../src/state/checkpoint-file.js';
import { encodeCheckpoint } from '../../src/state/checkpoint.js';
import type { ClaimList } from '../../src/state/claim-source.js';
import { initAndReconcile } from '../../src/state/reconcile.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState } from '../helpers/claims.js';

const POD = [{ resource: 'pods', name: 'p', uid: '5a4e3f2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b' }];
const BOUND_MS = 20_000; // a hang fails by this timeout; the tests take well under a second

class ListingSource extends MemoryClaimSource {
  /** One page: every claim held. */
  async *listPages(): AsyncIterable<ClaimList> {
    yield await Promise.resolve(this.listAll());
  }
}

describe('state files are plain files', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: ListingSource;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('gpulet-plain-'));
    source = new ListingSource();
  });
  afterEach(() => cleanup());

  const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
  const specPath = (uid: string) => join(dir, 'cdi', `k8s.${DRIVER}-claim_${uid}.json`);
  const stateOf = (): ClaimState =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'),
    });
  const start = (s: ClaimState = stateOf()) => initAndReconcile({ store: s.store, recovery: s.recovery, source, logger: silentLogger(), lockAttempts: 1 }).then((r) => ({ s, ...r }));
  const fileClaims = async () => Object.keys((JSON.parse(await readFile(checkpointPath(), 'utf8')) as { claims: object }).claims).sort();
  const setAside = async () => (await readdir(join(dir, 'state'))).filter((n) => n.startsWith('checkpoint.json.corrupt-')).map((n) => join(dir, 'state', n));
  const mkfifo = async (path: string) => {
    await rm(path, { force: true });
    execFileSync('mkfifo', [path]);
  };
  const link = async (target: string, path: string) => {
    await rm(path, { force: true });
    await symlink(target, path);
  };
  /** Two claims held by a pod, prepared on a started state. */
  const preparedPair = async (): Promise<{ s: ClaimState; a: ClaimRef; b: ClaimRef }> => {
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }], { reservedFor: POD }));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }], { reservedFor: POD }));
    const { s } = await start();
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    return { s, a, b };
  };

  it('a FIFO at checkpoint.json: the next batch sets it aside and completes; so does the start-up, rebuilding', { timeout: BOUND_MS }, async () => {
    const { s, a, b } = await preparedPair();
    await mkfifo(checkpointPath());
    expect((await s.preparer.prepare([b])).get(b.uid)?.error).toBeUndefined();
    expect(await fileClaims()).toEqual([a.uid, b.uid].sort()); // the image in memory was written back
    const [aside] = await setAside();
    expect((await lstat(aside!)).isFIFO()).toBe(true);

    await mkfifo(checkpointPath());
    const restarted = await start();
    expect(restarted.loaded.error?.message).toContain('cannot be a checkpoint: a FIFO is at the path');
    expect([...(restarted.report.rebuilt ?? [])].sort()).toEqual([a.uid, b.uid].sort());
    expect(await fileClaims()).toEqual([a.uid, b.uid].sort());
    expect((await lstat(specPath(a.uid))).isFile()).toBe(true);
  });

  it('a FIFO at a claim\'s spec: the start-up and a prepare replace it with the spec', { timeout: BOUND_MS }, async () => {
    const { a } = await preparedPair();
    const spec = await readFile(specPath(a.uid), 'utf8');
    await mkfifo(specPath(a.uid));
    const { s, report } = await start();
    expect(report.restored).toEqual([a.uid]);
    expect(await readFile(specPath(a.uid), 'utf8')).toBe(spec);

    await mkfifo(specPath(a.uid));
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    expect((await lstat(specPath(a.uid))).isFile()).toBe(true);
    expect(await readFile(specPath(a.uid), 'utf8')).toBe(spec);
  });

  it('a symlink at checkpoint.json or at a spec is never followed: set aside or replaced, its target untouched', { timeout: BOUND_MS }, async () => {
    const { a, b } = await preparedPair();
    const spec = await readFile(specPath(a.uid), 'utf8');
    await mkdir(join(dir, 'elsewhere'));
    const bait = join(dir, 'elsewhere', 'fifo'); // following the link would block on it
    execFileSync('mkfifo', [bait]);
    await link(bait, checkpointPath());
    await link('/etc/passwd', specPath(a.uid));
    const passwd = await readFile('/etc/passwd', 'utf8');

    const { loaded, report } = await start();
    expect(loaded.error?.message).toContain('a symbolic link (not followed) is at the path');
    const [aside] = await setAside();
    expect((await lstat(aside!)).isSymbolicLink()).toBe(true); // the link itself was moved, not its target
    expect((await lstat(bait)).isFIFO()).toBe(true);
    expect([...(report.rebuilt ?? [])].sort()).toEqual([a.uid, b.uid].sort()); // every claim held here
    expect((await lstat(specPath(a.uid))).isFile()).toBe(true);
    expect(await readFile(specPath(a.uid), 'utf8')).toBe(spec);
    expect(await readFile('/etc/passwd', 'utf8')).toBe(passwd);
  });

  it('a checkpoint over the size cap is refused on read (set aside) and never written', async () => {
    const store = new CheckpointStore({ path: checkpointPath(), readBootId: () => Promise.resolve('boot-1'), now: () => 1 });
    const a = newRef('a');
    const entry = { ...a, state: 'PrepareCompleted' as const, devices: [], pods: [], configs: [] };
    await store.save({ [a.uid]: entry });
    // A well-formed, checksummed document, padded past the cap: it would parse; it must not be read.
    const text = await readFile(checkpointPath(), 'utf8');
    await writeFile(checkpointPath(), text + ' '.repeat(CHECKPOINT_MAX_BYTES + 1 - Buffer.byteLength(text)));
    const loaded = await store.load();
    expect(loaded.claims).toEqual({});
    expect(loaded.error?.message).toContain(`it is ${CHECKPOINT_MAX_BYTES + 1} bytes, more than the ${CHECKPOINT_MAX_BYTES}-byte limit`);
    expect(loaded.movedTo).toBe(`${checkpointPath()}.corrupt-1`);

    await store.save({ [a.uid]: entry });
    const huge = { ...entry, devices: [{ requestNames: ['gpu'], poolName: NODE, deviceName: 'gpu-0', uuid: 'GPU-x', cdiDeviceIds: [] }], configs: [{ devices: ['gpu-0'], env: { X: 'x'.repeat(CHECKPOINT_MAX_BYTES) } }] };
    const err = await store.save({ [a.uid]: huge }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(new RegExp(`not written: it would be \\d+ bytes, more than the ${CHECKPOINT_MAX_BYTES}-byte limit`));
    expect(await readFile(checkpointPath(), 'utf8')).toBe(encodeCheckpoint({ [a.uid]: entry }, 'boot-1')); // unchanged
  });
});
