/**
 * The claim state creates its directories once, not per write (src/state/atomic-file.ts `KnownDirs`): the CDI
 * spec dir, the checkpoint's dir and the lock's state dir are `mkdir -p`'d by the first write (or lock) and
 * not again while they stay; one removed (or replaced by a file) since is met by the next write or lock, which
 * creates it again, or fails naming it. The mock's stand-in device files are created once per writer. Calls are
 * counted through test/helpers/fs-faults.ts, which replaces src/state/fs.ts for this file.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CdiError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { CdiWriter } from '../../src/state/cdi-writer.js';
import type { CdiSpec } from '../../src/state/cdi.js';
import type { CheckpointClaim } from '../../src/state/checkpoint.js';
import { ClaimStore } from '../../src/state/claim-store.js';
import { faults } from '../helpers/fs-faults.js';
import { DRIVER, newRef, tempDir } from '../helpers/claims.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-dirs-'));
});
afterEach(async () => {
  faults.disarm();
  await cleanup();
});

const spec = (hostPaths: readonly string[] = []): CdiSpec => ({
  cdiVersion: '0.5.0',
  kind: `k8s.${DRIVER}/claim`,
  devices: [{ name: 'd', containerEdits: { deviceNodes: hostPaths.map((h, i) => ({ path: `/dev/x${i}`, hostPath: h })) } }],
});
/** Calls of `op` made by `run`. */
async function counted(op: 'mkdir' | 'open', run: () => Promise<unknown>): Promise<number> {
  faults.arm();
  await run();
  const n = faults.counts().get(op) ?? 0;
  faults.disarm();
  return n;
}
const entryOf = (name: string): CheckpointClaim => ({ ...newRef(name), state: 'PrepareCompleted', devices: [], pods: [], configs: [] });

describe('directories of the claim state', () => {
  it('the CDI spec dir: created by the first write, not again; created again after it was removed', async () => {
    const cdiDir = join(dir, 'cdi');
    const w = new CdiWriter(cdiDir, DRIVER);
    const [a, b, c] = [newRef('a').uid, newRef('b').uid, newRef('c').uid];
    expect(await counted('mkdir', () => w.write(a, spec()))).toBe(1);
    expect(await counted('mkdir', () => w.write(b, spec()))).toBe(0);
    await rm(cdiDir, { recursive: true });
    expect(await counted('mkdir', () => w.write(c, spec()))).toBe(1);
    expect(await readdir(cdiDir)).toEqual([`k8s.${DRIVER}-claim_${c}.json`]);
  });

  it('the CDI spec dir replaced by a file: the write fails naming the dir', async () => {
    const cdiDir = join(dir, 'cdi');
    const w = new CdiWriter(cdiDir, DRIVER);
    await w.write(newRef('a').uid, spec());
    await rm(cdiDir, { recursive: true });
    await writeFile(cdiDir, 'not a dir');
    const err = await w.write(newRef('b').uid, spec()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CdiError);
    expect((err as CdiError).message).toContain(`cannot create CDI spec dir ${cdiDir}`);
  });

  it("the checkpoint's dir and the lock's state dir: made once; removed between sessions, made again", async () => {
    const stateDir = join(dir, 'state');
    const store = new ClaimStore({ checkpointPath: join(stateDir, 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1') });
    try {
      await store.init();
      const x = entryOf('x');
      expect(await counted('mkdir', () => store.locked(() => store.commit(x.uid, x)))).toBe(1); // the checkpoint's dir (the lock's was made by init)
      const y = entryOf('y');
      expect(await counted('mkdir', () => store.locked(() => store.commit(y.uid, y)))).toBe(0);
      await rm(stateDir, { recursive: true });
      const z = entryOf('z');
      // The lock finds no state dir and makes it again (the one mkdir); the re-read finds no file while the image
      // records claims and writes it back into it, then the commit; all of it lands.
      expect(await counted('mkdir', () => store.locked(() => store.commit(z.uid, z)))).toBe(1);
      expect((await readdir(stateDir)).filter((n) => n === 'checkpoint.json')).toEqual(['checkpoint.json']);
      expect(Object.keys(store.entries()).sort()).toEqual([x.uid, y.uid, z.uid].sort());
    } finally {
      await store.close();
    }
  });

  it('the mock stand-ins: created by the first spec that names them, not opened again', async () => {
    const w = new CdiWriter(join(dir, 'cdi'), DRIVER);
    const paths = [join(dir, 'dev', 'nvidiactl'), join(dir, 'dev', 'nvidia0')];
    expect(await counted('open', () => w.createStandIns(spec(paths)))).toBe(2);
    expect(await readdir(join(dir, 'dev'))).toEqual(['nvidia0', 'nvidiactl']);
    expect(await counted('open', () => w.createStandIns(spec(paths)))).toBe(0);
    expect(await counted('open', () => w.createStandIns(spec([...paths, join(dir, 'dev', 'nvidia1')])))).toBe(1);
  });
});
