/** ScrapeCache: one render shared by concurrent and back-to-back scrapes, for a bounded time. */
import { describe, expect, it } from 'vitest';
import { ScrapeCache } from '../../src/telemetry/scrape-cache.js';

function renderer() {
  const state = { calls: 0, pending: [] as Array<{ resolve: (s: string) => void; reject: (e: Error) => void }> };
  const render = (): Promise<string> => {
    state.calls += 1;
    return new Promise((resolve, reject) => state.pending.push({ resolve, reject }));
  };
  return { state, render };
}

describe('ScrapeCache', () => {
  it('concurrent scrapes share one render and get the same Buffer', async () => {
    const r = renderer();
    const cache = new ScrapeCache({ render: r.render, ttlMs: 0 });
    const answers = Array.from({ length: 500 }, () => cache.get());
    expect(r.state.calls).toBe(1);
    r.state.pending[0]!.resolve('body\n');
    const bodies = await Promise.all(answers);
    expect(new Set(bodies).size).toBe(1);
    expect(bodies[0]!.toString()).toBe('body\n');
    expect(cache.stats()).toEqual({ renders: 1, shared: 499 });
  });

  it('serves the finished body again until the time to live has passed, then renders anew', async () => {
    let now = 1_000;
    const r = renderer();
    const cache = new ScrapeCache({ render: r.render, ttlMs: 1_000, now: () => now });
    const first = cache.get();
    r.state.pending[0]!.resolve('one');
    expect((await first).toString()).toBe('one');
    now += 999;
    expect((await cache.get()).toString()).toBe('one');
    expect(r.state.calls).toBe(1);
    now += 1;
    const second = cache.get();
    expect(r.state.calls).toBe(2);
    r.state.pending[1]!.resolve('two');
    expect((await second).toString()).toBe('two');
  });

  it('with a time to live of 0, a scrape after a finished render renders again', async () => {
    const r = renderer();
    const cache = new ScrapeCache({ render: r.render, ttlMs: 0 });
    const a = cache.get();
    r.state.pending[0]!.resolve('a');
    await a;
    const b = cache.get();
    expect(r.state.calls).toBe(2);
    r.state.pending[1]!.resolve('b');
    expect((await b).toString()).toBe('b');
  });

  it('a failed render fails every scrape waiting on it and is not cached', async () => {
    const r = renderer();
    const cache = new ScrapeCache({ render: r.render, ttlMs: 60_000 });
    const waiting = [cache.get(), cache.get()];
    r.state.pending[0]!.reject(new Error('collect failed'));
    for (const w of waiting) await expect(w).rejects.toThrow('collect failed');
    const next = cache.get();
    expect(r.state.calls).toBe(2);
    r.state.pending[1]!.resolve('ok');
    expect((await next).toString()).toBe('ok');
  });

  it('invalidate() makes the next scrape render', async () => {
    const r = renderer();
    const cache = new ScrapeCache({ render: r.render, ttlMs: 60_000 });
    const a = cache.get();
    r.state.pending[0]!.resolve('a');
    await a;
    cache.invalidate();
    void cache.get();
    expect(r.state.calls).toBe(2);
  });

  it('rejects a negative or non-finite time to live', () => {
    for (const ttlMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new ScrapeCache({ render: () => Promise.resolve(''), ttlMs })).toThrow(RangeError);
    }
  });
});
