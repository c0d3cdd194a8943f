/**
 * The one timeout helper: bound a promise in time without leaking a timer or an unhandled rejection.
 */

/**
 * Settle with `promise`, or with `onTimeout()` when `ms` milliseconds pass first.
 *
 * - The timer is `unref()`ed (it never keeps the process alive) and cleared as soon as `promise` settles.
 * - `onTimeout` runs at most once, and only when the time is up first; what it returns (or a promise it returns
 *   resolves to) is the result, what it throws the rejection. Throw to fail on timeout, return to fall back.
 * - `promise` is not cancelled: it keeps running. Its later rejection is handled here and ignored, so it is never
 *   an unhandled rejection; a caller that wants to know about it attaches its own handler first.
 *
 * @param promise the bounded work
 * @param ms the bound, ms: a finite number ≥ 0
 * @param onTimeout what to do when the time is up
 * @returns `promise`'s value, or `onTimeout`'s
 * @throws RangeError (synchronously) for a negative or non-finite `ms`; the returned promise rejects with
 *   `promise`'s error, or with what `onTimeout` throws.
 */
export function withTimeout<T, U = never>(promise: Promise<T>, ms: number, onTimeout: () => U | PromiseLike<U>): Promise<T | U> {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`timeout must be a finite number of ms ≥ 0, got ${ms}`);
  return new Promise<T | U>((resolve, reject) => {
    // The first of the two to call resolve/reject wins; later calls are no-ops. On timeout the outer promise
    // follows `onTimeout`'s outcome (the executor turns a throw into a rejection).
    const timer = setTimeout(() => resolve(new Promise<U>((settle) => settle(onTimeout()))), ms);
    timer.unref();
    void promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}
