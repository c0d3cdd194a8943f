/**
 * What an I/O error looks like to the kubelet and the operator (issue 9, item 2), errno injected through
 * test/helpers/fs-faults.ts: the probe's attack — EMFILE on the checkpoint during an unprepare — answers
 * each claim an error naming the claim, the file, the errno and "retryable", and changes nothing on disk;
 * a failed directory fsync after a good rename is reported as such; start-up retries an unreadable
 * checkpoint and otherwise fails, never starting empty.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { StateIoError } from '../../src/state/plain-file.js';
import { initAndReconcile } from '../../src/state/reconcile.js';
import { faults } from '../helpers/fs-faults.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState } from '../helpers/claims.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

describe('I/O errors of the claim state', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: MemoryClaimSource;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('gpulet-ioerr-'));
    source = new MemoryClaimSource();
  });
  afterEach(async () => {
    faults.disarm();
    await cleanup();
  });

  const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
  const specPath = (uid: string) => join(dir, 'cdi', `k8s.${DRIVER}-claim_${uid}.json`);
  const stateOf = (): ClaimState =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'),
    });
  const snapshot = async () => ({ checkpoint: await readFile(checkpointPath(), 'utf8'), state: (await readdir(join(dir, 'state'))).sort(), cdi: (await readdir(join(dir, 'cdi'))).sort() });
  const preparedTwo = async () => {
    const s = stateOf();
    await s.store.init();
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }]));
    const out = await s.preparer.prepare([a, b]);
    expect([out.get(a.uid)?.error, out.get(b.uid)?.error]).toEqual([undefined, undefined]);
    return { s, a, b };
  };

  it('EMFILE opening the checkpoint in an unprepare batch: every claim answers it, retryable; nothing on disk changes', async () => {
    const { s, a, b } = await preparedTwo();
    // Another instance (a rolling update) writes the checkpoint since: the session's re-read opens the new file.
    const other = stateOf();
    await other.store.init();
    await other.store.persist();
    await other.store.close();
    const before = await snapshot();
    faults.arm({ op: 'open', nth: 1, errno: 'EMFILE' }); // the session's re-read of the checkpoint
    const out = await s.preparer.unprepare([a, b]);
    faults.disarm();
    for (const ref of [a, b]) {
      const error = out.get(ref.uid)?.error ?? '';
      expect(error).toContain(`claim ml/${ref.name} (uid ${ref.uid}): checkpoint ${checkpointPath()}: cannot open: EMFILE`);
      expect(error).toContain('an I/O error, not damage to the file: nothing was changed; retryable');
    }
    expect(await snapshot()).toEqual(before); // no set-aside, no spec removed, checkpoint byte for byte
    // The kubelet's retry succeeds.
    const retried = await s.preparer.unprepare([a, b]);
    expect([retried.get(a.uid), retried.get(b.uid)]).toEqual([{}, {}]);
  });

  it('a failed directory fsync after the spec\'s rename fails the claim saying so; the retry prepares it', async () => {
    const s = stateOf();
    await s.store.init();
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    // the fsync of the spec's directory (a fresh prepare's fsyncs run partly side by side: named by path)
    faults.arm({ op: 'fsync', path: join(dir, 'cdi'), nth: 1, errno: 'EIO' });
    const out = await s.preparer.prepare([a]);
    faults.disarm();
    const error = out.get(a.uid)?.error ?? '';
    expect(error).toContain(`claim ml/a (uid ${a.uid}): CDI spec ${specPath(a.uid)} written but the directory ${join(dir, 'cdi')} could not be synced: EIO`);
    expect(error).toContain('the change may not survive a crash');
    expect(error).toContain('(EIO: the claim was rolled back; retryable, the kubelet retries)');
    expect(await lstat(specPath(a.uid)).then(() => true, () => false)).toBe(false);
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
  });

  it('start-up retries a checkpoint it cannot read and never starts empty on it', async () => {
    const { a } = await preparedTwo();
    const before = await snapshot();
    faults.arm({ op: 'read', nth: 1, errno: 'EIO' });
    const once = stateOf();
    const failed = await initAndReconcile({ store: once.store, recovery: once.recovery, source, logger: silentLogger(), lockAttempts: 1 }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(StateIoError);
    expect((failed as StateIoError).message).toContain(`checkpoint ${checkpointPath()}: cannot read: EIO`);
    expect(await snapshot()).toEqual(before);

    faults.arm({ op: 'read', nth: 1, errno: 'EIO' }); // the first attempt fails, the second (1 s later) reads it
    const s = stateOf();
    const { loaded, report } = await initAndReconcile({ store: s.store, recovery: s.recovery, source, logger: silentLogger(), lockAttempts: 2 });
    expect(faults.fired).toBeDefined();
    expect(loaded.error).toBeUndefined();
    expect(report.errors).toEqual([]);
    expect(Object.keys(s.store.entries())).toContain(a.uid);
  });
});
