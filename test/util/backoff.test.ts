/**
 * Capped exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * sleep = random_between(0, min(cap, base * 2^attempt)), with the random source injected.
 */
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs } from '../../src/util/backoff.js';

const opts = { initialMs: 100, maxMs: 1000 };

describe('backoffDelayMs', () => {
  it('doubles the cap per attempt up to maxMs (random → 1)', () => {
    const top = () => 0.999999;
    const caps = [100, 200, 400, 800, 1000, 1000, 1000];
    caps.forEach((cap, attempt) => expect(backoffDelayMs(attempt, opts, top)).toBe(Math.floor(0.999999 * cap)));
  });

  it('scales the cap by the random draw (full jitter) and never returns 0 (no busy loop)', () => {
    expect(backoffDelayMs(3, opts, () => 0.5)).toBe(400);
    expect(backoffDelayMs(3, opts, () => 0.25)).toBe(200);
    expect(backoffDelayMs(0, opts, () => 0)).toBe(1);
    expect(backoffDelayMs(10_000, opts, () => 0.5)).toBe(500); // huge attempt: capped, no Infinity/NaN
  });

  it('stays within [1, cap] for many random draws', () => {
    let seed = 42;
    const lcg = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let attempt = 0; attempt < 20; attempt++) {
      const cap = Math.min(1000, 100 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelayMs(attempt, opts, lcg);
        expect(d).toBeGreaterThanOrEqual(1);
        expect(d).toBeLessThanOrEqual(cap);
      }
    }
  });

  it('rejects bad bounds', () => {
    expect(() => backoffDelayMs(0, { initialMs: 0, maxMs: 10 })).toThrow(RangeError);
    expect(() => backoffDelayMs(0, { initialMs: 10, maxMs: 5 })).toThrow(RangeError);
    expect(() => backoffDelayMs(-1, opts)).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 10, maxMs: Infinity })).toThrow(RangeError);
  });
});

describe('Backoff', () => {
  it('counts failures and starts over after reset()', () => {
    const b = new Backoff(opts, () => 0.999999);
    expect([b.next(), b.next(), b.next()]).toEqual([99, 199, 399]);
    expect(b.failures).toBe(3);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(99);
  });
});
