/**
 * Capped exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
 * delay = random() × min(maxMs, initialMs × 2^attempt), floored at 1 ms so a retry is never a busy loop.
 * Pure: the random source is injected, so tests are deterministic.
 */

/** Backoff bounds, milliseconds. */
export interface BackoffOptions {
  /** Cap of the first retry's delay (attempt 0), ms; > 0. */
  readonly initialMs: number;
  /** Cap of any delay, ms; ≥ initialMs. */
  readonly maxMs: number;
}

/** Default bounds for API-server retries: first retry within 0.5 s, never more than 30 s apart. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** Smallest delay returned, ms. */
export const MIN_DELAY_MS = 1;

/**
 * Delay before retry number `attempt` (0-based), ms, in [1, min(maxMs, initialMs × 2^attempt)].
 * @param random a uniform source in [0, 1) (default `Math.random`)
 * @throws RangeError when the bounds are not positive finite numbers with initialMs ≤ maxMs, or attempt < 0
 */
export function backoffDelayMs(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs) || !Number.isFinite(opts.maxMs)) {
    throw new RangeError(`backoff bounds must satisfy 0 < initialMs ≤ maxMs < ∞ (got ${opts.initialMs}, ${opts.maxMs})`);
  }
  if (!(attempt >= 0)) throw new RangeError(`backoff attempt must be ≥ 0 (got ${attempt})`);
  // 2^attempt overflows to Infinity for large attempts; min() then picks maxMs.
  const cap = Math.min(opts.maxMs, opts.initialMs * 2 ** Math.min(attempt, 1024));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.max(MIN_DELAY_MS, Math.floor(r * cap));
}

/** Stateful helper: counts consecutive failures. `next()` gives the next delay, `reset()` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    backoffDelayMs(0, opts, () => 0); // validate bounds eagerly
  }

  /** Delay before the next retry, ms; each call counts one more failure. */
  next(): number {
    const d = backoffDelayMs(this.attempt, this.opts, this.random);
    this.attempt += 1;
    return d;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.attempt;
  }

  /** Forget failures (after a success). */
  reset(): void {
    this.attempt = 0;
  }
}
