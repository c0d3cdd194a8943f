/**
 * The soak (issue 14 item 2; `npm run bench -- --soak=30m`, `--soak=3m` for a quick check): the compiled agent
 * in the setting (owned-agent.ts: dgx-h100 as 8 GPUs + 56 MIG devices, every device held by a claim),
 * sampling, scraping (by this bench) and OTLP export every 1 s, and every 10 s a churn: 8 claims unprepared and
 * deleted, 8 new claims (new pods) allocated and prepared on the same devices. Every minute: CPU over the minute
 * (Δ utime+stime of /proc/<pid>/stat, outside the probe), RSS (/proc/<pid>/status) and the V8 heap after a full
 * GC (heap-probe.ts, SIGUSR2). The trend: over the last 20 minutes (or, in a shorter run, every minute after the
 * first), the range (max − min) of RSS and of heap-after-GC; flat = both within 2 MiB (the goal).
 */
import path from 'node:path';
import { compiledVariant, repoRoot, tsxVariant } from './agent-process.js';
import { scrapeFor } from './footprint.js';
import { heapReading } from './footprint-process.js';
import { startOwnedAgent } from './owned-agent.js';
import { readProc } from './procfs.js';
import { mib } from './stats.js';
import type { BenchOptions, Row } from './types.js';
import os from 'node:os';
import fs from 'node:fs';

/** Goal: the last 20 minutes' RSS and heap after GC within this range, MiB. */
export const SOAK_FLAT_MIB = 2;
/** Minutes of the trend window in a full soak. */
export const SOAK_TREND_MINUTES = 20;
/** Claims replaced per churn, and the churn period. */
export const CHURN = { claims: 8, everyMs: 10_000 } as const;

/** `30m`, `3m`, `90s`, `1h` → ms. @throws Error for anything else */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(text);
  if (m === null) throw new Error(`--soak: expected a duration like 30m, 3m or 90s, got ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  return n * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

interface HeapLine {
  readonly heapUsed: number;
  readonly external: number;
  readonly spaces?: Readonly<Record<string, number>>;
}

/** `new_space 16.0, old_space 30.1, code_space 2.0, ...` MiB (committed). */
function fmtSpaces(spaces: Readonly<Record<string, number>> | undefined): string {
  if (spaces === undefined) return 'n/a';
  return Object.entries(spaces).filter(([, b]) => b >= 512 * 1024).map(([n, b]) => `${n} ${(b / 1048576).toFixed(1)}`).join(', ');
}

interface Minute {
  readonly minute: number;
  readonly millicores: number;
  readonly rssMib: number;
  readonly heapMib: number;
  readonly externalMib: number;
  readonly load1: number;
  readonly churned: number;
  readonly scrapes: number;
  readonly exports: number;
}

/**
 * Run the soak for `durationMs` (rounded up to whole minutes).
 * @throws Error when the agent does not start, a churn fails, or /proc cannot be read
 */
export async function benchSoak(opts: BenchOptions, durationMs: number): Promise<Row[]> {
  const minutes = Math.max(1, Math.ceil(durationMs / 60_000));
  const compiled = compiledVariant(['--expose-gc', '--import', path.join(repoRoot, 'bench', 'heap-probe.ts')]);
  if (compiled === undefined) opts.print('[soak] dist/ missing (run `npm run build`): tsx variant, no heap probe');
  const v = compiled ?? tsxVariant();
  const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-soak-'));
  const probeFile = path.join(probeDir, 'heap.jsonl');
  opts.print(
    `[soak] ${minutes} min: ${v.label}, dgx-h100 as 8 GPUs + 56 MIG devices, every device held by a claim; sampling, scrape and OTLP every 1 s; ` +
      `churn ${CHURN.claims} claims every ${CHURN.everyMs / 1000} s; per minute CPU, RSS, heap after GC; flat = last ${SOAK_TREND_MINUTES} min (shorter runs: all but the first minute) within ${SOAK_FLAT_MIB} MiB`,
  );
  const owned = await startOwnedAgent(v, ['--sample-interval', '1000', '--otlp-export-interval', '1000'], compiled === undefined ? {} : { BENCH_HEAP_PROBE: probeFile });
  const rows: Minute[] = [];
  try {
    const { pid } = owned;
    const url = `${owned.agent.metricsUrl}/metrics`;
    let stop = false;
    let scrapes = 0;
    let churnError: Error | undefined;
    const scraping = (async () => {
      while (!stop) scrapes += (await scrapeFor(url, 5000, 1000)).ok;
    })();
    const churning = (async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, CHURN.everyMs));
        if (stop) break;
        await owned.churn(CHURN.claims).catch((err: unknown) => {
          churnError = err instanceof Error ? err : new Error(String(err));
          stop = true;
        });
      }
    })();
    await new Promise((r) => setTimeout(r, 5000)); // settle: first exports, JIT of the scrape path
    const start = compiled === undefined ? undefined : ((await heapReading(pid, probeFile)) as HeapLine | undefined);
    let p0 = readProc(pid);
    if (p0 !== undefined) {
      rows.push({ minute: 0, millicores: Number.NaN, rssMib: p0.rssBytes / 1048576, heapMib: (start?.heapUsed ?? Number.NaN) / 1048576, externalMib: (start?.external ?? Number.NaN) / 1048576, load1: os.loadavg()[0] ?? Number.NaN, churned: owned.churned(), scrapes: 0, exports: 0 });
      opts.print(`[soak] minute 0 (after 5 s settling): RSS ${mib(p0.rssBytes)} MiB, heap after GC ${mib(start?.heapUsed ?? Number.NaN)} MiB; V8 spaces committed (MiB) ${fmtSpaces(start?.spaces)}`);
    }
    let t0 = performance.now();
    let exports0 = owned.sink.requests();
    let scrapes0 = scrapes;
    for (let m = 1; m <= minutes && !stop; m++) {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + 60_000 - performance.now())));
      const p1 = readProc(pid);
      const wall = performance.now() - t0;
      const heap = compiled === undefined ? undefined : ((await heapReading(pid, probeFile)) as HeapLine | undefined);
      if (p0 === undefined || p1 === undefined) throw new Error(`cannot read /proc/${pid}`);
      const row: Minute = {
        minute: m,
        millicores: ((p1.cpuMs - p0.cpuMs) / wall) * 1000,
        rssMib: p1.rssBytes / 1048576,
        heapMib: heap === undefined ? Number.NaN : heap.heapUsed / 1048576,
        externalMib: heap === undefined ? Number.NaN : heap.external / 1048576,
        load1: os.loadavg()[0] ?? Number.NaN,
        churned: owned.churned(),
        scrapes: scrapes - scrapes0,
        exports: owned.sink.requests() - exports0,
      };
      rows.push(row);
      opts.print(
        `[soak] minute ${m}: CPU ${row.millicores.toFixed(2)} millicores, RSS ${row.rssMib.toFixed(1)} MiB, heap after GC ${row.heapMib.toFixed(2)} MiB, external ${row.externalMib.toFixed(2)} MiB; ` +
          `${row.scrapes} scrapes, ${row.exports} OTLP exports, ${row.churned} claims churned so far; load average ${row.load1.toFixed(2)}; V8 spaces committed (MiB) ${fmtSpaces(heap?.spaces)}`,
      );
      p0 = readProc(pid); // after the probe's GC: the next minute's CPU excludes it
      t0 = performance.now();
      exports0 = owned.sink.requests();
      scrapes0 = scrapes;
    }
    stop = true;
    await Promise.all([scraping, churning]);
    if (churnError !== undefined) throw new Error(`churn failed: ${churnError.message}`, { cause: churnError });
  } finally {
    await owned.close();
    fs.rmSync(probeDir, { recursive: true, force: true });
  }
  return soakRows(rows);
}

/** Range and least-squares slope (per minute) of `ys`. */
function trend(ys: readonly number[]): { range: number; slope: number } {
  const n = ys.length;
  const range = n === 0 ? Number.NaN : Math.max(...ys) - Math.min(...ys);
  if (n < 2) return { range, slope: Number.NaN };
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, i) => {
    num += (i - mx) * (y - my);
    den += (i - mx) ** 2;
  });
  return { range, slope: num / den };
}

function soakRows(rows: readonly Minute[]): Row[] {
  // Minute 0 is the start (after settling); the trend leaves out minute 1 (warm-up) in short runs.
  const window = rows.length > SOAK_TREND_MINUTES + 1 ? rows.slice(-SOAK_TREND_MINUTES) : rows.filter((r) => r.minute >= 2);
  const rss = trend(window.map((r) => r.rssMib));
  const heap = trend(window.map((r) => r.heapMib));
  const cpu = rows.filter((r) => r.minute > 0).map((r) => r.millicores).sort((a, b) => a - b);
  const median = cpu[Math.floor(cpu.length / 2)] ?? Number.NaN;
  const loads = rows.map((r) => r.load1);
  const span = `minutes ${window[0]?.minute ?? '?'}–${window.at(-1)?.minute ?? '?'}`;
  const verdict = (range: number): string =>
    window.length < 2 ? 'too short to judge (≥ 3 min)' : Number.isNaN(range) ? '' : range <= SOAK_FLAT_MIB ? 'flat ✔' : `${(range / SOAK_FLAT_MIB).toFixed(2)}× ✘`;
  return [
    ...rows.map((r) => ({
      name: `soak minute ${r.minute}${r.minute === 0 ? ' (start)' : ''}`,
      figure: `CPU ${r.millicores.toFixed(2)} m, RSS ${r.rssMib.toFixed(1)} MiB, heap after GC ${r.heapMib.toFixed(2)} MiB (load ${r.load1.toFixed(1)})`,
      goal: '',
      ratio: '',
    })),
    { name: `soak RSS trend (${span})`, figure: `range ${rss.range.toFixed(2)} MiB, slope ${rss.slope.toFixed(3)} MiB/min`, goal: `within ${SOAK_FLAT_MIB} MiB`, ratio: verdict(rss.range) },
    { name: `soak heap-after-GC trend (${span})`, figure: `range ${heap.range.toFixed(2)} MiB, slope ${heap.slope.toFixed(3)} MiB/min`, goal: `within ${SOAK_FLAT_MIB} MiB`, ratio: verdict(heap.range) },
    { name: 'soak CPU, median minute (all at 1 s)', figure: `${median.toFixed(2)} millicores (load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)})`, goal: '< 10 millicores', ratio: `${(median / 10).toFixed(2)}×` },
  ];
}
