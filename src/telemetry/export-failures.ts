/**
 * What the agent says when its OTLP exports fail, and how many failed.
 *
 * The OTel SDK's `PeriodicExportingMetricReader` hands a failed export to `globalErrorHandler`, which writes to
 * the OTel `diag` logger, and the agent sets none: without this, a collector that refuses every export (wrong
 * address, TLS mismatch, an authentication error) would lose all OTLP telemetry without a word. Each export's
 * result (`ExportResult` of @opentelemetry/core: code 0 SUCCESS, 1 FAILED, with the gRPC error) is reported
 * here, once per export interval at most, so the log stays bounded however long the collector stays away:
 * - the first failure after a success (or after start) is a warning with the error and the endpoint;
 * - further failures in a row are one warning per `repeatMs` (default 10 minutes) with the count since;
 * - the first success after failures is an info record with how many exports failed.
 * The total is the `gpulet.telemetry.otlp.export.failures` counter (src/telemetry/exporters.ts).
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

/** Default interval between two warnings while every export fails, ms. */
export const EXPORT_FAILURE_REPEAT_MS = 600_000;

/** Options of {@link ExportFailureLog}. */
export interface ExportFailureLogOptions {
  readonly logger: Logger;
  /** The OTLP endpoint, for the log records. */
  readonly endpoint: string;
  /** Interval between two warnings while exports keep failing, ms (default {@link EXPORT_FAILURE_REPEAT_MS}). */
  readonly repeatMs?: number;
  /** Clock, Unix ms (default `Date.now`). */
  readonly now?: () => number;
}

/** Logs and counts the results of OTLP exports (see file doc). */
export class ExportFailureLog {
  private total = 0;
  private inARow = 0;
  private sinceWarning = 0;
  private lastWarningMs = 0;
  private readonly repeatMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ExportFailureLogOptions) {
    this.repeatMs = options.repeatMs ?? EXPORT_FAILURE_REPEAT_MS;
    this.now = options.now ?? Date.now;
  }

  /** Report one export's result: `error` is the exporter's (any value; only its message is logged) on failure. */
  record(ok: boolean, error?: unknown): void {
    const { logger, endpoint } = this.options;
    if (ok) {
      if (this.inARow > 0) logger.info({ endpoint, failedExports: this.inARow }, 'telemetry: OTLP export recovered');
      this.inARow = 0;
      return;
    }
    this.total += 1;
    this.inARow += 1;
    this.sinceWarning += 1;
    const now = this.now();
    if (this.inARow > 1 && now - this.lastWarningMs < this.repeatMs) return;
    logger.warn(
      { endpoint, error: error === undefined ? 'unknown error' : errorMessage(error), failedInARow: this.inARow, failedSinceLastWarning: this.sinceWarning },
      'telemetry: OTLP export failed: the metrics of this export interval did not reach the collector; check the endpoint, ' +
        'its TLS and authentication, and that the collector runs (Prometheus /metrics is unaffected)',
    );
    this.lastWarningMs = now;
    this.sinceWarning = 0;
  }

  /** Exports that failed since start. */
  failures(): number {
    return this.total;
  }
}
