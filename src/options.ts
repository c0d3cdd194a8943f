/**
 * Bounds and defaults of gpulet's numeric options, in one table. The CLI schema (src/config.ts) checks a flag
 * against its entry, and the component that takes the value checks its constructor argument against the same
 * entry ({@link checkOption}), so a value the CLI accepts is exactly one the component accepts and the two can
 * never drift apart. Pure, no I/O.
 *
 * The bounds are gpulet's own choices, not upstream limits, except where noted:
 * - sample interval: 100 ms … 1 h; default 5 s.
 * - OTLP export interval: 100 ms … 1 h; default 60 000 ms, the OpenTelemetry SDK default of
 *   `OTEL_METRIC_EXPORT_INTERVAL` (OpenTelemetry specification, SDK environment variables).
 * - shutdown timeout: 100 ms … 10 min; default 10 s, inside a pod's default 30 s
 *   `terminationGracePeriodSeconds` (core/v1 PodSpec).
 * - clean-up interval: 0 (off) … 24 h; default 10 min.
 * - metrics cache: 0 (share only concurrent renders) … 60 s; default 1 s, below any sample interval worth
 *   using, so a scraper never sees a body older than one sample.
 * - health recovery interval: 0 (never: a fault stays until the GPU answers again after a reset or the agent
 *   restarts, as NVIDIA's DRA driver) … 7 days; default 0.
 * - ports: 0 (a free port) … 65535 (TCP).
 */

/** One numeric option: an integer in [`min`, `max`] (`unit`), with the CLI default when it has one. */
export interface OptionBound {
  /** How users set it (flag, or where the value comes from), for error messages. */
  readonly option: string;
  readonly min: number;
  readonly max: number;
  readonly unit: 'ms' | '';
  readonly default?: number;
}

/** The table. Keys are the `Config` fields (or, for `port`, every listen port). */
export const OPTION_BOUNDS = {
  sampleIntervalMs: { option: '--sample-interval', min: 100, max: 3_600_000, unit: 'ms', default: 5_000 },
  otlpExportIntervalMs: { option: '--otlp-export-interval', min: 100, max: 3_600_000, unit: 'ms', default: 60_000 },
  shutdownTimeoutMs: { option: '--shutdown-timeout', min: 100, max: 600_000, unit: 'ms', default: 10_000 },
  cleanupIntervalMs: { option: '--cleanup-interval', min: 0, max: 86_400_000, unit: 'ms', default: 600_000 },
  metricsCacheMs: { option: '--metrics-cache-ttl', min: 0, max: 60_000, unit: 'ms', default: 1_000 },
  healthRecoveryMs: { option: '--health-recovery-interval', min: 0, max: 604_800_000, unit: 'ms', default: 0 },
  port: { option: 'port', min: 0, max: 65_535, unit: '' },
} as const satisfies Record<string, OptionBound>;

/** Name of an entry of {@link OPTION_BOUNDS}. */
export type BoundedOption = keyof typeof OPTION_BOUNDS;

/** Why `value` is outside the bound of `name` (not an integer, or out of range), or undefined. */
export function optionProblem(name: BoundedOption, value: number): string | undefined {
  const b: OptionBound = OPTION_BOUNDS[name];
  if (Number.isInteger(value) && value >= b.min && value <= b.max) return undefined;
  return `must be an integer from ${b.min} to ${b.max}${b.unit === '' ? '' : ` ${b.unit}`}, got ${value}`;
}

/**
 * Check a component's argument against the table.
 * @returns `value`
 * @throws RangeError naming the option and its bounds, e.g.
 *   `--sample-interval must be an integer from 100 to 3600000 ms, got 10`.
 */
export function checkOption(name: BoundedOption, value: number): number {
  const p = optionProblem(name, value);
  if (p !== undefined) throw new RangeError(`${OPTION_BOUNDS[name].option} ${p}`);
  return value;
}
