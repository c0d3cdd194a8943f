/**
 * Run parameters of the property-based suites (fast-check): a bounded, fixed-seed run in CI (`npm test`)
 * and long runs under `npm run fuzz` (`FUZZ_RUNS=1000`).
 *
 * Environment:
 * - `FUZZ_RUNS`: cases per property (positive integer); default is the suite's CI count.
 * - `FUZZ_SEED`: 32-bit integer seed; default {@link DEFAULT_SEED}, so CI failures replay exactly. On a
 *   failure fast-check prints the seed and the counterexample path.
 * - `FUZZ_PATH`: replay one case: the `path` fast-check printed, with the same `FUZZ_SEED`
 *   (e.g. `FUZZ_SEED=20240404 FUZZ_PATH=120:0:0 npx vitest run test/fuzz/grpc-claims.test.ts -t invariants`).
 */
import type { Parameters } from 'fast-check';

/** Seed of CI runs (any fixed value; changing it is a deliberate act). */
export const DEFAULT_SEED = 20_240_404;

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name}=${JSON.stringify(raw)} must be a positive integer`);
  return n;
}

/** Cases per property: `FUZZ_RUNS` when set, else `ciRuns`. */
export function fuzzRuns(ciRuns: number): number {
  return positiveInt('FUZZ_RUNS', process.env['FUZZ_RUNS']) ?? ciRuns;
}

/** Seed: `FUZZ_SEED` when set (any 32-bit integer), else {@link DEFAULT_SEED}. */
export function fuzzSeed(): number {
  const raw = process.env['FUZZ_SEED'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_SEED;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED=${JSON.stringify(raw)} must be an integer`);
  return n | 0;
}

/** True under `npm run fuzz` (FUZZ_RUNS set): long runs get a larger per-test timeout. */
export function longRun(): boolean {
  return positiveInt('FUZZ_RUNS', process.env['FUZZ_RUNS']) !== undefined;
}

/**
 * fast-check parameters of an asynchronous property: `numRuns` from {@link fuzzRuns}, the seed from
 * {@link fuzzSeed}; a failure prints the seed, the replay path and the shrunk counterexample.
 * Shrinking stays on: each step replays a whole agent round trip, so the run is interrupted 8 s before
 * `timeoutMs` (the test's timeout); a counterexample found so far is still reported.
 */
export function fuzzParams<T>(ciRuns: number, timeoutMs: number, examples: T[] = []): Parameters<T> {
  const path = process.env['FUZZ_PATH'];
  return {
    // Regression cases (counterexamples found earlier) run first, in every run.
    examples,
    numRuns: fuzzRuns(ciRuns),
    seed: fuzzSeed(),
    verbose: 0,
    // Stop (and report what was found, shrunk so far) before the test's own timeout would kill the run silently.
    interruptAfterTimeLimit: Math.max(1_000, timeoutMs - 8_000),
    markInterruptAsFailure: false,
    ...(path ? { path } : {}),
  };
}

/** Per-test timeout (ms): `ciMs` in CI, scaled with the run count under `npm run fuzz`. */
export function fuzzTimeout(ciMs: number, ciRuns: number): number {
  return longRun() ? Math.ceil((ciMs * fuzzRuns(ciRuns)) / ciRuns) + 120_000 : ciMs;
}
