/**
 * `npm run bench`: runs every benchmark once and prints a table (name, figure, goal/reference, ratio).
 * Benchmarks print figures; they never pass or fail. Flags: `--long` (more runs, 120 s footprint windows),
 * `--only=pure,scrape,prepare,footprint,startup,nvml` (a subset), `--soak=30m` (the soak alone, soak.ts; with
 * `--only` too, after the others), `--scale-nodes=5000` (the scale simulation's size). See bench/README.md.
 */
import { startBenchAgent } from './agent.js';
import { footprintInProcess } from './footprint.js';
import { footprintStandalone } from './footprint-process.js';
import { benchNvml } from './nvml.js';
import { benchDynamicMig } from './dynamic-mig.js';
import { benchPrepare } from './prepare.js';
import { benchPure } from './pure.js';
import { benchScrape } from './scrape.js';
import { benchScrapeAbuse } from './scrape-abuse.js';
import { fmtMs } from './stats.js';
import { benchSoak, parseDuration } from './soak.js';
import { benchStartup } from './startup.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

const ALL = ['pure', 'scrape', 'prepare', 'footprint', 'startup', 'nvml', 'scale', 'abuse'] as const;
type BenchName = (typeof ALL)[number];

interface Section {
  readonly title: string;
  readonly rows: Row[];
}

function parseArgs(argv: readonly string[]): { long: boolean; only: ReadonlySet<BenchName>; soakMs: number | undefined; scaleNodes: number | undefined } {
  let long = false;
  let only = new Set<BenchName>(ALL);
  let onlyGiven = false;
  let soakMs: number | undefined;
  let scaleNodes: number | undefined;
  for (const arg of argv) {
    if (arg === '--long') long = true;
    else if (arg.startsWith('--soak=')) soakMs = parseDuration(arg.slice('--soak='.length));
    else if (arg.startsWith('--scale-nodes=')) {
      scaleNodes = Number(arg.slice('--scale-nodes='.length));
      if (!Number.isInteger(scaleNodes) || scaleNodes < 1 || scaleNodes > 10_000) throw new Error(`--scale-nodes: an integer 1..10000, got ${arg}`);
    } else if (arg.startsWith('--only=')) {
      onlyGiven = true;
      const names = arg.slice('--only='.length).split(',').filter(Boolean);
      const bad = names.filter((n) => !(ALL as readonly string[]).includes(n));
      if (bad.length > 0) throw new Error(`--only: unknown benchmark(s) ${bad.join(', ')}; choose from ${ALL.join(', ')}`);
      only = new Set(names as BenchName[]);
    } else if (arg === '--help' || arg === '-h') {
      console.log(`usage: npm run bench -- [--long] [--only=${ALL.join(',')}] [--soak=30m] [--scale-nodes=5000]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}; try --help`);
  }
  if (soakMs !== undefined && !onlyGiven) only = new Set();
  return { long, only, soakMs, scaleNodes };
}

/** Render sections as one aligned plain-text table. */
function renderTable(sections: readonly Section[]): string {
  const header: Row = { name: 'benchmark', figure: 'figure', goal: 'goal / reference', ratio: 'ratio' };
  const all = [header, ...sections.flatMap((s) => s.rows)];
  const w = {
    name: Math.max(...all.map((r) => r.name.length)),
    figure: Math.max(...all.map((r) => r.figure.length)),
    goal: Math.max(...all.map((r) => r.goal.length)),
    ratio: Math.max(...all.map((r) => r.ratio.length)),
  };
  const line = (r: Row): string => `${r.name.padEnd(w.name)} | ${r.figure.padEnd(w.figure)} | ${r.goal.padEnd(w.goal)} | ${r.ratio}`.trimEnd();
  const rule = '-'.repeat(w.name + w.figure + w.goal + w.ratio + 9);
  const out = [line(header), rule];
  for (const s of sections) {
    if (s.rows.length === 0) continue;
    out.push(`[${s.title}]`, ...s.rows.map(line));
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { long, only, soakMs, scaleNodes } = parseArgs(process.argv.slice(2));
  const opts: BenchOptions = { long, print: (l) => console.log(l), ...(scaleNodes === undefined ? {} : { scaleNodes }) };
  const footprintMs = long ? 120_000 : 10_000;
  const t0 = performance.now();
  console.log(`gpulet bench (${long ? 'long' : 'default'} run) on ${process.platform}/${process.arch}, Node ${process.version}; ratio < 1 is within the goal`);
  const sections: Section[] = [];
  if (only.has('pure')) sections.push({ title: '1. pure costs', rows: await benchPure(opts) });
  if (only.has('scrape')) sections.push({ title: '2. scrape latency', rows: await benchScrape(opts) });
  const footprint: Row[] = [];
  const startup: Row[] = [];
  if (only.has('prepare') || only.has('footprint')) {
    const env = await startBenchAgent(1000);
    try {
      startup.push({
        name: 'start-up, in-process startAgent (no Node boot)',
        figure: `ready ${fmtMs(Math.max(env.startMs, env.slicesMs))} (slices ${fmtMs(env.slicesMs)})`,
        goal: '< 1.00 s',
        ratio: ratioTo(Math.max(env.startMs, env.slicesMs), 1000),
      });
      if (only.has('prepare')) sections.push({ title: '3. prepare latency (DRA unix socket)', rows: await benchPrepare(env, opts) });
      if (only.has('footprint')) footprint.push(...(await footprintInProcess(env, footprintMs, opts.print)));
    } finally {
      await env.close();
    }
  }
  if (only.has('prepare')) sections.push({ title: '3b. dynamic MIG prepare (creates the instance) vs static MIG', rows: await benchDynamicMig(opts) });
  if (only.has('startup')) startup.push(...(await benchStartup(opts)));
  if (only.has('footprint')) footprint.push(...(await footprintStandalone(opts, long ? 120_000 : 15_000)));
  sections.push({ title: '4. start-up', rows: startup }, { title: '5. footprint (in-process 1 Hz; standalone: 8 GPUs + 56 MIG devices all owned, Prometheus + OTLP)', rows: footprint });
  if (only.has('nvml')) sections.push({ title: '6. NVML sampling cost (fake libnvidia-ml) and scale', rows: await benchNvml(opts) });
  if (only.has('abuse')) sections.push({ title: '8. /metrics under abuse (pipelining, concurrency)', rows: await benchScrapeAbuse(opts) });
  if (only.has('scale')) sections.push({ title: '7. scale simulation (simulated nodes, one API server)', rows: await (await import('./scale.js')).benchScale(opts) });
  if (soakMs !== undefined) sections.push({ title: '9. soak (compiled agent, 56 MIG devices owned, everything at 1 s, claims churning every 10 s)', rows: await benchSoak(opts, soakMs) });
  console.log(`\n${renderTable(sections)}\n\ntotal bench time ${fmtMs(performance.now() - t0)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
