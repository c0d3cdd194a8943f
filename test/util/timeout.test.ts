/**
 * withTimeout: the first of the promise and the timer wins, the timer never outlives the promise nor keeps the
 * process alive, and the losing promise's rejection is never unhandled. Driven by fake timers: no sleeps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withTimeout } from '../../src/util/timeout.js';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);

beforeEach(() => {
  vi.useFakeTimers();
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  vi.useRealTimers();
});

describe('withTimeout', () => {
  it('settles with the promise when it is first, and clears its timer', async () => {
    const onTimeout = vi.fn(() => 'late');
    const d = deferred<string>();
    const p = withTimeout(d.promise, 1000, onTimeout);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    d.resolve('value');
    await expect(p).resolves.toBe('value');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it('rejects with the promise\'s own error when it fails first', async () => {
    const err = new Error('boom');
    const p = withTimeout(Promise.reject(err), 1000, () => 'late');
    await expect(p).rejects.toBe(err);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('on timeout, settles with what onTimeout returns (once), and ignores the promise settling later', async () => {
    const onTimeout = vi.fn(() => 'fallback');
    const d = deferred<string>();
    const p = withTimeout(d.promise, 1000, onTimeout);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(p).resolves.toBe('fallback');
    d.resolve('too late');
    await vi.advanceTimersByTimeAsync(1000);
    expect(onTimeout).toHaveBeenCalledTimes(1);
    await expect(p).resolves.toBe('fallback');
  });

  it('on timeout, rejects with what onTimeout throws; the promise failing later is not an unhandled rejection', async () => {
    const d = deferred<string>();
    const p = withTimeout(d.promise, 50, () => {
      throw new Error('no answer within 50 ms');
    });
    const outcome = expect(p).rejects.toThrow('no answer within 50 ms');
    await vi.advanceTimersByTimeAsync(50);
    await outcome;
    d.reject(new Error('the work failed after the deadline'));
    // Node reports an unhandled rejection once the microtasks drain: let one real macrotask pass.
    vi.useRealTimers();
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  });

  it('follows a promise onTimeout returns', async () => {
    const p = withTimeout(new Promise<string>(() => undefined), 10, () => Promise.resolve('async fallback'));
    await vi.advanceTimersByTimeAsync(10);
    await expect(p).resolves.toBe('async fallback');
  });

  it('unrefs its timer, so a pending bound never keeps the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    void withTimeout(new Promise<void>(() => undefined), 60_000, () => undefined);
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    spy.mockRestore();
  });

  it('refuses a negative or non-finite bound', () => {
    for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => withTimeout(Promise.resolve(1), ms, () => 0)).toThrow(RangeError);
    }
  });
});
