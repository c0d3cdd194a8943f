/**
 * The series gpulet builds itself (metric-data.ts): the catalogue instruments (instruments.ts, observed by
 * observe.ts) and the per-claim accounting (accounting-metrics.ts). One collection of them ({@link observeOwn});
 * on the OTLP path they go into the meter's scope (`gpulet`, the service version) ahead of the SDK's own
 * instruments (the DRA operation metrics, `gpulet.telemetry.sample.failures`), in the order the SDK used to
 * report them when they were its asynchronous instruments, so the payload keeps its shape
 * ({@link ownMetricsExporter}); on `/metrics` prometheus-text.ts writes them after the SDK's families.
 */
import { AggregationTemporality, InstrumentType, type MetricData, type PushMetricExporter, type ResourceMetrics, type ScopeMetrics } from '@opentelemetry/sdk-metrics';
import type { Logger } from '../log.js';
import type { ClaimTotals } from './accounting.js';
import { accountingObservations } from './accounting-metrics.js';
import type { InstrumentSpec } from './instruments.js';
import { MetricDataBuilder, type Observation, type TemporalityOf } from './metric-data.js';
import { observeInstrument, type ObservationContext } from './observe.js';

/** An instrumentation scope (name, version), as the SDK reports it. */
export type InstrumentationScope = ScopeMetrics['scope'];

/**
 * One collection of every own instrument: the catalogue from `context()`, the accounting from `claims()`. A
 * failure of either is logged and leaves its instruments without points for this collection (their series
 * start over at the next); it never throws.
 */
export function observeOwn(
  catalogue: readonly InstrumentSpec[],
  context: () => ObservationContext,
  claims: () => readonly ClaimTotals[],
  logger: Logger,
): Observation[] {
  let devices: Observation[] = [];
  try {
    const ctx = context();
    devices = catalogue.map((spec) => ({ instrument: spec, points: observeInstrument(spec, ctx) }));
  } catch (err) {
    logger.error({ err }, 'telemetry: observing instruments failed; this collection has no GPU points');
  }
  let accounting: Observation[] = [];
  try {
    accounting = accountingObservations(claims());
  } catch (err) {
    logger.error({ err }, "telemetry: observing the claims' accounting failed; this collection has no accounting points");
  }
  return [...devices, ...accounting];
}

/**
 * `rm` with `metrics` put first in the scope `scope` (matched by name and version; a new first scope when the SDK
 * reported none). `rm` is not changed.
 */
export function withOwnMetrics(rm: ResourceMetrics, scope: InstrumentationScope, metrics: readonly MetricData[]): ResourceMetrics {
  if (metrics.length === 0) return rm;
  const at = rm.scopeMetrics.findIndex((sm) => sm.scope.name === scope.name && sm.scope.version === scope.version);
  if (at < 0) return { resource: rm.resource, scopeMetrics: [{ scope, metrics: [...metrics] }, ...rm.scopeMetrics] };
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm, i) => (i === at ? { scope: sm.scope, metrics: [...metrics, ...sm.metrics] } : sm)),
  };
}

/**
 * The temporality `exporter` asks for each sum kind (`selectAggregationTemporality` of the OTLP exporter, which
 * follows `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`); cumulative when it does not say.
 */
export function temporalityOf(exporter: Pick<PushMetricExporter, 'selectAggregationTemporality'>): TemporalityOf {
  return (kind) =>
    exporter.selectAggregationTemporality?.(kind === 'counter' ? InstrumentType.OBSERVABLE_COUNTER : InstrumentType.OBSERVABLE_UP_DOWN_COUNTER) ??
    AggregationTemporality.CUMULATIVE;
}

/**
 * Wrap an OTLP exporter: every export gets the own series of a fresh collection (`observe()`, built by a
 * {@link MetricDataBuilder} of this path), and `result(ok, error)` is called with each export's outcome
 * (`ExportResult.code` 0 = SUCCESS of @opentelemetry/core, its `error` otherwise) before the SDK gets it.
 */
export function ownMetricsExporter(
  inner: PushMetricExporter,
  scope: InstrumentationScope,
  observe: () => readonly Observation[],
  result: (ok: boolean, error: unknown) => void,
): PushMetricExporter {
  const builder = new MetricDataBuilder(temporalityOf(inner), hrNow());
  const wrapped: PushMetricExporter = {
    export: (metrics, resultCallback) =>
      inner.export(withOwnMetrics(metrics, scope, builder.build(observe(), hrNow())), (outcome) => {
        result(Number(outcome.code) === 0, outcome.error); // 0: @opentelemetry/core ExportResultCode.SUCCESS
        resultCallback(outcome);
      }),
    forceFlush: () => inner.forceFlush(),
    shutdown: () => inner.shutdown(),
  };
  if (inner.selectAggregationTemporality) wrapped.selectAggregationTemporality = inner.selectAggregationTemporality.bind(inner);
  if (inner.selectAggregation) wrapped.selectAggregation = inner.selectAggregation.bind(inner);
  return wrapped;
}

/** The wall clock as an OTel `HrTime` ([seconds, nanoseconds]), as the SDK stamps its points. */
export function hrNow(): [number, number] {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}
