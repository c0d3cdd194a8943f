/**
 * Load curves for simulated devices: pure, deterministic functions of a 32-bit seed and time (seconds).
 * A curve is a slow and a faster sine wave around a per-device mean level, plus smooth value noise, so a
 * device's utilization wanders plausibly and two devices never move in lock-step.
 */

/** Uniform [0, 1) from a seed and an integer key (a 32-bit integer hash; not cryptographic). */
export function hash01(seed: number, key: number): number {
  let h = (seed ^ Math.imul(key | 0, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** Smooth noise in [-1, 1]: linear interpolation of hashed values at integer points of `x`. */
export function valueNoise(seed: number, x: number): number {
  const i = Math.floor(x);
  const f = x - i;
  const a = hash01(seed, i);
  const b = hash01(seed, i + 1);
  const s = f * f * (3 - 2 * f);
  return (a + (b - a) * s) * 2 - 1;
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

/** Shape of one device's load, drawn from its seed. */
export interface LoadCurve {
  /** Mean load, 0–1. */
  readonly level: number;
  readonly slowAmplitude: number;
  readonly slowPeriodS: number;
  readonly slowPhase: number;
  readonly fastPeriodS: number;
  readonly fastPhase: number;
  readonly seed: number;
}

/** The load curve of the device with this seed: mean 0.15–0.8, slow period 15–45 min, fast 1.5–3.5 min. */
export function loadCurve(seed: number): LoadCurve {
  return {
    level: 0.15 + 0.65 * hash01(seed, 1),
    slowAmplitude: 0.1 + 0.2 * hash01(seed, 2),
    slowPeriodS: 900 + 1800 * hash01(seed, 3),
    slowPhase: 2 * Math.PI * hash01(seed, 4),
    fastPeriodS: 90 + 120 * hash01(seed, 5),
    fastPhase: 2 * Math.PI * hash01(seed, 6),
    seed,
  };
}

/** Smooth part of the load at `tSec` (no noise), 0–1: what memory use follows. */
export function trendAt(c: LoadCurve, tSec: number): number {
  return clamp01(
    c.level +
      c.slowAmplitude * Math.sin((2 * Math.PI * tSec) / c.slowPeriodS + c.slowPhase) +
      0.08 * Math.sin((2 * Math.PI * tSec) / c.fastPeriodS + c.fastPhase),
  );
}

/** Load at `tSec`, 0–1: the trend plus ±0.08 of smooth noise (5 s correlation). */
export function loadAt(c: LoadCurve, tSec: number): number {
  return clamp01(trendAt(c, tSec) + 0.08 * valueNoise(c.seed ^ 0x5bd1e995, tSec / 5));
}
