import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Sampler } from '../../src/telemetry/sampler.js';
import { loadConfig } from '../../src/config.js';
import { OPTION_BOUNDS } from '../../src/options.js';
import { FakeBackend, fullReadings, GPU0 } from '../helpers/telemetry.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('Sampler', () => {
  it('rejects a bad interval', () => {
    const backend = new FakeBackend();
    expect(() => new Sampler({ backend, intervalMs: 0, logger: silentLogger() })).toThrow(RangeError);
    expect(() => new Sampler({ backend, intervalMs: Number.NaN, logger: silentLogger() })).toThrow(RangeError);
  });

  it('takes exactly the intervals --sample-interval takes (one table of bounds)', () => {
    const backend = new FakeBackend();
    const { min, max } = OPTION_BOUNDS.sampleIntervalMs;
    for (const ms of [min, max]) {
      expect(() => new Sampler({ backend, intervalMs: ms, logger: silentLogger() })).not.toThrow();
      expect(loadConfig(['--sample-interval', String(ms)], { NODE_NAME: 'n' }, '/x').sampleIntervalMs).toBe(ms);
    }
    for (const ms of [min - 1, max + 1, min + 0.5]) {
      expect(() => new Sampler({ backend, intervalMs: ms, logger: silentLogger() })).toThrow(/--sample-interval must be an integer from 100 to 3600000 ms/);
      expect(() => loadConfig(['--sample-interval', String(ms)], { NODE_NAME: 'n' }, '/x')).toThrow(/--sample-interval/);
    }
  });

  it('keeps the latest sample', async () => {
    const backend = new FakeBackend();
    backend.next = { timestampMs: 5, devices: [fullReadings(GPU0)] };
    const s = new Sampler({ backend, intervalMs: 1000, logger: silentLogger() });
    expect(s.latest()).toBeUndefined();
    await s.sampleNow();
    expect(s.latest()?.timestampMs).toBe(5);
    expect(s.stats()).toEqual({ ok: 1, failed: 0 });
  });

  it('never has two samples in flight, even when asked concurrently or when sampling is slower than the interval', async () => {
    vi.useFakeTimers();
    const backend = new FakeBackend();
    backend.delayMs = 250;
    const s = new Sampler({ backend, intervalMs: 100, logger: silentLogger() });
    const a = s.sampleNow();
    const b = s.sampleNow();
    expect(a).toBe(b);
    s.start();
    await vi.advanceTimersByTimeAsync(3_000);
    const stopped = s.stop(); // waits for the sample in flight, which needs the (fake) clock to move
    await vi.advanceTimersByTimeAsync(300);
    await stopped;
    expect(backend.maxInFlight).toBe(1);
    // Each cycle is 250 ms of sampling + 100 ms of wait: about 3000 / 350 ≈ 8 samples, never 30.
    expect(backend.calls).toBeGreaterThan(3);
    expect(backend.calls).toBeLessThan(12);
  });

  it('logs and counts a rejected sample, keeps the previous one, and keeps going', async () => {
    vi.useFakeTimers();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const backend = new FakeBackend();
      backend.next = { timestampMs: 1, devices: [] };
      const s = new Sampler({ backend, intervalMs: 100, logger: silentLogger() });
      await s.sampleNow();
      backend.fail = new Error('NVML_ERROR_UNKNOWN');
      s.start();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(s.stats().failed).toBeGreaterThanOrEqual(5);
      expect(s.latest()?.timestampMs).toBe(1);
      backend.fail = undefined;
      backend.next = { timestampMs: 2, devices: [] };
      await vi.advanceTimersByTimeAsync(200);
      expect(s.latest()?.timestampMs).toBe(2);
      await s.stop();
      const calls = backend.calls;
      await vi.advanceTimersByTimeAsync(500);
      expect(backend.calls).toBe(calls); // stopped
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('unrefs its timer', () => {
    const backend = new FakeBackend();
    const s = new Sampler({ backend, intervalMs: 60_000, logger: silentLogger() });
    const spy = vi.spyOn(globalThis, 'setTimeout');
    s.start();
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    spy.mockRestore();
    return s.stop();
  });
});
