/**
 * Startup reconciliation, rebuild and clean-up rounds over real files (temp dirs), the mock dgx-h100
 * inventory and an in-memory ClaimSource that answers like the API server (404 as ApiError 404, outages as
 * ApiError without status). The specs expected are the ones prepare itself writes (read back from disk
 * before the damage), not a re-derivation.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import type { Inventory } from '../../src/gpu/types.js';
import { pino } from 'pino';
import { silentLogger, type Logger } from '../../src/log.js';
import type { ClaimRef } from '../../src/model/types.js';
import { CheckpointStore } from '../../src/state/checkpoint-file.js';
import type { ApiClaim, ClaimList } from '../../src/state/claim-source.js';
import { cleanupOnce, reconcileClaims } from '../../src/state/reconcile.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimState } from '../helpers/claims.js';

const POD = [{ resource: 'pods', name: 'p', uid: '5a4e3f2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b' }];
const specName = (uid: string) => `k8s.${DRIVER}-claim_${uid}.json`;

/** A logger keeping warnings and errors, parsed. */
function capturingLogger(): { readonly logger: Logger; readonly lines: () => { level: number; msg: string }[] } {
  const out: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void out.push(line) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string }) };
}

/** MemoryClaimSource that can also list, and fail on demand like an unreachable server. */
class ListingSource extends MemoryClaimSource {
  down = false;
  attempts = 0;
  override get(namespace: string, name: string): Promise<ApiClaim> {
    this.attempts++;
    if (this.down) return Promise.reject(new ApiError('API server unreachable (test outage)'));
    return super.get(namespace, name);
  }
  async *listPages(): AsyncGenerator<ClaimList> {
    await Promise.resolve();
    if (this.down) throw new ApiError('API server unreachable (test outage)');
    yield this.listAll();
  }
  delete(ref: { namespace: string; name: string }): void {
    this.claims.delete(`${ref.namespace}/${ref.name}`);
  }
}

describe('reconcileClaims / rebuild / cleanupOnce', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: ListingSource;
  let cdiDir: string;
  let checkpointPath: string;
  let bootId: string;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    source = new ListingSource();
    cdiDir = join(dir, 'cdi');
    checkpointPath = join(dir, 'state', 'checkpoint.json');
    bootId = 'boot-1';
  });
  afterEach(() => cleanup());

  const manager = () =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir, checkpointPath,
      logger: silentLogger(), readBootId: () => Promise.resolve(bootId),
    });
  /** A fresh manager as after a restart: init, then reconcile. */
  const restart = async () => {
    const m = manager();
    const loaded = await m.store.init();
    const report = await reconcileClaims({ store: m.store, recovery: m.recovery, source, loaded, logger: silentLogger() });
    return { m, report };
  };
  const file = async () => JSON.parse(await readFile(checkpointPath, 'utf8')) as { bootId: string; claims: Record<string, { state: string }> };
  const specs = async () => (await readdir(cdiDir).catch(() => [])).sort();
  const prepareAll = async (m: ClaimState, refs: ClaimRef[]) => {
    const out = await m.preparer.prepare(refs);
    for (const r of refs) expect(out.get(r.uid)?.error).toBeUndefined();
  };

  it('rolls back a PrepareStarted entry and its spec (a crash mid-prepare); the retry prepares afresh', async () => {
    const ref = newRef('mid');
    source.put(allocatedClaim(ref, [{ device: 'gpu-2' }], { reservedFor: POD }));
    await prepareAll(await (async () => { const m = manager(); await m.store.init(); return m; })(), [ref]);
    // turn the entry back into PrepareStarted, as a kill between the spec write and the second save leaves it
    const store = new CheckpointStore({ path: checkpointPath, readBootId: () => Promise.resolve(bootId) });
    const { claims } = await store.load();
    await store.save({ [ref.uid]: { ...claims[ref.uid]!, state: 'PrepareStarted' } });
    const { m, report } = await restart();
    expect(report.rolledBack).toEqual([ref.uid]);
    expect(await specs()).toEqual([]);
    expect((await file()).claims).toEqual({});
    expect((await m.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    expect(await specs()).toEqual([specName(ref.uid)]);
  });

  it('restores a missing spec, rewrites a stale one, removes temp files, leaves foreign files; an orphan waits for the API server', async () => {
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }, { device: 'gpu-7-mig-1g10gb-19-2' }], {
      reservedFor: POD,
      config: [{ opaque: { driver: DRIVER, parameters: { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig', env: { MY_VAR: 'x' } } } }],
    }));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }], { reservedFor: POD }));
    const first = manager();
    await first.store.init();
    await prepareAll(first, [a, b]);
    const specA = await readFile(join(cdiDir, specName(a.uid)), 'utf8');
    const specB = await readFile(join(cdiDir, specName(b.uid)), 'utf8');
    expect(specA).toContain('MY_VAR=x'); // the opaque config's env is part of what must come back

    await rm(join(cdiDir, specName(a.uid)));
    await writeFile(join(cdiDir, specName(b.uid)), JSON.stringify({ ...JSON.parse(specB), devices: [] }));
    const orphan = '0d9e3c1a-5b7f-4c2e-8a6d-1f2e3d4c5b6a';
    await writeFile(join(cdiDir, specName(orphan)), specB);
    await writeFile(join(cdiDir, `.${specName(orphan)}.tmp-1-abcd`), 'half');
    await writeFile(join(dir, 'state', '.checkpoint.json.tmp-1-abcd'), 'half');
    await writeFile(join(cdiDir, 'nvidia.com-gpu.json'), '{}'); // another vendor's: never touched
    source.down = true; // restoring needs no API server; removing the orphan does

    const { report, m } = await restart();
    expect([...report.restored].sort()).toEqual([a.uid, b.uid].sort());
    expect(report.orphans).toEqual([]);
    expect(m.store.needsRebuild).toBe(true); // a spec without an entry: only the API server can say it is free
    expect(await readFile(join(cdiDir, specName(a.uid)), 'utf8')).toBe(specA);
    expect(await readFile(join(cdiDir, specName(b.uid)), 'utf8')).toBe(specB);
    expect(await specs()).toEqual([specName(a.uid), specName(b.uid), specName(orphan), 'nvidia.com-gpu.json'].sort());
    expect(await readdir(join(dir, 'state'))).toEqual(['checkpoint.json']);

    source.down = false; // the next round lists: no claim holds the orphan's UID, so its spec goes
    const round = await cleanupOnce({ store: m.store, recovery: m.recovery, source, logger: silentLogger() });
    expect(round.apiError).toBeUndefined();
    expect(m.store.needsRebuild).toBe(false);
    expect(await specs()).toEqual([specName(a.uid), specName(b.uid), 'nvidia.com-gpu.json'].sort());
  });

  it('after a reboot keeps claims still held, drops the rest, keeps what it cannot check, records the new boot ID', async () => {
    const refs = { live: newRef('live'), gone: newRef('gone'), recreated: newRef('recreated'), unreserved: newRef('unreserved'), odd: newRef('odd') };
    for (const r of Object.values(refs)) source.put(allocatedClaim(r, [{ device: `gpu-${Object.values(refs).indexOf(r)}` }], { reservedFor: POD }));
    const first = manager();
    await first.store.init();
    await prepareAll(first, Object.values(refs));
    expect((await file()).bootId).toBe('boot-1');

    await rm(cdiDir, { recursive: true }); // tmpfs emptied by the reboot
    bootId = 'boot-2';
    source.delete(refs.gone);
    source.put(allocatedClaim({ ...refs.recreated, uid: '11111111-2222-4333-8444-555555555555' }, [{ device: 'gpu-2' }], { reservedFor: POD }));
    source.put(allocatedClaim(refs.unreserved, [{ device: 'gpu-3' }], { reservedFor: [] }));
    // Re-created under the same name with metadata the entry check refuses (claimFromApi): not ours either.
    source.put(allocatedClaim({ ...refs.odd, uid: 'not-a-uuid' }, [{ device: 'gpu-4' }], { reservedFor: POD }));

    const { m, report } = await restart();
    expect(report.rebooted).toBe(true);
    expect([...report.dropped].sort()).toEqual([refs.gone.uid, refs.recreated.uid, refs.unreserved.uid, refs.odd.uid].sort());
    expect(Object.keys(m.store.entries())).toEqual([refs.live.uid]);
    expect(await specs()).toEqual([specName(refs.live.uid)]);
    const saved = await file();
    expect(saved.bootId).toBe('boot-2');
    expect(Object.keys(saved.claims)).toEqual([refs.live.uid]);

    // Another reboot while the API server is down: nothing can be checked, so the claim is kept with its spec.
    await rm(cdiDir, { recursive: true });
    bootId = 'boot-3';
    source.down = true;
    const again = await restart();
    expect(again.report.dropped).toEqual([]);
    expect(await specs()).toEqual([specName(refs.live.uid)]);
    expect((await file()).bootId).toBe('boot-3');
  });

  it('rebuilds a lost checkpoint from the API server: allocated to us and reserved only; retries while the API is down', async () => {
    const mine = newRef('mine');
    const idle = newRef('idle');
    const elsewhere = newRef('elsewhere');
    source.put(allocatedClaim(mine, [{ device: 'gpu-4' }], { reservedFor: POD }));
    source.put(allocatedClaim(idle, [{ device: 'gpu-5' }]));
    source.put(allocatedClaim(elsewhere, [{ device: 'gpu-4', pool: 'node-b' }], { reservedFor: POD }));
    const first = manager();
    await first.store.init();
    await prepareAll(first, [mine, idle]);
    const specMine = await readFile(join(cdiDir, specName(mine.uid)), 'utf8');
    await writeFile(checkpointPath, (await readFile(checkpointPath, 'utf8')).slice(0, 100)); // truncated

    source.down = true;
    const down = await restart();
    expect(down.report.rebuilt).toBeUndefined();
    expect(down.m.store.needsRebuild).toBe(true);
    expect(down.report.errors.join('\n')).toContain('unreachable');
    expect(await specs()).toEqual([specName(mine.uid), specName(idle.uid)].sort()); // left alone while unsure
    expect((await readdir(join(dir, 'state'))).some((n) => n.startsWith('checkpoint.json.corrupt-'))).toBe(true);

    // Listed claims allocated to us and reserved, whose metadata the entry check refuses (claimFromApi): skipped
    // with a warning naming each, and the rebuild goes on.
    for (const uid of ['constructor', '__proto__', 'not-a-uuid']) {
      source.put(allocatedClaim({ namespace: 'ml', name: `odd-${uid.length}`, uid }, [{ device: 'gpu-3' }], { reservedFor: POD }));
    }
    source.down = false;
    const log = capturingLogger();
    await cleanupOnce({ store: down.m.store, recovery: down.m.recovery, source, logger: log.logger }); // the next round retries
    expect(down.m.store.needsRebuild).toBe(false);
    const skipped = log.lines().filter((l) => l.msg.startsWith('rebuild: skipped a listed claim: '));
    expect(skipped.map((l) => l.level)).toEqual([40, 40, 40]); // warn
    for (const uid of ['constructor', '__proto__', 'not-a-uuid']) {
      expect(skipped.some((l) => l.msg.includes(`resourceclaim "ml/odd-${uid.length}" (uid "${uid}")`) && l.msg.includes('metadata.uid is not a claim UID'))).toBe(true);
    }
    expect(Object.keys((await file()).claims)).toEqual([mine.uid]);
    expect((await file()).claims[mine.uid]?.state).toBe('PrepareCompleted');
    expect(await specs()).toEqual([specName(mine.uid)]); // idle's spec was an orphan
    expect(await readFile(join(cdiDir, specName(mine.uid)), 'utf8')).toBe(specMine);
  });

  it('cleanupOnce unprepares claims the API server no longer has and keeps all on an API error', async () => {
    const keep = newRef('keep');
    const gone = newRef('gone');
    const swapped = newRef('swapped');
    const odd = newRef('odd');
    for (const [i, r] of [keep, gone, swapped, odd].entries()) source.put(allocatedClaim(r, [{ device: `gpu-${i}` }], { reservedFor: POD }));
    const { m } = await restart();
    await prepareAll(m, [keep, gone, swapped, odd]);
    source.delete(gone);
    source.put(allocatedClaim({ ...swapped, uid: '11111111-2222-4333-8444-555555555555' }, [{ device: 'gpu-2' }]));
    source.put(allocatedClaim({ ...odd, uid: odd.uid.toUpperCase() }, [{ device: 'gpu-3' }])); // refused where it is read: not ours

    source.down = true;
    source.attempts = 0;
    const outage = await cleanupOnce({ store: m.store, recovery: m.recovery, source, logger: silentLogger() });
    expect(outage.dropped).toEqual([]);
    expect(outage.apiError).toContain('unreachable');
    expect(source.attempts).toBe(1); // the round stops at the first error: no burst against an ailing server
    expect(Object.keys(m.store.entries())).toHaveLength(4);

    source.down = false;
    const round = await cleanupOnce({ store: m.store, recovery: m.recovery, source, logger: silentLogger() });
    expect([...round.dropped].sort()).toEqual([gone.uid, swapped.uid, odd.uid].sort());
    expect(round.kept).toEqual([keep.uid]);
    expect(Object.keys((await file()).claims)).toEqual([keep.uid]);
    expect(await specs()).toEqual([specName(keep.uid)]);
  });

  it('a node with no claims and no checkpoint writes nothing at start-up', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    const { report } = await restart();
    expect(report).toMatchObject({ rebooted: false, rolledBack: [], dropped: [], restored: [], orphans: [], errors: [] });
    expect(await readdir(join(dir, 'state'))).toEqual([]);
  });
});
