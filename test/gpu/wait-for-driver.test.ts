import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendError, ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { createMockBackend } from '../../src/gpu/mock/index.js';
import type { GpuBackend } from '../../src/gpu/types.js';
import { StartupAbortedError, initBackend } from '../../src/gpu/wait-for-driver.js';
import { deferred } from '../helpers/wait.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A backend factory whose first `failures` inits fail with NVML "Driver Not Loaded", then succeed. */
function flaky(failures: number): { create: () => GpuBackend; attempts: () => number; shutdowns: () => number } {
  let attempts = 0;
  let shutdowns = 0;
  return {
    attempts: () => attempts,
    shutdowns: () => shutdowns,
    create: () => {
      const real = createMockBackend({ machine: 'h100-80gb', nodeName: 'n' });
      const n = ++attempts;
      return {
        kind: real.kind,
        init: () => (n <= failures
          ? Promise.reject(new BackendError('NVML: Driver Not Loaded (code 9) from /usr/lib/libnvidia-ml.so.1', { nvmlCode: 9, library: '/usr/lib/libnvidia-ml.so.1' }))
          : real.init()),
        inventory: () => real.inventory(),
        sample: () => real.sample(),
        onHealthEvent: (l) => real.onHealthEvent(l),
        shutdown: () => {
          shutdowns++;
          return real.shutdown();
        },
      };
    },
  };
}

const fast = { initialMs: 1, maxMs: 5 };

describe('initBackend (--wait-for-driver)', () => {
  it('fails fast without wait, naming the NVML error', async () => {
    const f = flaky(1);
    await expect(initBackend(f.create, { wait: false, logger: silentLogger() })).rejects.toThrow(/Driver Not Loaded \(code 9\)/);
    expect(f.attempts()).toBe(1);
  });

  it('retries a BackendError until the driver is there, reporting why it waits', async () => {
    const f = flaky(3);
    const reasons: string[] = [];
    const backend = await initBackend(f.create, { wait: true, logger: silentLogger(), backoff: fast, onWaiting: (r) => reasons.push(r) });
    expect(f.attempts()).toBe(4);
    expect(reasons).toHaveLength(3);
    expect(reasons[0]).toMatch(/Driver Not Loaded/);
    expect(backend.inventory().gpus).toHaveLength(1);
    expect(f.shutdowns()).toBe(3); // every failed attempt released what it had
  });

  it('does not retry other errors', async () => {
    let attempts = 0;
    const create = (): GpuBackend => {
      attempts++;
      throw new ConfigError('unknown mock machine');
    };
    await expect(initBackend(create, { wait: true, logger: silentLogger(), backoff: fast })).rejects.toThrow(ConfigError);
    expect(attempts).toBe(1);
  });

  it('stops waiting when aborted: the pending retry is cancelled, not waited out', async () => {
    // Fake timers: the 9.9 s retry can only fire if the test moves the clock, which it never does.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const f = flaky(Number.POSITIVE_INFINITY);
    const ac = new AbortController();
    const waiting = deferred();
    const p = initBackend(f.create, {
      wait: true, logger: silentLogger(), backoff: { initialMs: 10_000, maxMs: 10_000 }, random: () => 0.99, signal: ac.signal,
      onWaiting: () => waiting.resolve(),
    });
    const outcome = p.then(() => 'resolved', (err: unknown) => err);
    await waiting.promise; // the first attempt failed and the retry timer is armed
    expect(vi.getTimerCount()).toBe(1);
    ac.abort();
    // Settled once the pending callbacks ran (setImmediate is real here), with no time passing.
    const settled = await Promise.race([outcome, new Promise((r) => setImmediate(() => r('still waiting')))]);
    expect(settled).toBeInstanceOf(StartupAbortedError);
    expect(vi.getTimerCount()).toBe(0); // the retry timer was cleared
    expect(f.attempts()).toBe(1);
  });
});
