/**
 * Start-up stays responsive (issue 9 item 8): a shutdown signal during the start-up reconciliation of a large
 * checkpoint (50,000 entries, generated) stops every per-claim step — rollback, reboot check, restore — and the
 * rebuild between claims and API pages, with the step in flight finished, and leaves a checkpoint that loads
 * whole. The rebuild reads the API server page by page and asks for page N+1 only after page N's claims of
 * ours were prepared again, never holding other claims beyond the page at hand. The periodic clean-up's
 * `stop()` ends a round between two claims. Counted, never timed: the number of claims each step processed,
 * the pages the source was asked for.
 */
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StartupAbortedError } from '../../src/errors.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { allocatableDevices } from '../../src/model/devices.js';
import type { ClaimRef } from '../../src/model/types.js';
import { decodeCheckpoint, droppedEntries, encodeCheckpoint, type CheckpointClaim, type ClaimState } from '../../src/state/checkpoint.js';
import { claimFromApi, claimsFromApi, type ApiClaim, type ClaimList, type ClaimSource, type RawResourceClaim } from '../../src/state/claim-source.js';
import { initAndReconcile, startClaimCleanup, type ReconcileRecovery } from '../../src/state/reconcile.js';
import { waitFor } from '../helpers/wait.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, NODE, tempDir, type ClaimState as State } from '../helpers/claims.js';
import { claimRef } from '../helpers/names.js';

const ENTRIES = 50_000;
const POD = [{ resource: 'pods', name: 'p', uid: '5a4e3f2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b' }];
const uidOf = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const refOf = (i: number): ClaimRef => claimRef({ namespace: 'ml', name: `c-${i}`, uid: uidOf(i) });

/** A source answering every GET with a claim still allocated and reserved, and listing `pages` lazily, logging each step. */
class FakeSource implements ClaimSource {
  gets = 0;
  readonly events: string[] = [];
  closed = false;
  constructor(private readonly pages: readonly (readonly RawResourceClaim[])[] = [], private readonly onPage?: (k: number) => void) {}
  get(namespace: string, name: string): Promise<ApiClaim> {
    this.gets++;
    const i = Number(name.slice('c-'.length));
    return Promise.resolve(claimFromApi(allocatedClaim({ namespace, name, uid: uidOf(i) }, [{ device: 'gpu-0' }], { reservedFor: POD })));
  }
  async *listPages(): AsyncGenerator<ClaimList> {
    try {
      for (const [k, page] of this.pages.entries()) {
        await Promise.resolve();
        this.events.push(`page ${k}`);
        this.onPage?.(k);
        yield claimsFromApi(page);
      }
    } finally {
      this.closed = true;
    }
  }
}

describe('start-up reconciliation under a shutdown signal', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    await mkdir(join(dir, 'state'));
  });
  afterEach(() => cleanup());

  const state = (source: ClaimSource, bootId = 'boot-1'): State =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: checkpointPath(), logger: silentLogger(), readBootId: () => Promise.resolve(bootId),
    });

  /** A checkpoint of `ENTRIES` claims, each on a full GPU, as prepare records them. */
  const writeCheckpoint = async (claimState: ClaimState, bootId: string, entries = ENTRIES) => {
    const gpus = allocatableDevices(inventory).filter((d) => d.kind === 'gpu');
    const claims: Record<string, CheckpointClaim> = {};
    for (let i = 0; i < entries; i++) {
      const ref = refOf(i);
      const d = gpus[i % gpus.length]!;
      claims[ref.uid] = {
        ...ref, state: claimState, pods: [], configs: [],
        devices: [{ requestNames: ['gpu'], poolName: NODE, deviceName: d.name, uuid: d.uuid, cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-${d.name}`] }],
      };
    }
    await writeFile(checkpointPath(), encodeCheckpoint(claims, bootId));
  };

  /** `m.recovery`, counting each step's calls and aborting `controller` when `step` has run `n` times (the step itself finishes). */
  const counting = (m: State, controller: AbortController, step: 'drop' | 'restoreSpec' | 'adopt', n: number) => {
    const counts = { drop: 0, restoreSpec: 0, adopt: 0 };
    const tick = (s: typeof step) => {
      counts[s]++;
      if (s === step && counts[s] === n) controller.abort();
    };
    const r = m.recovery;
    const recovery: ReconcileRecovery = {
      driverName: r.driverName,
      poolName: r.poolName,
      drop: async (ref) => (await r.drop(ref).finally(() => tick('drop'))),
      restoreSpec: async (uid) => (await r.restoreSpec(uid).finally(() => tick('restoreSpec'))),
      adopt: async (claim) => (await r.adopt(claim).finally(() => tick('adopt'))),
      sweep: (held) => r.sweep(held),
      unaccountedSpecs: () => r.unaccountedSpecs(),
      removeTempFiles: () => r.removeTempFiles(),
    };
    return { counts, recovery };
  };

  /** The checkpoint on disk, decoded whole: every entry kept. */
  const loadable = async () => {
    const { claims } = decodeCheckpoint(await readFile(checkpointPath(), 'utf8'));
    expect(droppedEntries(claims)).toEqual([]);
    return claims;
  };

  it(`stops restoring ${ENTRIES} lost CDI specs at the signal; every spec written is whole, the checkpoint loads`, async () => {
    await writeCheckpoint('PrepareCompleted', 'boot-1');
    const source = new FakeSource();
    const m = state(source);
    const controller = new AbortController();
    const { counts, recovery } = counting(m, controller, 'restoreSpec', 20);
    const run = initAndReconcile({ store: m.store, recovery, source, logger: silentLogger(), signal: controller.signal });
    await expect(run).rejects.toBeInstanceOf(StartupAbortedError);
    expect(counts.restoreSpec).toBe(20); // the one in flight finished, no other began
    const specs = await readdir(join(dir, 'cdi'));
    expect(specs.filter((f) => f.endsWith('.json'))).toHaveLength(20);
    for (const f of specs) expect((JSON.parse(await readFile(join(dir, 'cdi', f), 'utf8')) as { devices: unknown[] }).devices).toHaveLength(1);
    expect(Object.keys(await loadable())).toHaveLength(ENTRIES);
    // The state lock was released: the next start can take it.
    await (await state(source).store.stateLock.acquire()).release();
  });

  it(`stops rolling back ${ENTRIES} half-finished prepares at the signal, each rollback saved whole`, async () => {
    await writeCheckpoint('PrepareStarted', 'boot-1');
    const source = new FakeSource();
    const m = state(source);
    const controller = new AbortController();
    const { counts, recovery } = counting(m, controller, 'drop', 2);
    await expect(initAndReconcile({ store: m.store, recovery, source, logger: silentLogger(), signal: controller.signal })).rejects.toBeInstanceOf(StartupAbortedError);
    expect(counts.drop).toBe(2);
    expect(counts.restoreSpec).toBe(0);
    const claims = await loadable();
    expect(Object.keys(claims)).toHaveLength(ENTRIES - 2);
    expect(Object.values(claims).every((c) => c.state === 'PrepareStarted')).toBe(true);
  });

  it(`stops the after-reboot check of ${ENTRIES} claims at the signal: no more API calls`, async () => {
    await writeCheckpoint('PrepareCompleted', 'boot-0');
    const controller = new AbortController();
    const source = new FakeSource();
    const get = source.get.bind(source);
    source.get = (namespace, name) => get(namespace, name).finally(() => source.gets === 30 && controller.abort());
    const m = state(source, 'boot-1');
    await expect(initAndReconcile({ store: m.store, recovery: m.recovery, source, logger: silentLogger(), signal: controller.signal })).rejects.toBeInstanceOf(StartupAbortedError);
    expect(source.gets).toBe(30);
    await expect(readdir(join(dir, 'cdi'))).rejects.toThrow(/ENOENT/); // the restore step never began
    expect(Object.keys(await loadable())).toHaveLength(ENTRIES);
  });

  it('ends a periodic clean-up round in progress on stop(), between two claims', async () => {
    await writeCheckpoint('PrepareCompleted', 'boot-1', 1000);
    const source = new FakeSource();
    const m = state(source);
    await m.store.init();
    let stopping: Promise<void> | undefined;
    const get = source.get.bind(source);
    source.get = (namespace, name) => get(namespace, name).finally(() => {
      if (source.gets === 3) stopping = cleanup.stop();
    });
    const cleanup = startClaimCleanup({ store: m.store, recovery: m.recovery, source, periodMs: 1, logger: silentLogger() });
    await waitFor(() => stopping !== undefined, { what: 'stop() called by the third GET' });
    await stopping;
    expect(source.gets).toBe(3); // the round ended after the claim in flight, not after 1000
    expect(Object.keys(m.store.entries())).toHaveLength(1000);
  });

  describe('the rebuild, page by page', () => {
    const PAGES = 40;
    const PER_PAGE = 250;
    /** Pages of claims: mostly other nodes' and unreserved ones, and one of ours every fourth page. */
    const pages = (): RawResourceClaim[][] =>
      Array.from({ length: PAGES }, (_, k) =>
        Array.from({ length: PER_PAGE }, (_x, j) => {
          const i = k * PER_PAGE + j;
          const ours = j === 7 && k % 4 === 0;
          return allocatedClaim(refOf(i), [{ device: `gpu-${i % 6}`, ...(ours ? {} : { pool: j % 2 === 0 ? 'node-b' : NODE }) }], {
            reservedFor: ours || j % 2 === 0 ? POD : [],
          });
        }));
    const corrupt = () => writeFile(checkpointPath(), 'not json');

    it('asks for page N+1 only after page N was processed, and prepares only our claims', async () => {
      await corrupt();
      const source = new FakeSource(pages());
      const m = state(source);
      const recovery: ReconcileRecovery = {
        driverName: m.recovery.driverName, poolName: m.recovery.poolName, drop: (r) => m.recovery.drop(r), restoreSpec: (u) => m.recovery.restoreSpec(u),
        sweep: (held) => m.recovery.sweep(held), unaccountedSpecs: () => m.recovery.unaccountedSpecs(), removeTempFiles: () => m.recovery.removeTempFiles(),
        adopt: (claim) => {
          source.events.push(`adopt ${claim.metadata.name}`);
          return m.recovery.adopt(claim);
        },
      };
      const { report } = await initAndReconcile({ store: m.store, recovery, source, logger: silentLogger() });
      const ours = Array.from({ length: PAGES }, (_, k) => k).filter((k) => k % 4 === 0).map((k) => k * PER_PAGE + 7);
      expect(report.rebuilt).toEqual(ours.map(uidOf));
      expect(m.store.needsRebuild).toBe(false);
      // Interleaved: each page's claim of ours is prepared before the next page is asked for; no other claim is.
      const expected = Array.from({ length: PAGES }, (_, k) => [`page ${k}`, ...(k % 4 === 0 ? [`adopt c-${k * PER_PAGE + 7}`] : [])]).flat();
      expect(source.events).toEqual(expected);
    });

    it('stops between pages at the signal: no further page is asked for, the rebuild stays due', async () => {
      await corrupt();
      const controller = new AbortController();
      const source = new FakeSource(pages(), (k) => k === 9 && controller.abort());
      const m = state(source);
      await expect(initAndReconcile({ store: m.store, recovery: m.recovery, source, logger: silentLogger(), signal: controller.signal })).rejects.toBeInstanceOf(StartupAbortedError);
      expect(source.events.filter((e) => e.startsWith('page '))).toHaveLength(10);
      expect(source.closed).toBe(true); // the iteration was ended, not left hanging
      expect(m.store.needsRebuild).toBe(true);
      // What was prepared stays, whole: the claims of ours on pages 0, 4 and 8.
      const claims = await loadable();
      expect(Object.keys(claims).sort()).toEqual([0, 4, 8].map((k) => uidOf(k * PER_PAGE + 7)).sort());
    });
  });
});
