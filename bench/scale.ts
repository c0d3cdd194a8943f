/**
 * Benchmark: scale simulation (issue 5, item 6). N simulated nodes in one process (real `SlicePublisher`s, one
 * embedded API server, @kubernetes/client-node; see scale-fleet.ts), in five phases:
 * 1. start-up: every publisher gets its inventory and starts; until every `whenSynced()` resolved;
 * 2. steady state: `update()` with an equal (rebuilt) inventory on every publisher, a few rounds; count writes;
 * 3. one device changes on one node (one GPU's memory); count writes until that publisher is synced;
 * 4. API outage: HTTP 500 on every `/resourceslices` request for the outage while every node's inventory changes;
 *    after the fault is removed, time until every publisher is synced, then check the server's slices;
 * 5. peaks: requests per 1-s bucket of the server's request log, at start-up and during the outage.
 * Process RSS is sampled throughout. Everything is stopped and closed at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { buildMockInventory } from '../src/gpu/mock/index.js';
import { DEFAULT_BACKOFF } from '../src/util/backoff.js';
import { countRequests, describeCounts, inWindow, peakPerSecond } from './scale-count.js';
import { createFleet, retainedHeapBytes, sampleMemory, SCALE_MACHINE, withGpuMemoryChanged, type Fleet } from './scale-fleet.js';
import { fmtMs, mib, summarize } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Simulated nodes by default and in `--long`. */
export const SCALE_NODES = { default: 200, long: 1000 } as const;
/** Outage length by default and in `--long`, ms. */
export const SCALE_OUTAGE_MS = { default: 10_000, long: 30_000 } as const;
/** "A few hundred MiB": the memory bound the rows are compared with, bytes. */
const RSS_GOAL_BYTES = 300 * 1048576;
const GIB = 1024 ** 3;

interface Phase {
  readonly fromMs: number;
  readonly toMs: number;
}

/** Run `fn` and return the Unix-ms window it spanned (the server log's clock). */
async function timed(fn: () => Promise<void>): Promise<Phase> {
  const fromMs = Date.now();
  await fn();
  return { fromMs, toMs: Date.now() };
}

function reqs(fleet: Fleet, p: Phase): ReturnType<typeof countRequests> {
  return countRequests(inWindow(fleet.server.requests, p.fromMs, p.toMs));
}

/**
 * Run the scale simulation.
 * @returns rows: start-up requests per node and time, steady-state writes per minute, writes after one device
 *   change, convergence after the outage, peak requests per second, memory
 * @throws when the server cannot start or a publisher rejects `whenSynced()` (a bug: the inventories are valid)
 */
export async function benchScale(opts: BenchOptions): Promise<Row[]> {
  const count = opts.scaleNodes ?? (opts.long ? SCALE_NODES.long : SCALE_NODES.default);
  const outageMs = opts.long || count >= SCALE_NODES.long ? SCALE_OUTAGE_MS.long : SCALE_OUTAGE_MS.default;
  const rounds = 3; // "a few times over a short window"
  const gapMs = 500;
  const backoff = `${DEFAULT_BACKOFF.initialMs} ms → ${DEFAULT_BACKOFF.maxMs / 1000} s cap, ×2, full jitter`;
  opts.print(
    `[scale] method: ${count} SlicePublishers (${SCALE_MACHINE.gpus.length} × h100-80gb, no MIG, buildMockInventory per ` +
      `node name) in this process against one embedded API server over the agent's own client (src/k8s/rest.ts; one ` +
      `shared connection, i.e. one keep-alive http.Agent pool, loopback HTTP); requests counted from the server's log by timestamp; ` +
      `steady state = ${rounds} rounds of update() with a rebuilt equal inventory on every node ${gapMs} ms apart ` +
      `(writes extrapolated to per minute); one change = GPU 3 memory −1 GiB on one node; outage = HTTP 500 on ` +
      `every /resourceslices request for ${outageMs / 1000} s (${outageMs === SCALE_OUTAGE_MS.long ? '--long or ≥ 1,000 nodes' : 'default; --long: 30 s'}) ` +
      `while every node's GPU 0 memory changes; backoff ${backoff}; RSS sampled every 200 ms`,
  );
  const heapBefore = retainedHeapBytes();
  const rssBefore = process.memoryUsage().rss;
  const mem = sampleMemory();
  const fleet = await createFleet(count);
  const rows: Row[] = [];
  let heapUp = Number.NaN;
  const name = (what: string): string => `scale ${count} nodes: ${what}`;
  try {
    const { server, nodes } = fleet;
    // 1. Start-up.
    const t0 = performance.now();
    const start = await timed(async () => {
      for (const n of nodes) {
        n.publisher.update(n.inventory);
        n.publisher.start();
      }
      await fleet.allSynced();
    });
    const startMs = performance.now() - t0;
    const startReqs = inWindow(server.requests, start.fromMs, start.toMs);
    const sc = countRequests(startReqs);
    const startBad = await fleet.mismatchedNodes();
    const startPeak = peakPerSecond(startReqs);
    const rssUp = mem.peek().peakRssBytes;
    heapUp = retainedHeapBytes() - heapBefore;
    opts.print(
      `[scale] start-up: ${fmtMs(startMs)}, ${sc.total} requests (${describeCounts(sc)}; ${sc.failed} failed), ` +
        `peak ${startPeak} req/s, ${startBad} node(s) mismatched after, peak RSS ${mib(rssUp)} MiB, ` +
        `retained heap +${mib(heapUp)} MiB (${(heapUp / count / 1024).toFixed(0)} KiB per node: publisher + the server's copy of its Node and slice)`,
    );
    rows.push(
      { name: name('start-up requests per node'), figure: `${(sc.total / count).toFixed(2)} (${describeCounts(sc, count)})`, goal: '3 (GET Node, LIST, POST)', ratio: ratioTo(sc.total / count, 3, 'minimum') },
      { name: name('start-up until all synced'), figure: `${fmtMs(startMs)} (${startBad} mismatched after)`, goal: '', ratio: '' },
      { name: name('start-up peak req/s at the server'), figure: `${startPeak} req/s (${sc.total} requests)`, goal: '', ratio: '' },
    );

    // 2. Steady state: forced reconciles with equal content.
    const steady = await timed(async () => {
      for (let r = 0; r < rounds; r++) {
        if (r > 0) await sleep(gapMs);
        for (const n of nodes) n.inventory = buildMockInventory(SCALE_MACHINE, n.name);
        fleet.update();
        await fleet.allSynced();
      }
    });
    const st = reqs(fleet, steady);
    const steadyMs = steady.toMs - steady.fromMs;
    const perMin = (st.writes * 60_000) / Math.max(steadyMs, 1);
    opts.print(`[scale] steady: ${rounds} × ${count} update() in ${fmtMs(steadyMs)}: ${st.total} requests (${describeCounts(st)}), ${st.writes} writes, peak RSS so far ${mib(mem.peek().peakRssBytes)} MiB`);
    rows.push({
      name: name('steady-state writes per minute'),
      figure: `${perMin.toFixed(1)}/min (${st.writes} in ${rounds} × ${count} update() over ${fmtMs(steadyMs)}, extrapolated; reads ${describeCounts(st, rounds * count)} per update)`,
      goal: '0',
      ratio: '',
    });

    // 3. One device changes on one node.
    const target = nodes[Math.floor(count / 2)];
    if (target === undefined) throw new RangeError('no simulated node');
    const one = await timed(async () => {
      target.inventory = withGpuMemoryChanged(target.inventory, 3, GIB);
      target.publisher.update(target.inventory);
      await target.publisher.whenSynced();
    });
    const oneRecs = inWindow(server.requests, one.fromMs, one.toMs);
    const oc = countRequests(oneRecs);
    const others = oneRecs.filter((r) => !`${r.path}?${r.query}`.includes(target.name)).length;
    rows.push({
      name: name('one device changed on one node'),
      figure: `${oc.writes} write(s); ${oc.total} requests (${describeCounts(oc)}); ${others} for other nodes; ${fmtMs(one.toMs - one.fromMs)}`,
      goal: '1 write',
      ratio: ratioTo(oc.writes, 1),
    });

    // 4. Outage: every /resourceslices request fails with 500 while every node's inventory changes.
    const removeFault = server.injectFault({ pathIncludes: '/resourceslices', status: 500 });
    const outageFrom = Date.now();
    for (const n of nodes) n.inventory = withGpuMemoryChanged(n.inventory, 0, GIB);
    fleet.update();
    await sleep(outageMs);
    const maxAttempts = Math.max(...nodes.map((n) => n.publisher.stats().consecutiveFailures));
    removeFault();
    const tR = performance.now();
    const perNode: number[] = [];
    const recovery = await timed(async () => {
      await Promise.all(nodes.map((n) => n.publisher.whenSynced().then(() => void perNode.push(performance.now() - tR))));
    });
    const convergeMs = performance.now() - tR;
    const dist = summarize(perNode);
    const outage: Phase = { fromMs: outageFrom, toMs: recovery.fromMs };
    const outRecs = inWindow(server.requests, outage.fromMs, outage.toMs);
    const oc2 = countRequests(outRecs);
    const recRecs = inWindow(server.requests, recovery.fromMs, recovery.toMs);
    const rc = countRequests(recRecs);
    const outPeak = peakPerSecond(outRecs);
    // After the first second: retries only (the first second also holds every node's reconcile of the change).
    const retryPeak = peakPerSecond(inWindow(outRecs, outage.fromMs + 1000));
    const recPeak = peakPerSecond(recRecs);
    const outBad = await fleet.mismatchedNodes();
    const heapEnd = retainedHeapBytes() - heapBefore;
    opts.print(
      `[scale] outage ${outageMs / 1000} s: ${oc2.total} requests (${describeCounts(oc2)}; ${oc2.failed} failed), peak ${outPeak} req/s (${retryPeak} after the first second), ` +
        `max consecutive failures ${maxAttempts}; after removal: ${fmtMs(convergeMs)} to sync, ${rc.total} requests ` +
        `(${describeCounts(rc)}), peak ${recPeak} req/s, ${outBad} node(s) mismatched after; peak RSS so far ` +
        `${mib(mem.peek().peakRssBytes)} MiB, retained heap now +${mib(heapEnd)} MiB (request log: ${server.requests.length} records)`,
    );
    rows.push(
      {
        name: name(`converge after a ${outageMs / 1000} s outage`),
        figure: `all ${fmtMs(convergeMs)} after the fault was removed (per node p50 ${fmtMs(dist.p50)}, p90 ${fmtMs(dist.p90)}); ${rc.writes} writes, ${outBad} mismatched after`,
        goal: `≤ backoff cap ${DEFAULT_BACKOFF.maxMs / 1000} s`,
        ratio: ratioTo(convergeMs, DEFAULT_BACKOFF.maxMs, 'cap'),
      },
      {
        name: name('peak req/s during outage / recovery'),
        figure: `${outPeak} (retries alone ${retryPeak}) / ${recPeak} req/s (${(oc2.total / count).toFixed(1)} requests per node in ${outageMs / 1000} s, up to ${maxAttempts} failures in a row)`,
        goal: `backoff ${backoff}`,
        ratio: '',
      },
    );
  } finally {
    await fleet.close();
    const peak = mem.stop();
    rows.push({
      name: name('process peak RSS (publishers + server + harness)'),
      figure: `${mib(peak.peakRssBytes)} MiB (+${mib(peak.peakRssBytes - rssBefore)} MiB over the ${mib(rssBefore)} MiB before; heap peak ${mib(peak.peakHeapBytes)} MiB)`,
      goal: '< 300 MiB (a few hundred)',
      ratio: ratioTo(peak.peakRssBytes, RSS_GOAL_BYTES),
    }, {
      name: name('retained heap after start-up (after GC)'),
      figure: `+${mib(heapUp)} MiB = ${(heapUp / count / 1024).toFixed(0)} KiB per node (publisher + the server's Node and slice)`,
      goal: '',
      ratio: '',
    });
  }
  return rows;
}
