/**
 * Every session holding the state lock is bounded (issue 9, item 3; src/state/session.ts): a file call that
 * never returns (test/helpers/fs-faults.ts hangs it) makes the session fail at its deadline with an error
 * naming the claim, releases the lock, leaves the store stuck — `/readyz` answers 503 "state lock stuck since
 * ..." through the same wiring as src/main.ts — and fences the abandoned job, whose writes are refused if
 * it ever resumes; the next session that completes clears it. A batch queued behind a stuck session waits
 * no longer than the lock wait.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { stuckReason } from '../../src/state/session.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { faults } from '../helpers/fs-faults.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState, type ClaimStateOptions } from '../helpers/claims.js';
import { driverName, poolName } from '../helpers/names.js';
import { FakeBackend, FakeOwnership, INVENTORY } from '../helpers/telemetry.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

/** A logger keeping every line's message. */
function capturingLogger(): { readonly logger: Logger; readonly messages: () => string[] } {
  const out: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void out.push(line) });
  return { logger, messages: () => out.map((l) => (JSON.parse(l) as { msg: string }).msg) };
}

describe('state sessions are bounded by a deadline', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: MemoryClaimSource;
  let telemetry: Telemetry | undefined;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('gpulet-session-'));
    source = new MemoryClaimSource();
  });
  afterEach(async () => {
    faults.disarm();
    faults.release();
    await telemetry?.shutdown();
    telemetry = undefined;
    await cleanup();
  });

  const stateOn = (over: Partial<ClaimStateOptions> = {}): ClaimState =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: join(dir, 'state', 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'), ...over,
    });
  const specExists = (uid: string) => lstat(join(dir, 'cdi', `k8s.${DRIVER}-claim_${uid}.json`)).then(() => true, () => false);
  const fileClaims = async () => Object.keys((JSON.parse(await readFile(join(dir, 'state', 'checkpoint.json'), 'utf8')) as { claims: object }).claims);
  const readyz = async (t: Telemetry) => {
    const res = await fetch(`${t.url}/readyz`);
    return { status: res.status, body: await res.text() };
  };

  it('a session stuck in a file call fails at its deadline, releases the lock, reports not ready, and cannot write later', async () => {
    const log = capturingLogger();
    const s = stateOn({ sessionDeadlines: { batchMs: 2_000 }, logger: log.logger });
    await s.store.init();
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }]));
    expect((await s.preparer.prepare([a])).get(a.uid)?.error).toBeUndefined();
    // The wiring of src/main.ts: /readyz asks the claim store whether a session is stuck.
    telemetry = await startTelemetry({
      backend: new FakeBackend(), ownership: new FakeOwnership(), health: new HealthTracker(INVENTORY), nodeName: NODE,
      serviceVersion: '0.0.0', sampleIntervalMs: 60_000, metricsHost: '127.0.0.1', metricsPort: 0, dcgmCompat: false,
      driverName: driverName(DRIVER), poolName: poolName(NODE), logger: silentLogger(), notReady: () => stuckReason(s.store.stuck()),
    });
    telemetry.setReady(true);
    expect((await readyz(telemetry)).status).toBe(200);

    faults.arm({ op: 'stat', nth: 1, hang: true }); // the session's lstat of the checkpoint (its re-read) never returns
    const out = await s.preparer.prepare([b]);
    expect(faults.fired?.path).toBe(join(dir, 'state', 'checkpoint.json'));
    expect(out.get(b.uid)?.error).toContain(`claim ml/b (uid ${b.uid}): a session of the claim state did not finish within 2000 ms`);
    expect(out.get(b.uid)?.error).toContain('retry');
    expect(s.store.stuck()).toBeDefined();
    const stuck = await readyz(telemetry);
    expect(stuck.status).toBe(503);
    expect(stuck.body).toMatch(/^not ready: state lock stuck since \d{4}-\d\d-\d\dT[\d:.]+Z: a session of the claim state did not finish/);

    // The lock was released: another instance on the state dir takes it at once.
    const other = stateOn({ lockTimings: { acquireTimeoutMs: 500 } });
    expect(await other.store.locked(() => Promise.resolve('ran'))).toBe('ran');

    // The abandoned job resumes: it gets as far as the API server, but none of its writes land.
    faults.disarm();
    const gets = source.gets;
    faults.release();
    await vi.waitFor(() => expect(log.messages()).toContain('an abandoned state session ended (its writes were refused)'), { timeout: 20_000 });
    expect(source.gets).toBe(gets + 1);
    expect(await fileClaims()).toEqual([a.uid]);
    expect(await specExists(b.uid)).toBe(false);

    // The next session completes: not stuck any more.
    expect((await s.preparer.prepare([b])).get(b.uid)?.error).toBeUndefined();
    expect(s.store.stuck()).toBeUndefined();
    expect((await readyz(telemetry)).status).toBe(200);
    expect((await fileClaims()).sort()).toEqual([a.uid, b.uid].sort());
  });

  it('a batch queued behind a stuck session answers within the lock wait', async () => {
    const s = stateOn({ sessionDeadlines: { batchMs: 60_000 }, lockTimings: { acquireTimeoutMs: 200 } });
    await s.store.init();
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }]));
    faults.arm({ op: 'open', nth: 1, hang: true }); // the session's re-read opens the checkpoint: never returns
    const first = s.preparer.prepare([a]);
    await vi.waitFor(() => expect(faults.fired?.path).toBe(join(dir, 'state', 'checkpoint.json')), { timeout: 20_000 });
    const second = await s.preparer.prepare([b]);
    expect(second.get(b.uid)?.error).toContain(`claim ml/b (uid ${b.uid}): another session of this gpulet has held the state lock`);
    faults.disarm();
    faults.release();
    expect((await first).get(a.uid)?.error).toBeUndefined(); // released in time: it completes normally
    expect((await s.preparer.prepare([b])).get(b.uid)?.error).toBeUndefined();
  });
});
