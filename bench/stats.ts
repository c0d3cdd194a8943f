/**
 * Statistics and timing helpers for the benchmarks: nearest-rank percentiles over raw samples, and loops that
 * time a function N times after a warm-up. Times are milliseconds from `performance.now()` (monotonic,
 * sub-microsecond resolution in Node); nothing here prints or judges.
 */

/** Summary of a set of samples, in the samples' unit. */
export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/**
 * Nearest-rank percentile (the smallest sample with at least `p`% of samples ≤ it), as used by most load
 * tools. With 50 samples p99 is the maximum; with 200 it is the second largest.
 * @param sorted samples in ascending order (not checked)
 * @param p percentile in [0, 100]
 * @throws RangeError for no samples or `p` outside [0, 100]
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside [0, 100]`);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? Number.NaN;
}

/**
 * Summarize samples (any order; the input is not modified).
 * @throws RangeError for an empty list
 */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    min: percentile(sorted, 0),
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sum / sorted.length,
  };
}

/** How many times to run a timed function. */
export interface Repeat {
  /** Untimed calls first (JIT, caches, connection set-up). */
  readonly warmup: number;
  /** Timed calls. */
  readonly runs: number;
}

/** Time `fn` `runs` times after `warmup` untimed calls; returns milliseconds per call. */
export function timeSync(fn: () => unknown, repeat: Repeat): number[] {
  for (let i = 0; i < repeat.warmup; i++) fn();
  const out: number[] = new Array<number>(repeat.runs);
  for (let i = 0; i < repeat.runs; i++) {
    const t0 = performance.now();
    fn();
    out[i] = performance.now() - t0;
  }
  return out;
}

/** Time an async `fn` (awaited, one call at a time) `runs` times after `warmup` calls; milliseconds per call. */
export async function timeAsync(fn: (i: number) => Promise<unknown>, repeat: Repeat): Promise<number[]> {
  for (let i = 0; i < repeat.warmup; i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < repeat.runs; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** Format milliseconds with a unit that keeps 3 significant digits: `842 µs`, `3.41 ms`, `1.20 s`. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 1) return `${(ms * 1000).toPrecision(3)} µs`;
  if (ms < 1000) return `${ms.toPrecision(3)} ms`;
  return `${(ms / 1000).toPrecision(3)} s`;
}

/** `p50 X / p99 Y` of a summary in milliseconds. */
export function fmtP50P99(s: Summary): string {
  return `p50 ${fmtMs(s.p50)} / p99 ${fmtMs(s.p99)}`;
}

/** "p50 x / p90 y / p99 z". */
export function fmtP50P90P99(s: Summary): string {
  return `p50 ${fmtMs(s.p50)} / p90 ${fmtMs(s.p90)} / p99 ${fmtMs(s.p99)}`;
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): number {
  return Math.round((bytes / 1048576) * 10) / 10;
}
