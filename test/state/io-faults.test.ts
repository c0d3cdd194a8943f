/**
 * An I/O error never becomes data loss (issue 9, item 2). Every file operation the claim state performs in
 * prepare, unprepare, start-up reconciliation and a clean-up round is failed in turn — the N-th `open`,
 * `read`, `write`, `fsync`, `stat`, `rename`, `unlink`, `readdir`, `mkdir` — with EMFILE, ENOSPC, EIO and
 * EACCES (test/helpers/fs-faults.ts replaces src/state/fs.ts for this file). After each failure, and again
 * after a restart of the state from disk and a retry without faults, the files on disk must say:
 * - no claim was answered success unless its CDI spec and its PrepareCompleted checkpoint entry exist
 *   (unprepare: unless both are gone);
 * - no spec or entry was removed of a claim the API server still holds;
 * - the checkpoint was never set aside (`checkpoint.json.corrupt-*`) for an errno;
 * and after the retry every held claim is prepared and everything no claim holds is gone.
 * The files are inspected with the real node:fs, which the replacement does not touch.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../src/errors.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import type { ClaimRef } from '../../src/model/types.js';
import type { ClaimList } from '../../src/state/claim-source.js';
import { cleanupOnce, initAndReconcile } from '../../src/state/reconcile.js';
import { ERRNOS, faults, FS_OPS, type FsOp } from '../helpers/fs-faults.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, type ClaimState } from '../helpers/claims.js';

vi.mock('../../src/state/fs.js', async (original) => (await import('../helpers/fs-faults.js')).faultyFs(await original()));

const POD = [{ resource: 'pods', name: 'p', uid: '5a4e3f2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b' }];

/** The API server's claims, listable, switchable off like an outage. */
class ListingSource extends MemoryClaimSource {
  down = false;
  /** One page: every claim held; an error while `down`. */
  async *listPages(): AsyncIterable<ClaimList> {
    if (this.down) throw new ApiError('API server unreachable (test outage)');
    yield await Promise.resolve(this.listAll());
  }
  hold(ref: ClaimRef, device: string): void {
    this.put(allocatedClaim(ref, [{ device }], { reservedFor: POD }));
  }
  release(ref: ClaimRef): void {
    this.claims.delete(`${ref.namespace}/${ref.name}`);
  }
}

/** One node's state dirs, its API server, and its claims by role. */
interface World {
  readonly dir: string;
  readonly cdiDir: string;
  readonly checkpointPath: string;
  readonly source: ListingSource;
  readonly refs: Record<string, ClaimRef>;
}

/** What an operation answered: per claim UID, success or the error. */
type Answers = ReadonlyMap<string, { readonly error?: string }>;

/** A table row: how to set a node up, the operation under faults, and which claims the API server holds. */
interface Scenario {
  readonly name: string;
  /** Claims whose spec and entry exist before the operation and that the API server holds. */
  readonly held: readonly string[];
  /** Claims whose entry (but not necessarily spec) exists before and that the API server holds. */
  readonly heldEntries: readonly string[];
  /** Claims whose spec exists without an entry before, held by the API server (only it may say they are free). */
  readonly heldSpecs: readonly string[];
  /** Claims nothing holds at the end: after the retry their spec and entry must be gone. */
  readonly gone: readonly string[];
  setup(w: World): Promise<ClaimState>;
  /** The operation (faults armed around it). `prepared` / `unprepared`: the answers, to check. */
  run(w: World, s: ClaimState): Promise<{ readonly prepared?: Answers; readonly unprepared?: Answers }>;
}

let inventory: Inventory;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  inventory = await dgxInventory();
});
afterAll(async () => {
  for (const c of cleanups) await c();
});

const stateOf = (w: World): ClaimState =>
  claimState({
    driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: w.source, cdiDir: w.cdiDir,
    checkpointPath: w.checkpointPath, logger: silentLogger(), readBootId: () => Promise.resolve('boot-1'),
  });
const start = async (w: World, s: ClaimState = stateOf(w)) => ({ s, ...(await initAndReconcile({ store: s.store, recovery: s.recovery, source: w.source, logger: silentLogger(), lockAttempts: 1 })) });
const specPath = (w: World, uid: string) => join(w.cdiDir, `k8s.${DRIVER}-claim_${uid}.json`);
const specIsFile = (w: World, uid: string) => lstat(specPath(w, uid)).then((st) => st.isFile(), () => false);
/** The checkpoint's entries as on disk (none when missing); throws when it does not parse (never expected). */
const diskEntries = async (w: World): Promise<Record<string, { state: string }>> => {
  const text = await readFile(w.checkpointPath, 'utf8').catch(() => undefined);
  return text === undefined ? {} : (JSON.parse(text) as { claims: Record<string, { state: string }> }).claims;
};
const setAside = async (w: World) => (await readdir(join(w.dir, 'state')).catch(() => [])).filter((n) => n.includes('.corrupt-'));
const ok = (answers: Answers | undefined): string[] => [...(answers ?? new Map<string, { error?: string }>()).entries()].filter(([, r]) => r.error === undefined).map(([uid]) => uid);

/** Worlds live on a tmpfs when there is one: the faults are injected, real fsyncs would only cost minutes. */
const BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

async function newWorld(names: readonly string[]): Promise<World> {
  const dir = await mkdtemp(join(BASE, 'gpulet-io-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const refs = Object.fromEntries(names.map((n) => [n, newRef(n)]));
  return { dir, cdiDir: join(dir, 'cdi'), checkpointPath: join(dir, 'state', 'checkpoint.json'), source: new ListingSource(), refs };
}

/** Prepare `names` (held by the API server, one GPU each) on a started state, failing the test on any error. */
async function prepared(w: World, s: ClaimState, names: readonly string[]): Promise<void> {
  names.forEach((n, i) => w.source.hold(w.refs[n]!, `gpu-${i}`));
  const out = await s.preparer.prepare(names.map((n) => w.refs[n]!));
  for (const n of names) expect(out.get(w.refs[n]!.uid)?.error, n).toBeUndefined();
}

/** Leave the spec of `name` without its checkpoint entry (what a lost checkpoint leaves of a prepared claim). */
async function dropEntry(w: World, name: string): Promise<void> {
  const s = stateOf(w);
  await s.store.init();
  await s.store.locked(() => s.store.commit(w.refs[name]!.uid, undefined));
  expect(await specIsFile(w, w.refs[name]!.uid)).toBe(true);
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'prepare (a new claim, a prepared one, a prepared one whose spec was lost)',
    held: ['a'], heldEntries: ['a', 'c'], heldSpecs: [], gone: [],
    async setup(w) {
      const { s } = await start(w);
      await prepared(w, s, ['a', 'c']);
      w.source.hold(w.refs['b']!, 'gpu-5');
      await rm(specPath(w, w.refs['c']!.uid));
      return s;
    },
    async run(w, s) {
      return { prepared: await s.preparer.prepare([w.refs['a']!, w.refs['b']!, w.refs['c']!]) };
    },
  },
  {
    name: 'unprepare (a released claim, another one stays)',
    held: ['a'], heldEntries: ['a'], heldSpecs: [], gone: ['b'],
    async setup(w) {
      const { s } = await start(w);
      await prepared(w, s, ['a', 'b']);
      w.source.release(w.refs['b']!);
      return s;
    },
    async run(w, s) {
      return { unprepared: await s.preparer.unprepare([w.refs['b']!]) };
    },
  },
  {
    name: 'start-up (a spec to restore, a spec with a lost entry, an orphan no claim holds)',
    held: ['a'], heldEntries: ['a', 'c'], heldSpecs: ['h'], gone: ['o'],
    async setup(w) {
      const { s } = await start(w);
      await prepared(w, s, ['a', 'c', 'h', 'o']);
      await rm(specPath(w, w.refs['c']!.uid));
      await dropEntry(w, 'h');
      await dropEntry(w, 'o');
      w.source.release(w.refs['o']!);
      return stateOf(w); // not started: the operation is the start-up
    },
    async run(w, s) {
      await start(w, s).catch(() => undefined); // an I/O error may fail the start-up step: the agent retries it
      return {};
    },
  },
  {
    name: 'clean-up round (a rebuild due, a spec with a lost entry, an orphan, a claim the API server deleted)',
    held: ['a'], heldEntries: ['a'], heldSpecs: ['h'], gone: ['g', 'o'],
    async setup(w) {
      const first = await start(w);
      await prepared(w, first.s, ['a', 'g', 'h', 'o']);
      await dropEntry(w, 'h');
      await dropEntry(w, 'o');
      w.source.release(w.refs['g']!);
      w.source.release(w.refs['o']!);
      w.source.down = true;
      const { s, report } = await start(w); // specs without entries: a rebuild is due, and cannot run yet
      expect(s.store.needsRebuild).toBe(true);
      expect(report.orphans).toEqual([]);
      w.source.down = false;
      return s;
    },
    async run(w, s) {
      await cleanupOnce({ store: s.store, recovery: s.recovery, source: w.source, logger: silentLogger() });
      return {};
    },
  },
];

/** Every way the files on disk break the invariants (file doc), as readable lines; [] when none. */
async function violations(w: World, sc: Scenario, answers: { prepared?: Answers; unprepared?: Answers }, when: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await diskEntries(w).catch((err: unknown): Record<string, { state: string }> => {
    out.push(`${when}: the checkpoint does not parse: ${String(err)}`);
    return {};
  });
  const uidOf = (n: string) => w.refs[n]!.uid;
  const nameOf = (uid: string) => Object.keys(w.refs).find((n) => w.refs[n]!.uid === uid) ?? uid;
  for (const uid of ok(answers.prepared)) {
    if (!(await specIsFile(w, uid)) || entries[uid]?.state !== 'PrepareCompleted') out.push(`${when}: ${nameOf(uid)} answered prepared without its spec and entry`);
  }
  for (const uid of ok(answers.unprepared)) {
    if ((await specIsFile(w, uid)) || entries[uid] !== undefined) out.push(`${when}: ${nameOf(uid)} answered unprepared with its spec or entry left`);
  }
  for (const n of sc.held) if (!(await specIsFile(w, uidOf(n)))) out.push(`${when}: the spec of held claim ${n} was removed`);
  for (const n of sc.heldEntries) if (entries[uidOf(n)]?.state !== 'PrepareCompleted') out.push(`${when}: the entry of held claim ${n} was removed`);
  for (const n of sc.heldSpecs) if (!(await specIsFile(w, uidOf(n)))) out.push(`${when}: the spec of held claim ${n} (entry lost) was removed`);
  const aside = await setAside(w);
  if (aside.length > 0) out.push(`${when}: the checkpoint was set aside: ${aside.join(', ')}`);
  return out;
}

/** After the retry: every held claim prepared (spec and entry), everything nobody holds gone. */
async function settled(w: World, sc: Scenario): Promise<string[]> {
  const out: string[] = [];
  const entries = await diskEntries(w);
  for (const n of [...sc.held, ...sc.heldEntries, ...sc.heldSpecs]) {
    const uid = w.refs[n]!.uid;
    if (!(await specIsFile(w, uid)) || entries[uid]?.state !== 'PrepareCompleted') out.push(`after retry: held claim ${n} is not prepared`);
  }
  for (const n of sc.gone) {
    const uid = w.refs[n]!.uid;
    if ((await specIsFile(w, uid)) || entries[uid] !== undefined) out.push(`after retry: ${n}, held by nothing, still has its spec or entry`);
  }
  return out;
}

/** One run: set up, fail the `nth` call of `op` with `errno` (none: count only), check, restart, retry, check. */
async function runCase(sc: Scenario, plan: { op: FsOp; nth: number; errno: (typeof ERRNOS)[number] } | undefined): Promise<string[]> {
  const w = await newWorld(['a', 'b', 'c', 'g', 'h', 'o']);
  const s = await sc.setup(w);
  faults.arm(plan);
  let answers: Awaited<ReturnType<Scenario['run']>>;
  try {
    answers = await sc.run(w, s);
  } finally {
    faults.disarm();
  }
  const label = plan === undefined ? 'no fault' : `${plan.errno} at ${plan.op} #${plan.nth}`;
  const found = await violations(w, sc, answers, label);
  if (plan !== undefined && faults.fired === undefined) found.push(`${label}: the fault did not fire`);
  // Restart from disk (the agent's start-up), then the operation again, then a clean-up round: all succeed.
  const restarted = await start(w);
  if (restarted.report.errors.length > 0) found.push(`${label}: restart errors: ${restarted.report.errors.join('; ')}`);
  const retried = await sc.run(w, restarted.s);
  for (const [uid, r] of [...(retried.prepared ?? []), ...(retried.unprepared ?? [])]) {
    if (r.error !== undefined) found.push(`${label}: retry of ${uid} failed: ${r.error}`);
  }
  found.push(...(await violations(w, sc, retried, `${label}, retried`)));
  await cleanupOnce({ store: restarted.s.store, recovery: restarted.s.recovery, source: w.source, logger: silentLogger() });
  found.push(...(await settled(w, sc)).map((v) => `${label}: ${v}`));
  return found;
}

describe('an injected errno at any file operation never loses or deletes a held claim', () => {
  for (const sc of SCENARIOS) {
    it(sc.name, async () => {
      expect(await runCase(sc, undefined)).toEqual([]); // the scenario itself is sound
      const w = await newWorld(['a', 'b', 'c', 'g', 'h', 'o']);
      const s = await sc.setup(w);
      faults.arm();
      await sc.run(w, s);
      const counts = faults.counts();
      faults.disarm();
      const found: string[] = [];
      let runs = 0;
      for (const op of FS_OPS) {
        for (let nth = 1; nth <= (counts.get(op) ?? 0); nth++) {
          for (const errno of ERRNOS) {
            found.push(...(await runCase(sc, { op, nth, errno })));
            runs++;
          }
        }
      }
      expect(found).toEqual([]);
      expect(runs).toBeGreaterThan(20); // every operation of the scenario was failed in turn
    }, 600_000);
  }
});
