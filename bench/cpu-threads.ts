/**
 * Where the standalone agent's CPU goes, by thread (issue 14): the compiled agent in footprint-process.ts's setting
 * (owned-agent.ts: mock dgx-h100 as 8 GPUs + 56 MIG devices, every device held by a claim, Prometheus scraped by
 * this bench, OTLP gRPC to a local sink) at one cadence for one window; CPU of the whole process from
 * `/proc/<pid>/stat` and of each thread from `/proc/<pid>/task/<tid>/stat` (proc(5): `comm`, `utime`, `stime`),
 * summed by thread name: `node` (the main thread: JavaScript, V8's main-thread GC), `V8 DefaultWorke` (V8's
 * platform workers: concurrent marking, parallel scavenge, background compilation), `libuv-worker` (the libuv
 * pool: fs calls, DNS), others. Figures in millicores over the window (10 ms ticks).
 *
 * Usage: `tsx bench/cpu-threads.ts [--window=180] [--sample=1000] [--scrape=15000] [--otlp=60000] [-- <agent flags>]`
 * (defaults: the production setting, 180 s; flags after `--` are added to the agent's command, e.g.
 * `-- --pod-resources-socket ""`). `BENCH_NODE_FLAGS` as for every compiled-agent bench (agent-process.ts),
 * e.g. `BENCH_NODE_FLAGS="--max-semi-space-size=8 --cpu-prof --cpu-prof-dir=<dir>"` for a CPU profile of the same run.
 */
import fs from 'node:fs';
import { compiledVariant } from './agent-process.js';
import { scrapeFor } from './footprint.js';
import { startOwnedAgent } from './owned-agent.js';
import { CLOCK_TICKS_PER_SECOND, readProc } from './procfs.js';

/** CPU ms per thread name of `pid` (threads that exited are not counted). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
      const name = tid === String(pid) ? 'main (node)' : comm;
      out.set(name, (out.get(name) ?? 0) + ms);
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
}

const windowMs = arg('window', 180) * 1000;
const sampleMs = arg('sample', 1000);
const scrapeMs = arg('scrape', 15_000);
const otlpMs = arg('otlp', 60_000);
const dashes = process.argv.indexOf('--');
const agentArgs = dashes < 0 ? [] : process.argv.slice(dashes + 1);
const v = compiledVariant();
if (v === undefined) throw new Error('run `npm run build` first: this bench runs the compiled agent');
const owned = await startOwnedAgent(v, ['--sample-interval', String(sampleMs), '--otlp-export-interval', String(otlpMs), ...agentArgs]);
try {
  const pid = owned.pid;
  await scrapeFor(`${owned.agent.metricsUrl}/metrics`, Math.min(Math.max(2000, otlpMs + 500), 5000), scrapeMs);
  const load0 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const p0 = readProc(pid);
  const th0 = threadCpu(pid);
  const t0 = performance.now();
  const scrapes = await scrapeFor(`${owned.agent.metricsUrl}/metrics`, windowMs, scrapeMs);
  const wall = performance.now() - t0;
  const p1 = readProc(pid);
  const th1 = threadCpu(pid);
  const load1 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (p0 === undefined || p1 === undefined) throw new Error(`cannot read /proc/${pid}`);
  const m = (ms: number): string => ((ms / wall) * 1000).toFixed(2);
  console.log(`[cpu-threads] ${v.label}; sample ${sampleMs} ms, scrape ${scrapeMs} ms, OTLP ${otlpMs} ms${agentArgs.length > 0 ? `, ${agentArgs.join(' ')}` : ''}; ${(wall / 1000).toFixed(0)} s window, ${scrapes.ok} scrapes; load ${load0} → ${load1}`);
  console.log(`[cpu-threads] process: ${m(p1.cpuMs - p0.cpuMs)} millicores`);
  for (const [name, ms] of [...th1].sort((a, b) => b[1] - a[1])) {
    const d = ms - (th0.get(name) ?? 0);
    if (d > 0) console.log(`[cpu-threads]   ${name}: ${m(d)} millicores`);
  }
} finally {
  await owned.close();
}
