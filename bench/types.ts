/** Shared shapes of the benchmark driver and the benchmarks. */

/** One line of the final table. */
export interface Row {
  /** What was measured, e.g. `scrape GET /metrics`. */
  readonly name: string;
  /** The figure with its unit, e.g. `p50 1.20 ms / p99 3.40 ms`. */
  readonly figure: string;
  /** Goal or published reference, e.g. `p99 < 10 ms`; empty when there is none. */
  readonly goal: string;
  /** Ratio with what it is relative to, e.g. `0.34× goal`, `2.1× floor`; empty when there is none. */
  readonly ratio: string;
}

/** Options every benchmark receives from the driver. */
export interface BenchOptions {
  /** `--long`: more runs and a longer footprint window. */
  readonly long: boolean;
  /** Print one line (method, intermediate figures). */
  readonly print: (line: string) => void;
  /** `--scale-nodes=N`: simulated nodes of the scale benchmark (default 200, `--long` 1,000). */
  readonly scaleNodes?: number;
}

/** `figure / limit` as `0.34× goal` (below 1 = within the goal). */
export function ratioTo(figure: number, limit: number, what = 'goal'): string {
  if (!(limit > 0) || !Number.isFinite(figure)) return '';
  return `${(figure / limit).toFixed(2)}× ${what}`;
}
