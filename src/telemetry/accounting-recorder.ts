/**
 * When the claim accounting (accounting.ts) records the claims' usage in the checkpoint (`ClaimUsageStore`,
 * `ClaimStore.recordUsage`): once a claim prepared while the agent runs is first seen (its baselines), then at
 * most every `intervalMs`, and at {@link UsageRecorder.flush} (shutdown). The first sample after start-up only
 * starts the interval, so a start-up never writes the checkpoint for accounting. One write at a time; a failed
 * write is logged and retried at the interval.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClaimUsage, ClaimUsageStore } from '../model/types.js';

/** Options of {@link UsageRecorder}. */
export interface UsageRecorderOptions {
  /** Where the usage is recorded; none: nothing is recorded or read. */
  readonly store: ClaimUsageStore | undefined;
  /** Longest time between two records while claims are live, ms. */
  readonly intervalMs: number;
  /** The usage to record now (`ClaimAccounting.usages`). */
  readonly usages: () => Map<string, ClaimUsage>;
  readonly logger: Logger;
}

/** Decides when the usage is recorded and records it (see file doc). */
export class UsageRecorder {
  private lastMs: number | undefined;
  private wanted = false;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly options: UsageRecorderOptions) {}

  /** The usage recorded before (a restart continues from it); empty when none, or when it cannot be read (logged). */
  stored(): ReadonlyMap<string, ClaimUsage> {
    try {
      return this.options.store?.usages() ?? new Map();
    } catch (err) {
      this.options.logger.warn({ err: errorMessage(err) }, 'accounting: the recorded usage cannot be read; claims start from zero');
      return new Map();
    }
  }

  /** A claim was first seen: record at the next sample, unless it is the first sample since start-up. */
  claimArrived(): void {
    if (this.lastMs !== undefined) this.wanted = true;
  }

  /** A sample at `t` (Unix ms) was integrated: record when a claim arrived or the interval passed (in the background). */
  sampled(t: number): void {
    if (this.options.store === undefined || this.inFlight !== undefined) return;
    if (this.lastMs === undefined) {
      this.lastMs = t; // the first sample: the interval starts
      return;
    }
    const due = t - this.lastMs >= this.options.intervalMs || t < this.lastMs;
    if (!this.wanted && !due) return;
    this.lastMs = t;
    this.inFlight = this.record().finally(() => {
      this.inFlight = undefined;
    });
  }

  /**
   * Record now (after a write in flight); the interval starts again from `lastSample()` (the last sample
   * integrated, Unix ms; undefined when none), if later. Never rejects: a failure is logged.
   */
  async flush(lastSample: () => number | undefined): Promise<void> {
    await this.inFlight;
    const lastSampleMs = lastSample();
    if (lastSampleMs !== undefined && this.lastMs !== undefined) this.lastMs = Math.max(this.lastMs, lastSampleMs);
    await this.record();
  }

  private async record(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return;
    this.wanted = false;
    const usages = this.options.usages();
    if (usages.size === 0) return;
    try {
      await store.record(usages);
    } catch (err) {
      this.options.logger.warn(
        { err: errorMessage(err), claims: usages.size, retryMs: this.options.intervalMs },
        'accounting: the claims\' usage cannot be recorded in the checkpoint; retrying after the persist interval',
      );
    }
  }
}
