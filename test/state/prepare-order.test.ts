/**
 * A fresh prepare writes its files' contents side by side, but what is visible and durable keeps the journal's
 * order (src/state/claim-ops.ts `prepareFresh`): the CDI spec appears at its path only once the checkpoint
 * durably says PrepareStarted (its directory synced), and the checkpoint says PrepareCompleted only once the
 * spec is durably in place; an unprepare drops the entry only once the spec's removal is durable. A failure
 * of a staged file leaves no temp file and no entry (or, for an unprepare, the entry and the spec) behind. The steps are
 * held (a hung fsync) or failed through test/helpers/fs-faults.ts, which replaces src/state/fs.ts for this file;
 * the files are inspected with the real node:fs.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { isAtomicTempName } from '../../src/state/atomic-file.js';
import { faults } from '../helpers/fs-faults.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState } from '../helpers/claims.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

let inventory: Inventory;
let dir: string;
let cleanup: () => Promise<void>;
let source: MemoryClaimSource;
let s: ClaimState;
beforeAll(async () => {
  inventory = await dgxInventory();
});
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-order-'));
  source = new MemoryClaimSource();
  s = claimState({
    driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
    checkpointPath: join(dir, 'state', 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'),
  });
  await s.store.init();
});
afterEach(async () => {
  faults.disarm();
  faults.release();
  await s.store.close();
  await cleanup();
});

const specName = (uid: string) => `k8s.${DRIVER}-claim_${uid}.json`;
/** The entry's state in the checkpoint on disk (undefined: none, or no file). */
const diskState = async (uid: string): Promise<string | undefined> => {
  const text = await readFile(join(dir, 'state', 'checkpoint.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as { claims: Record<string, { state: string } | undefined> }).claims[uid]?.state;
};
const names = (sub: string) => readdir(join(dir, sub)).catch(() => [] as string[]);
const temps = async () => [...(await names('cdi')), ...(await names('state'))].filter((n) => n.includes('.tmp-'));

describe('a fresh prepare', () => {
  it('puts the spec in place only after the PrepareStarted checkpoint is durable', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    faults.arm({ op: 'fsync', path: join(dir, 'state'), nth: 1, hang: true }); // PrepareStarted renamed, its dir not yet synced
    const out = s.preparer.prepare([a]);
    await vi.waitFor(() => expect(faults.fired).toBeDefined());
    expect(await diskState(a.uid)).toBe('PrepareStarted');
    const cdi = await names('cdi');
    expect(cdi).not.toContain(specName(a.uid));
    expect(cdi.every((n) => isAtomicTempName(n, specName(a.uid)))).toBe(true); // at most its staged temp file
    faults.disarm();
    faults.release();
    expect((await out).get(a.uid)?.error).toBeUndefined();
    expect(await names('cdi')).toEqual([specName(a.uid)]);
    expect(await diskState(a.uid)).toBe('PrepareCompleted');
    expect(await temps()).toEqual([]);
  });

  it('records PrepareCompleted only after the spec is durably in place', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    faults.arm({ op: 'fsync', path: join(dir, 'cdi'), nth: 1, hang: true }); // the spec renamed, its dir not yet synced
    const out = s.preparer.prepare([a]);
    await vi.waitFor(() => expect(faults.fired).toBeDefined());
    expect(await names('cdi')).toContain(specName(a.uid));
    expect(await diskState(a.uid)).toBe('PrepareStarted');
    faults.disarm();
    faults.release();
    expect((await out).get(a.uid)?.error).toBeUndefined();
    expect(await diskState(a.uid)).toBe('PrepareCompleted');
    expect(await temps()).toEqual([]);
  });

  it('rolls back and leaves no temp file when the spec cannot be written', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    faults.arm({ op: 'fsync', path: /\/cdi\/\.k8s\..*\.tmp-/, nth: 1, errno: 'ENOSPC' }); // the spec's temp file
    const error = (await s.preparer.prepare([a])).get(a.uid)?.error ?? '';
    expect(faults.fired).toBeDefined();
    expect(error).toContain(`cannot write CDI spec ${join(dir, 'cdi', specName(a.uid))}: ENOSPC`);
    expect(await names('cdi')).toEqual([]);
    expect(await diskState(a.uid)).toBeUndefined();
    expect(await temps()).toEqual([]);
  });

  it('rolls back and leaves no temp file when PrepareCompleted cannot be written', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    faults.arm({ op: 'write', path: /checkpoint\.json\.tmp-/, nth: 2, errno: 'ENOSPC' }); // 1: PrepareStarted, 2: PrepareCompleted
    const error = (await s.preparer.prepare([a])).get(a.uid)?.error ?? '';
    expect(faults.fired).toBeDefined();
    expect(error).toContain('ENOSPC');
    expect(error).toContain('the claim was rolled back');
    expect(await names('cdi')).toEqual([]);
    expect(await diskState(a.uid)).toBeUndefined();
    expect(await temps()).toEqual([]);
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined(); // the kubelet's retry
  });

  it('unprepare: drops the entry only after the spec\'s removal is durable', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    faults.arm({ op: 'fsync', path: join(dir, 'cdi'), nth: 1, hang: true }); // the spec unlinked, its dir not yet synced
    const out = s.preparer.unprepare([a]);
    await vi.waitFor(() => expect(faults.fired).toBeDefined());
    expect(await names('cdi')).toEqual([]);
    expect(await diskState(a.uid)).toBe('PrepareCompleted');
    faults.disarm();
    faults.release();
    expect((await out).get(a.uid)).toEqual({});
    expect(await diskState(a.uid)).toBeUndefined();
    expect(await temps()).toEqual([]);
  });

  it('unprepare: a spec that cannot be removed keeps the entry and leaves no temp file', async () => {
    const a = newRef('a');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    faults.arm({ op: 'unlink', nth: 1, errno: 'EACCES' });
    const error = (await s.preparer.unprepare([a])).get(a.uid)?.error ?? '';
    expect(error).toContain(`cannot remove CDI spec ${join(dir, 'cdi', specName(a.uid))}: EACCES`);
    expect(await names('cdi')).toEqual([specName(a.uid)]);
    expect(await diskState(a.uid)).toBe('PrepareCompleted');
    expect(await temps()).toEqual([]);
    expect(Object.keys(s.store.entries())).toEqual([a.uid]); // the image keeps it too: the kubelet's retry removes both
    faults.disarm();
    expect((await s.preparer.unprepare([a])).get(a.uid)).toEqual({});
    expect(await diskState(a.uid)).toBeUndefined();
  });
});
