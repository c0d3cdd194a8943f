/**
 * Benchmark 5, standalone footprint (issues 5 and 14): the compiled agent as the image runs it (`node
 * dist/agent/cli.js`, the bundle; agent-process.ts `compiledVariant`; tsx when dist/ is missing) in issue 14's setting (owned-agent.ts: mock dgx-h100 as 8 GPUs + 56 MIG devices, every
 * device held by a claim) with BOTH exporters on — Prometheus scraped by this bench and OTLP gRPC export to a
 * local sink (otlp-sink.ts) — for a fixed window, at two cadences. The sink, the API server (dev/embedded.ts,
 * reached with `--kube-api=kubeconfig`) and the kubelet simulator run in the bench process, as in a cluster
 * where none is the agent's. (a) sampling, scrape and OTLP every 1 s (goal < 10 millicores); (b) the production
 * setting: sampling 1 s, scrape 15 s, OTLP 60 s (goal < 3 millicores; a window of ≥ 61 s).
 * CPU = Δ(utime+stime) of /proc/<pid>/stat over the window (10 ms ticks) in millicores; RSS from
 * /proc/<pid>/status every second (start, end, window max, VmHWM = peak since start, least-squares slope);
 * V8 heap after a full GC just before and just after the window (heap-probe.ts, outside the CPU window).
 * Then the RSS breakdown by dependency (rss-breakdown.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compiledVariant, repoRoot, tsxVariant, type AgentVariant } from './agent-process.js';
import { cpuRow, DCGM_FOOTPRINT, rangeRatio, scrapeFor } from './footprint.js';
import { startOwnedAgent } from './owned-agent.js';
import { readProc } from './procfs.js';
import { fmtImportCost, measureImportCosts } from './rss-breakdown.js';
import { mib } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Goals of issue 14: CPU everything at 1 s, CPU in the production setting, RSS. */
export const FOOTPRINT_GOALS = { millicoresAt1s: 10, millicoresProduction: 3, rssMib: 100 } as const;

interface Cadence {
  readonly label: string;
  readonly sampleMs: number;
  readonly scrapeMs: number;
  readonly otlpMs: number;
  readonly goalMillicores: number;
  readonly windowMs: number;
}

interface HeapReading {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
}

/** Least-squares slope of `ys` over `xs`. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += ((xs[i] ?? 0) - mx) * ((ys[i] ?? 0) - my);
    den += ((xs[i] ?? 0) - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** SIGUSR2 the probe and wait (≤ 5 s) for its line; undefined when the probe is absent or silent. */
export async function heapReading(pid: number, file: string): Promise<HeapReading | undefined> {
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
  process.kill(pid, 'SIGUSR2');
  const end = performance.now() + 5000;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    const last = lines[lines.length - 1];
    if (lines.length > before && last !== undefined) return JSON.parse(last) as HeapReading;
  }
  return undefined;
}

/**
 * One cadence on a fresh owned agent (owned-agent.ts: its own API server and OTLP sink in this process, 56 MIG
 * devices each held by a claim).
 */
async function measureCadence(v: AgentVariant, probe: boolean, c: Cadence, windowMs: number, opts: BenchOptions): Promise<Row[]> {
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-probe-'));
  const probeFile = path.join(probeDir, 'heap.jsonl');
  const owned = await startOwnedAgent(v, ['--sample-interval', String(c.sampleMs), '--otlp-export-interval', String(c.otlpMs)], probe ? { BENCH_HEAP_PROBE: probeFile } : {});
  const { agent, sink } = owned;
  try {
    const pid = owned.pid;
    // Settle: the first OTLP export (at 1 s; the production window of ≥ 61 s holds its first export instead), JIT
    // of the scrape path, and a few samples.
    await scrapeFor(`${agent.metricsUrl}/metrics`, Math.min(Math.max(2000, c.otlpMs + 500), 5000), c.scrapeMs);
    const heap0 = probe ? await heapReading(pid, probeFile) : undefined;
    const p0 = readProc(pid);
    const exports0 = sink.requests();
    const t0 = performance.now();
    const rss: { t: number; mib: number }[] = [];
    const timer = setInterval(() => {
      const r = readProc(pid);
      if (r !== undefined) rss.push({ t: (performance.now() - t0) / 60_000, mib: r.rssBytes / 1048576 });
    }, 1000);
    const scrapes = await scrapeFor(`${agent.metricsUrl}/metrics`, windowMs, c.scrapeMs);
    clearInterval(timer);
    const wallMs = performance.now() - t0;
    const p1 = readProc(pid);
    const exports = sink.requests() - exports0;
    const heap1 = probe ? await heapReading(pid, probeFile) : undefined;
    if (p0 === undefined || p1 === undefined) throw new Error(`cannot read /proc/${pid}`);
    const millicores = ((p1.cpuMs - p0.cpuMs) / wallMs) * 1000;
    const maxRss = Math.max(p0.rssBytes / 1048576, p1.rssBytes / 1048576, ...rss.map((r) => r.mib));
    const rssSlope = slope(rss.map((r) => r.t), rss.map((r) => r.mib));
    const heapGrowth = heap0 !== undefined && heap1 !== undefined ? mib(heap1.heapUsed - heap0.heapUsed) : Number.NaN;
    const heapText = heap0 !== undefined && heap1 !== undefined
      ? `V8 heap after GC ${mib(heap0.heapUsed)} → ${mib(heap1.heapUsed)} MiB (${heapGrowth >= 0 ? '+' : ''}${heapGrowth} MiB), external ${mib(heap0.external)} → ${mib(heap1.external)} MiB`
      : 'V8 heap: no probe reading';
    opts.print(
      `[footprint] ${v.label}, ${c.label}, ${windowMs / 1000} s: CPU ${millicores.toFixed(2)} millicores; RSS ${mib(p0.rssBytes)} → ${mib(p1.rssBytes)} MiB ` +
        `(window max ${maxRss.toFixed(1)}, VmHWM ${mib(p1.peakRssBytes)}, trend ${rssSlope.toFixed(2)} MiB/min); ${heapText}; ` +
        `${scrapes.ok} scrapes (${scrapes.failed} failed), ${exports} OTLP exports`,
    );
    const tag = `${v.launcher ? 'tsx' : 'compiled'}, ${c.label}`;
    return [
      { ...cpuRow(`CPU, agent (${tag})`, millicores, scrapes), name: `CPU, agent (${tag})`, figure: `${millicores.toFixed(2)} millicores (${scrapes.ok} scrapes, ${exports} OTLP exports)` },
      { name: `  vs goal`, figure: `${millicores.toFixed(2)} millicores`, goal: `< ${c.goalMillicores} millicores`, ratio: ratioTo(millicores, c.goalMillicores) },
      {
        name: `RSS, agent (${tag})`,
        figure: `${mib(p0.rssBytes)} → ${mib(p1.rssBytes)} MiB (max ${maxRss.toFixed(1)}, VmHWM ${mib(p1.peakRssBytes)}, ${rssSlope >= 0 ? '+' : ''}${rssSlope.toFixed(2)} MiB/min)`,
        goal: `< ${FOOTPRINT_GOALS.rssMib} MiB; dcgm-exporter ${DCGM_FOOTPRINT.mib.join('–')}`,
        ratio: `${ratioTo(p1.rssBytes / 1048576, FOOTPRINT_GOALS.rssMib)}; ${rangeRatio(mib(p1.rssBytes), DCGM_FOOTPRINT.mib)}`,
      },
      { name: `V8 heap after GC, agent (${tag})`, figure: heap0 !== undefined && heap1 !== undefined ? `${mib(heap0.heapUsed)} → ${mib(heap1.heapUsed)} MiB over ${windowMs / 1000} s` : 'n/a', goal: 'no growth', ratio: '' },
    ];
  } finally {
    await owned.close();
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
}

/**
 * Run the standalone footprint at both cadences for `windowMs` each, then the RSS breakdown.
 * @throws Error when the agent does not start or /proc cannot be read
 */
export async function footprintStandalone(opts: BenchOptions, windowMs: number): Promise<Row[]> {
  const compiled = compiledVariant(['--expose-gc', '--import', path.join(repoRoot, 'bench', 'heap-probe.ts')]);
  const v = compiled ?? tsxVariant();
  const cadences: Cadence[] = [
    { label: 'sample+scrape+OTLP 1 s', sampleMs: 1000, scrapeMs: 1000, otlpMs: 1000, goalMillicores: FOOTPRINT_GOALS.millicoresAt1s, windowMs },
    // The issue's production setting; the window holds at least one OTLP export.
    { label: 'sample 1 s, scrape 15 s, OTLP 60 s', sampleMs: 1000, scrapeMs: 15_000, otlpMs: 60_000, goalMillicores: FOOTPRINT_GOALS.millicoresProduction, windowMs: Math.max(windowMs, 61_000) },
  ];
  opts.print(
    `[footprint] method: standalone ${v.label} (mock dgx-h100 as 8 GPUs + 56 MIG devices, every device held by a claim; API server, OTLP sink and kubelet simulator in the bench process) with Prometheus scraped by the bench and OTLP gRPC ` +
      `to a local sink; per cadence (${cadences.map((c) => `${c.label}: ${c.windowMs / 1000} s window`).join('; ')}) settle ≥ 2 s, then the window: ` +
      `CPU = Δ(utime+stime) /proc/<pid>/stat / wall, RSS /proc/<pid>/status each second, V8 heap after GC before/after (heap-probe.ts)` +
      (compiled === undefined ? '; dist/ missing (run `npm run build`): tsx variant, no heap probe' : ''),
  );
  const rows: Row[] = [];
  for (const c of cadences) rows.push(...(await measureCadence(v, compiled !== undefined, c, c.windowMs, opts)));
  const costs = await measureImportCosts();
  const bare = costs[0];
  opts.print('[footprint] RSS breakdown method: a fresh node per group, import it, two full GCs, process.memoryUsage(); rows overlap (shared deps)');
  for (const c of costs) {
    opts.print(`[footprint]   ${c.label}: ${fmtImportCost(c, bare)}`);
    rows.push({ name: `  RSS after import: ${c.label}`, figure: fmtImportCost(c, bare), goal: '', ratio: '' });
  }
  return rows;
}
