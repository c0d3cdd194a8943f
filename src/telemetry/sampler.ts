/**
 * The one sampler: calls `backend.sample()` every `intervalMs`, one sample in flight, never overlapping
 * (the next sample is scheduled when the previous settles), timer `unref()`ed so it never holds the
 * process open. A rejected sample is logged and counted — never an unhandled rejection — and the previous
 * sample is kept.
 */
import { errorMessage } from '../errors.js';
import type { GpuBackend, Sample } from '../gpu/types.js';
import type { Logger } from '../log.js';
import { checkOption } from '../options.js';

/** Counters of the sampler, for self-monitoring. */
export interface SamplerStats {
  /** Samples that resolved. */
  readonly ok: number;
  /** Samples that rejected (the previous sample was kept). */
  readonly failed: number;
}

/** Options of {@link Sampler}. */
export interface SamplerOptions {
  readonly backend: Pick<GpuBackend, 'sample'>;
  /**
   * Interval between the end of one sample and the start of the next, ms: an integer within
   * `OPTION_BOUNDS.sampleIntervalMs` (src/options.ts), the same bounds as `--sample-interval`.
   */
  readonly intervalMs: number;
  readonly logger: Logger;
  /**
   * Called with each successful sample, after it became {@link Sampler.latest} (the per-claim accounting
   * integrates it). A throw is logged, never propagated: the sample stays.
   */
  readonly onSample?: (sample: Sample) => void;
}

/** See module docs. */
export class Sampler {
  private current: Sample | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private running = false;
  private okCount = 0;
  private failedCount = 0;
  private readonly backend: Pick<GpuBackend, 'sample'>;
  private readonly intervalMs: number;
  private readonly logger: Logger;
  private readonly onSample: ((sample: Sample) => void) | undefined;

  /** @throws RangeError naming `--sample-interval` when `intervalMs` is outside `OPTION_BOUNDS.sampleIntervalMs`. */
  constructor(options: SamplerOptions) {
    this.intervalMs = checkOption('sampleIntervalMs', options.intervalMs);
    this.backend = options.backend;
    this.logger = options.logger;
    this.onSample = options.onSample;
  }

  /** Latest successful sample, or undefined before the first one. */
  latest(): Sample | undefined {
    return this.current;
  }

  /** Counts of resolved and rejected samples. */
  stats(): SamplerStats {
    return { ok: this.okCount, failed: this.failedCount };
  }

  /**
   * Take one sample now, or join the one in flight (never two at once). Resolves when it settles;
   * never rejects.
   */
  sampleNow(): Promise<void> {
    this.inFlight ??= this.takeSample().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /**
   * Take a fresh sample: wait for the one in flight (which may have started before a change the caller wants
   * reflected, e.g. a MIG instance created), then take (or join) a new one. Resolves when it settles; never
   * rejects.
   */
  async refresh(): Promise<void> {
    await this.inFlight;
    await this.sampleNow();
  }

  /** Start periodic sampling (idempotent). The first periodic sample starts after one interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule();
  }

  /** Stop periodic sampling and wait for a sample in flight to settle (idempotent). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** Arm the timer for the next periodic sample: one unref'd timer for the sampler's life, re-armed (`refresh()`). */
  private schedule(): void {
    if (!this.running) return;
    if (this.timer !== undefined) {
      this.timer.refresh();
      return;
    }
    this.timer = setTimeout(() => {
      void this.sampleNow().then(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async takeSample(): Promise<void> {
    let sample: Sample;
    try {
      sample = await this.backend.sample();
      this.current = sample;
      this.okCount++;
    } catch (err) {
      this.failedCount++;
      this.logger.warn({ err: errorMessage(err), failures: this.failedCount }, 'telemetry: GPU sample failed; keeping the previous sample');
      return;
    }
    try {
      this.onSample?.(sample);
    } catch (err) {
      this.logger.error({ err: errorMessage(err) }, 'telemetry: a sample listener failed');
    }
  }
}
