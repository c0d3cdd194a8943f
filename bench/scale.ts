/**
 * Benchmark: scale simulation (issue 5, item 6; issue 14, item 3). N simulated nodes, each a real
 * `SlicePublisher`, in child processes of 1,000 publishers each, against ONE embedded API server in its own
 * child process (scale-fleet.ts), in five phases:
 * 1. start-up: every publisher gets its inventory and starts; until every `whenSynced()` resolved;
 * 2. steady state: `update()` with an equal (rebuilt) inventory on every publisher, a few rounds; count writes;
 * 3. one device changes on one node (one GPU's memory); count writes until that publisher is synced;
 * 4. API outage: HTTP 500 on every `/resourceslices` request for the outage while every node's inventory changes;
 *    after the fault is removed, time until every publisher is synced, then check the server's slices;
 * 5. peaks: requests per 1-s bucket of the server's request log, at start-up and during the outage.
 * Each process samples its own RSS and heap; each reports them with its heap retained after a full GC.
 * Everything is stopped and the children exit at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadavg } from 'node:os';
import { DEFAULT_BACKOFF } from '../src/util/backoff.js';
import { describeCounts } from './scale-count.js';
import { createFleet, PUBLISHERS_PER_CHILD, type Fleet } from './scale-fleet.js';
import { memoryReport, retainedHeapBytes, sampleMemory, SCALE_MACHINE, type ProcessMemory } from './scale-sim.js';
import { fmtMs, mib, summarize } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Simulated nodes by default and in `--long`. */
export const SCALE_NODES = { default: 200, long: 1000 } as const;
/** Outage length by default and in `--long`, ms. */
export const SCALE_OUTAGE_MS = { default: 10_000, long: 30_000 } as const;
/** "A few hundred MiB": the memory bound each process's peak RSS is compared with, bytes. */
const RSS_GOAL_BYTES = 300 * 1048576;

interface Phase {
  readonly fromMs: number;
  readonly toMs: number;
}

/** Run `fn` and return the Unix-ms window it spanned (the server log's clock: the same machine's). */
async function timed(fn: () => Promise<void>): Promise<Phase> {
  const fromMs = Date.now();
  await fn();
  return { fromMs, toMs: Date.now() };
}

/**
 * Wait until the server's log stops growing for `quietMs` (polled every 250 ms, at most `maxMs`): requests a
 * client gave up on (30 s timeout) are logged when the server finally answers them, after the phase that sent
 * them; they must not land in the next phase's window.
 * @returns the records that arrived while waiting
 */
async function settle(fleet: Fleet, quietMs = 1000, maxMs = 60_000): Promise<number> {
  const from = Date.now();
  const first = (await fleet.window(from)).logRecords;
  let last = first;
  let quietSince = Date.now();
  while (Date.now() - quietSince < quietMs && Date.now() - from < maxMs) {
    await sleep(250);
    const n = (await fleet.window(from)).logRecords;
    if (n !== last) quietSince = Date.now();
    last = n;
  }
  return last - first;
}

/** `12 × "GET node ...: no answer ..."; ...`: the publishers by their last error, most frequent first. */
function describeErrors(kinds: Readonly<Record<string, number>>): string {
  const all = Object.entries(kinds).sort((a, b) => b[1] - a[1]);
  return all.length === 0 ? 'none' : all.slice(0, 3).map(([k, n]) => `${n} × "${k}"`).join('; ');
}

/** The 1-, 5- and 15-minute load averages, e.g. `1.20 / 0.90 / 0.80`. */
function load(): string {
  return loadavg().map((l) => l.toFixed(2)).join(' / ');
}

/** `api server 120, publishers 0–999 210, ...` (peak RSS of each process, MiB). */
function describeMemory(ms: readonly ProcessMemory[]): string {
  return ms.map((m) => `${m.label} ${mib(m.peakRssBytes)}`).join(', ');
}

/** `api server 80/882, ...` (heap after GC / V8 heap limit of each process, MiB). */
function describeHeaps(ms: readonly ProcessMemory[]): string {
  return ms.map((m) => `${m.label} ${mib(m.heapAfterGcBytes)}/${mib(m.heapLimitBytes)}`).join(', ');
}

/**
 * Run the scale simulation.
 * @returns rows: start-up requests per node and time, steady-state writes per minute, writes after one device
 *   change, convergence after the outage, peak requests per second, memory of every process
 * @throws when a child process cannot start or a publisher rejects `whenSynced()` (a bug: the inventories are valid)
 */
export async function benchScale(opts: BenchOptions): Promise<Row[]> {
  const count = opts.scaleNodes ?? (opts.long ? SCALE_NODES.long : SCALE_NODES.default);
  const outageMs = opts.long || count >= SCALE_NODES.long ? SCALE_OUTAGE_MS.long : SCALE_OUTAGE_MS.default;
  const rounds = 3; // "a few times over a short window"
  const gapMs = 500;
  const backoff = `${DEFAULT_BACKOFF.initialMs} ms → ${DEFAULT_BACKOFF.maxMs / 1000} s cap, ×2, full jitter`;
  const children = Math.ceil(count / PUBLISHERS_PER_CHILD);
  opts.print(
    `[scale] method: ${count} SlicePublishers (${SCALE_MACHINE.gpus.length} × h100-80gb, no MIG, buildMockInventory per ` +
      `node name) in ${children} child process(es) of ≤ ${PUBLISHERS_PER_CHILD} (child_process.fork; each over the agent's own client, ` +
      `src/k8s/rest.ts, one keep-alive http.Agent pool per process, loopback HTTP) against one embedded API server in its own ` +
      `child process (commands and figures over IPC); requests counted from the server's log by timestamp; ` +
      `steady state = ${rounds} rounds of update() with a rebuilt equal inventory on every node ${gapMs} ms apart ` +
      `(writes extrapolated to per minute); one change = GPU 3 memory −1 GiB on one node; outage = HTTP 500 on ` +
      `every /resourceslices request for ${outageMs / 1000} s (${outageMs === SCALE_OUTAGE_MS.long ? '--long or ≥ 1,000 nodes' : 'default; --long: 30 s'}) ` +
      `while every node's GPU 0 memory changes; backoff ${backoff}; each process samples its RSS every 200 ms; ` +
      `load average (1/5/15 min) at the start ${load()}`,
  );
  const mem = sampleMemory();
  const harnessBaseline = retainedHeapBytes();
  const fleet: Fleet = await createFleet(count);
  const rows: Row[] = [];
  const name = (what: string): string => `scale ${count} nodes: ${what}`;
  let memUp: ProcessMemory[] = [];
  let memEnd: ProcessMemory[] = [];
  try {
    // 1. Start-up.
    const start = await timed(() => fleet.start());
    const startMs = start.toMs - start.fromMs;
    const startErr = await fleet.errors();
    const startErrors = startErr.count;
    const sw = await fleet.window(start.fromMs, start.toMs);
    const sc = sw.counts;
    const startBad = await fleet.mismatched();
    memUp = await fleet.memory();
    const retainedUp = memUp.reduce((a, m) => a + m.retainedBytes, 0);
    opts.print(
      `[scale] start-up: ${fmtMs(startMs)}, ${sc.total} requests (${describeCounts(sc)}; ${sc.failed} failed), ` +
        `peak ${sw.peak} req/s, ${startErrors} failed reconcile(s) at the publishers (last errors: ${describeErrors(startErr.kinds)}), ${startBad} node(s) mismatched after; peak RSS ${describeMemory(memUp)} MiB; ` +
        `heap after GC / limit ${describeHeaps(memUp)} MiB; retained heap +${mib(retainedUp)} MiB over all processes (${(retainedUp / count / 1024).toFixed(0)} KiB per node: ` +
        `publisher + the server's copy of its Node and slice); load ${load()}`,
    );
    rows.push(
      { name: name('start-up requests per node'), figure: `${(sc.total / count).toFixed(2)} (${describeCounts(sc, count)}; ${sc.failed} failed)`, goal: '3 (GET Node, LIST, POST)', ratio: ratioTo(sc.total / count, 3, 'minimum') },
      { name: name('start-up until all synced'), figure: `${fmtMs(startMs)} (${startErrors} failed reconciles retried; ${startBad} mismatched after)`, goal: '', ratio: '' },
      { name: name('start-up peak req/s at the server'), figure: `${sw.peak} req/s (${sc.total} requests)`, goal: '', ratio: '' },
    );

    // 2. Steady state: forced reconciles with equal content.
    await settle(fleet);
    const steady = await timed(async () => {
      for (let r = 0; r < rounds; r++) {
        if (r > 0) await sleep(gapMs);
        await fleet.rebuild();
      }
    });
    const st = (await fleet.window(steady.fromMs, steady.toMs)).counts;
    const steadyMs = steady.toMs - steady.fromMs;
    const steadyErr = await fleet.errors();
    const steadyErrors = steadyErr.count - startErrors;
    const late = await settle(fleet);
    const perMin = (st.writes * 60_000) / Math.max(steadyMs, 1);
    opts.print(`[scale] steady: ${rounds} × ${count} update() in ${fmtMs(steadyMs)}: ${st.total} requests (${describeCounts(st)}; ${st.failed} failed), ${st.writes} writes; ${steadyErrors} reconcile(s) failed at the publishers and were retried (last errors so far: ${describeErrors(steadyErr.kinds)}), ${late} request(s) answered after the phase; load ${load()}`);
    rows.push({
      name: name('steady-state writes per minute'),
      figure: `${perMin.toFixed(1)}/min (${st.writes} in ${rounds} × ${count} update() over ${fmtMs(steadyMs)}, extrapolated; reads ${describeCounts(st, rounds * count)} per update; ${steadyErrors} failed reconciles retried)`,
      goal: '0',
      ratio: '',
    });

    // 3. One device changes on one node.
    const target = Math.floor(count / 2);
    const targetName = `sim-node-${String(target).padStart(4, '0')}`;
    const one = await timed(() => fleet.changeOne(target, 3));
    const ow = await fleet.window(one.fromMs, one.toMs, { name: targetName });
    const oc = ow.counts;
    rows.push({
      name: name('one device changed on one node'),
      figure: `${oc.writes} write(s); ${oc.total} requests (${describeCounts(oc)}); ${ow.notNaming} for other nodes; ${fmtMs(one.toMs - one.fromMs)} (incl. IPC)`,
      goal: '1 write',
      ratio: ratioTo(oc.writes, 1),
    });

    // 4. Outage: every /resourceslices request fails with 500 while every node's inventory changes.
    const outageFrom = await fleet.fault(true);
    await fleet.changeAll(0);
    await sleep(outageMs);
    const maxAttempts = await fleet.maxFailures();
    await fleet.arm();
    const errAtRemoval = (await fleet.errors()).count;
    const tR = await fleet.fault(false);
    const times = await fleet.syncTimes();
    const recErr = await fleet.errors();
    const recoveryErrors = recErr.count - errAtRemoval;
    const lastMs = Math.max(tR, ...times);
    const perNode = times.map((t) => Math.max(0, t - tR));
    const convergeMs = lastMs - tR;
    const dist = summarize(perNode);
    const ow2 = await fleet.window(outageFrom, tR, { retries: true });
    const oc2 = ow2.counts;
    const rw = await fleet.window(tR, lastMs);
    const rc = rw.counts;
    const outBad = await fleet.mismatched();
    memEnd = await fleet.memory();
    opts.print(
      `[scale] outage ${outageMs / 1000} s: ${oc2.total} requests (${describeCounts(oc2)}; ${oc2.failed} failed), peak ${ow2.peak} req/s (retries alone, without each node's first request: ${ow2.peakRetries}), ` +
        `max consecutive failures ${maxAttempts}; after removal: ${fmtMs(convergeMs)} to sync, ${rc.total} requests ` +
        `(${describeCounts(rc)}; ${rc.failed} failed), peak ${rw.peak} req/s, ${recoveryErrors} reconcile(s) failed at the publishers during recovery ` +
        `(last errors: ${describeErrors(recErr.kinds)}), ${outBad} node(s) mismatched after; peak RSS so far ` +
        `${describeMemory(memEnd)} MiB, heap after GC / limit ${describeHeaps(memEnd)} MiB (request log: ${rw.logRecords} records); load ${load()}`,
    );
    rows.push(
      {
        name: name(`converge after a ${outageMs / 1000} s outage`),
        figure: `all ${fmtMs(convergeMs)} after the fault was removed (per node p50 ${fmtMs(dist.p50)}, p90 ${fmtMs(dist.p90)}); ${rc.writes} writes, ${recoveryErrors} failed reconciles retried, ${outBad} mismatched after`,
        goal: `≤ backoff cap ${DEFAULT_BACKOFF.maxMs / 1000} s`,
        ratio: ratioTo(convergeMs, DEFAULT_BACKOFF.maxMs, 'cap'),
      },
      {
        name: name('peak req/s during outage / recovery'),
        figure: `${ow2.peak} (retries alone ${ow2.peakRetries}) / ${rw.peak} req/s (${(oc2.total / count).toFixed(1)} requests per node in ${outageMs / 1000} s, up to ${maxAttempts} failures in a row)`,
        goal: `backoff ${backoff}`,
        ratio: '',
      },
    );
  } finally {
    await fleet.close();
    const harness = memoryReport('harness', mem, harnessBaseline);
    const procs = [...(memEnd.length > 0 ? memEnd : memUp), harness];
    const maxProc = Math.max(...procs.map((m) => m.peakRssBytes));
    const total = procs.reduce((a, m) => a + m.peakRssBytes, 0);
    const pubs = procs.filter((m) => m.label.startsWith('publishers'));
    const retainedUp = memUp.reduce((a, m) => a + m.retainedBytes, 0);
    const pubRetained = memUp.filter((m) => m.label.startsWith('publishers')).reduce((a, m) => a + m.retainedBytes, 0);
    const srvRetained = memUp.find((m) => m.label === 'api server')?.retainedBytes ?? Number.NaN;
    rows.push(
      {
        name: name(`peak RSS per process (server + ${pubs.length} publisher processes + harness)`),
        figure: `${describeMemory(procs)} MiB; largest ${mib(maxProc)} MiB, sum of peaks ${mib(total)} MiB (V8 heap limits: ${procs.map((m) => mib(m.heapLimitBytes)).join(', ')} MiB)`,
        goal: '< 300 MiB each (a few hundred)',
        ratio: ratioTo(maxProc, RSS_GOAL_BYTES),
      },
      {
        name: name('retained heap after start-up (after GC)'),
        figure: `+${mib(retainedUp)} MiB = ${(retainedUp / count / 1024).toFixed(0)} KiB per node (publishers ${(pubRetained / count / 1024).toFixed(0)} KiB, server's Node and slice ${(srvRetained / count / 1024).toFixed(0)} KiB)`,
        goal: '',
        ratio: '',
      },
    );
  }
  return rows;
}
