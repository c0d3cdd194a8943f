/**
 * The cross-process state lock (src/state/lock.ts, proper-lockfile) and its use by the claim state:
 * - mutual exclusion, and the "another gpulet instance holds <lock>; retry" error after a bounded wait;
 * - a live holder in another process keeps its lock past the stale timeout (it refreshes the mtime);
 * - a holder killed with SIGKILL (no exit handler runs) leaves a lock that is taken over, and only once its
 *   mtime is older than the stale timeout;
 * - a preparer batch that cannot take the lock answers a per-claim error naming the lock (never throws,
 *   writes nothing), and each batch re-reads the checkpoint another instance wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { StateLock, StateLockError, STATE_LOCK_TIMINGS, stateLockPath } from '../../src/state/lock.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir } from '../helpers/claims.js';
import { recordingLogger } from '../helpers/log.js';
import { REPO_ROOT as REPO } from '../helpers/repo.js';

const exists = (p: string) => access(p).then(() => true, () => false);

let dir: string;
let cleanup: () => Promise<void>;
const children: ChildProcess[] = [];
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('gpulet-lock-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
  await cleanup();
});

describe('StateLock', () => {
  it('production timings: stale timeout < acquisition wait < the kubelet 45 s Prepare deadline', () => {
    const t = STATE_LOCK_TIMINGS;
    expect(t.updateMs).toBeGreaterThanOrEqual(1000); // proper-lockfile's floor
    expect(t.updateMs).toBeLessThanOrEqual(t.staleMs / 2);
    expect(t.staleMs).toBeGreaterThanOrEqual(2000); // proper-lockfile's floor
    expect(t.acquireTimeoutMs).toBeGreaterThan(t.staleMs); // one wait outlasts a dead holder's lock
    expect(t.acquireTimeoutMs).toBeLessThan(45_000); // KUBELET_DEADLINES.prepare (docs/contracts.md §2)
  });

  it('is exclusive: a second holder waits, then gets a busy error naming the lock; free again after release', async () => {
    const path = stateLockPath(join(dir, 'state'));
    const a = new StateLock({ path, logger: silentLogger() });
    const bLog = recordingLogger();
    const b = new StateLock({ path, logger: bLog.logger });
    const held = await a.acquire();
    expect((await stat(path)).isDirectory()).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o700);
    const err = await b.acquire(300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockError);
    expect((err as StateLockError).busy).toBe(true);
    expect((err as StateLockError).message).toMatch(new RegExp(`another gpulet instance holds ${path} .*; retry$`));
    // A waiter gets it as soon as the holder releases: release only once it found the lock held and waits.
    const WAITING = 'the state lock is held by another instance; waiting';
    const waitsBefore = bLog.withMessage(WAITING).length;
    const waiting = b.acquire(30_000);
    await bLog.waitForMessage(WAITING, { count: waitsBefore + 1 });
    await held.release();
    const second = await waiting;
    expect(second.compromised).toBeUndefined();
    await second.release();
    expect(await exists(path)).toBe(false);
  });

  it('a state dir that cannot be created is an fs error, not "busy"', async () => {
    await writeFile(join(dir, 'file'), ''); // a file where the state dir's parent should be: ENOTDIR
    const err = await new StateLock({ path: stateLockPath(join(dir, 'file', 'state')), logger: silentLogger() }).acquire(100).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateLockError);
    expect((err as StateLockError).busy).toBe(false);
    expect((err as StateLockError).message).toContain('check that it is writable');
  });

  it('a live holder in another process keeps it past the stale timeout; killed with SIGKILL, it is taken over once stale', async () => {
    const path = stateLockPath(dir);
    const timings = { staleMs: 3_000, updateMs: 1_000 };
    const script = [
      `import { StateLock } from ${JSON.stringify(join(REPO, 'src/state/lock.ts'))};`,
      `import { silentLogger } from ${JSON.stringify(join(REPO, 'src/log.ts'))};`,
      `await new StateLock({ path: ${JSON.stringify(path)}, logger: silentLogger(), timings: ${JSON.stringify(timings)} }).acquire();`,
      "process.stdout.write('locked\\n');",
      'setInterval(() => undefined, 1000);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(child);
    await new Promise<void>((res, rej) => {
      child.stdout?.on('data', (b: Buffer) => b.toString().includes('locked') && res());
      child.on('exit', (code) => rej(new Error(`lock holder exited early (${code})`)));
    });
    const ours = new StateLock({ path, logger: silentLogger(), timings });

    // Alive: refreshed every second, so never stale even after waiting longer than the stale timeout.
    const live = await ours.acquire(timings.staleMs + 1_500).catch((e: unknown) => e);
    expect((live as StateLockError).busy).toBe(true);

    const exited = new Promise((res) => child.on('exit', res));
    process.kill(-child.pid!, 'SIGKILL'); // no exit handler: the lock dir stays behind
    await exited;
    const lastRefresh = (await stat(path)).mtimeMs;
    expect(await exists(path)).toBe(true);
    // Not yet stale right after the kill.
    const early = await ours.acquire(0).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(StateLockError);

    const held = await ours.acquire(timings.staleMs + 3_000);
    const takenAt = Date.now();
    expect(takenAt - lastRefresh).toBeGreaterThanOrEqual(timings.staleMs); // taken over only once stale
    expect(held.compromised).toBeUndefined();
    await held.release();
    expect(await exists(path)).toBe(false);
  }, 30_000);
});

describe('the claim state under the state lock', () => {
  let inventory: Inventory;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  const managerOn = (source: MemoryClaimSource) =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source,
      cdiDir: join(dir, 'cdi'), checkpointPath: join(dir, 'state', 'checkpoint.json'), logger: silentLogger(),
      readBootId: () => Promise.resolve('boot-1'), lockTimings: { acquireTimeoutMs: 300 },
    });

  it('a batch that cannot take the lock answers per-claim errors naming it and writes nothing', async () => {
    const source = new MemoryClaimSource();
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ request: 'gpu', device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ request: 'gpu', device: 'gpu-1' }]));
    const m = managerOn(source);
    await m.store.init();
    const lockPath = m.store.stateLock.path;
    const other = await new StateLock({ path: lockPath, logger: silentLogger() }).acquire();
    expect(lockPath).toBe(join(dir, 'state', 'claims.lock'));

    const out = await m.preparer.prepare([a, b, a]);
    expect([...out.keys()]).toEqual([a.uid, b.uid]);
    for (const ref of [a, b]) {
      // The wait named is what was left of the 300 ms budget when the lock was tried (in-process queueing first).
      const error = out.get(ref.uid)?.error ?? '';
      expect(error.replace(/\(waited \d+ ms\)/, '(waited N ms)')).toBe(`claim ml/${ref.name} (uid ${ref.uid}): another gpulet instance holds ${lockPath} (waited N ms); retry`);
      expect(Number(/waited (\d+) ms/.exec(error)?.[1])).toBeLessThanOrEqual(300);
    }
    expect((await m.preparer.unprepare([a])).get(a.uid)?.error).toContain(`another gpulet instance holds ${lockPath}`);
    expect(source.gets).toBe(0);
    expect(await exists(join(dir, 'state', 'checkpoint.json'))).toBe(false);

    await other.release();
    const retried = await m.preparer.prepare([a, b]);
    expect(retried.get(a.uid)?.error).toBeUndefined();
    expect(retried.get(b.uid)?.error).toBeUndefined();
  });

  it('each batch re-reads the checkpoint: two managers on one state dir keep each other\'s claims', async () => {
    const source = new MemoryClaimSource();
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ request: 'gpu', device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ request: 'gpu', device: 'gpu-1' }]));
    const m1 = managerOn(source);
    const m2 = managerOn(source);
    await m1.store.init();
    await m2.store.init(); // both loaded the (empty) checkpoint
    expect((await m1.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    expect((await m2.preparer.prepare([b])).get(b.uid)?.error).toBeUndefined(); // without the re-read m2 would drop a
    const file = JSON.parse(await readFile(join(dir, 'state', 'checkpoint.json'), 'utf8')) as { claims: Record<string, { state: string }> };
    expect(Object.keys(file.claims).sort()).toEqual([a.uid, b.uid].sort());
    // m1 unprepares m2's claim, m2's sweep (nothing held per the API server) keeps m1's spec.
    expect((await m1.preparer.unprepare([b])).get(b.uid)?.error).toBeUndefined();
    expect((await m2.recovery.sweep(new Set())).orphans).toEqual([]);
    expect(Object.keys(m2.store.entries())).toEqual([a.uid]);
  });
});
