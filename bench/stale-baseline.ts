/**
 * The stale-series filter as it was before the scrape-cost optimisation (git 7743079, src/telemetry/stale.ts),
 * kept only so that the scrape benchmark can time old and new side by side on the same collected data.
 * Not used by the agent. Old cost per collection = a sort + `JSON.stringify` per observed point in the
 * callback (fresh attribute objects every time) and again per data point in the filter.
 */
import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { ObservedSets } from '../src/telemetry/stale.js';

/** The old key: no cache. Same string as the new `attributeKey`. */
export function attributeKeyBefore(attributes: Attributes): string {
  return JSON.stringify(Object.keys(attributes).sort().map((k) => [k, attributes[k]]));
}

/** The old filter: a key per data point, a copy of every catalogue metric. */
export function dropUnobservedBefore(rm: ResourceMetrics, observed: ObservedSets): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.flatMap((m) => {
        const keys = observed.get(m.descriptor.name);
        if (keys === undefined) return [m];
        const dataPoints = (m.dataPoints as { attributes: Attributes }[]).filter((p) => keys.has(attributeKeyBefore(p.attributes)));
        return dataPoints.length === 0 ? [] : [{ ...m, dataPoints } as typeof m];
      }),
    })),
  };
}
