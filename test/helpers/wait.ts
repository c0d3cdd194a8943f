/**
 * The one way tests wait: for a condition, never for a fixed time. `waitFor` polls a condition until it holds
 * and fails after a generous deadline naming what it waited for (and the condition's last error), so a slow,
 * loaded machine only makes a test slower, never red. `deferred` is the building block of event-driven waits
 * (a hook resolves it when the state it signals is reached). Real timers only: under `vi.useFakeTimers()` drive
 * time with `vi.advanceTimersByTimeAsync` instead.
 */

/** Default deadline of {@link waitFor}, ms: far beyond anything a passing test waits for, even on a loaded machine. */
export const WAIT_TIMEOUT_MS = 20_000;

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** What is waited for, as the timeout error names it ("the registration socket"). */
  readonly what: string;
  /** Deadline, ms (default {@link WAIT_TIMEOUT_MS}). A bound to fail a broken test, not a claim about speed. */
  readonly timeoutMs?: number;
  /** Pause between two evaluations of the condition, ms (default 25). */
  readonly intervalMs?: number;
  /** Extra context for the timeout error (e.g. a child process's stderr tail), evaluated when the deadline passes. */
  readonly detail?: () => string;
}

/** Thrown by a {@link waitFor} condition to stop waiting at once (e.g. the process it waits on has exited). */
export class GiveUp extends Error {
  override readonly name = 'GiveUp';
}

/** What a condition returns while its state is not reached yet. */
export type NotYet = undefined | null | false;

/**
 * Evaluate `condition` every `intervalMs` until it returns something other than undefined, null or false, and
 * resolve with that value. A condition that throws (or rejects) counts as "not yet" and its error is reported if
 * the deadline passes; throwing {@link GiveUp} ends the wait at once with that error.
 * @throws Error "timed out after N ms waiting for <what>: <last error>" when the deadline passes
 */
export async function waitFor<T>(condition: () => T | NotYet | Promise<T | NotYet>, options: WaitForOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (performance.now() >= deadline) {
      const why = last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`;
      const detail = options.detail === undefined ? '' : `\n${options.detail()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what}${why}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A promise with its resolve and reject exposed: what a hook settles when the state it signals is reached. */
export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
  /** Whether resolve or reject was called. */
  readonly settled: boolean;
}

/** A new {@link Deferred}. Its promise never rejects unhandled (a rejection no one awaits is dropped). */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return {
    promise,
    get settled() {
      return settled;
    },
    resolve: (value) => {
      settled = true;
      resolve(value);
    },
    reject: (err) => {
      settled = true;
      reject(err);
    },
  };
}

/**
 * Resolve with `promise`, or fail after `timeoutMs` naming `what`: for a wait on an event (an exit, a
 * response) whose only bound is a deadline to fail a broken test.
 */
export async function within<T>(promise: Promise<T>, what: string, timeoutMs = WAIT_TIMEOUT_MS, detail?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail === undefined ? '' : `\n${detail()}`}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
