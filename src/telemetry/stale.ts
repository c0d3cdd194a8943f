/**
 * Drop series that the latest observation did not report.
 *
 * The OTel JS SDK (sdk-metrics 3.x, `TemporalMetricProcessor.merge` for cumulative temporality) keeps
 * reporting every attribute set an asynchronous instrument ever observed, with its last value. Our series
 * come and go with claims (`k8s.pod.name` ...) and with device readings (a lost GPU), so without this filter
 * a released device would stay attributed to its old pod forever. Both export paths (Prometheus, OTLP) pass
 * the collected ResourceMetrics through {@link dropUnobserved} with the sets the last callback observed.
 */
import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** Stable key of an attribute set (order-independent). */
export function attributeKey(attributes: Attributes): string {
  return JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
}

/** Metric name → attribute-set keys observed in the latest collection callback. */
export type ObservedSets = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * A copy of `rm` without the data points of catalogue metrics (names in `observed`) whose attribute set was
 * not observed last time, and without metrics left with no points. Other metrics pass through unchanged.
 */
export function dropUnobserved(rm: ResourceMetrics, observed: ObservedSets): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.flatMap((m) => {
        const keys = observed.get(m.descriptor.name);
        if (keys === undefined) return [m];
        const dataPoints = (m.dataPoints as { attributes: Attributes }[]).filter((p) => keys.has(attributeKey(p.attributes)));
        return dataPoints.length === 0 ? [] : [{ ...m, dataPoints } as typeof m];
      }),
    })),
  };
}
