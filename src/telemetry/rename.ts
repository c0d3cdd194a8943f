/**
 * Prometheus names that differ from the OTel name (src/telemetry/dra-metrics.ts `DRA_PROMETHEUS_NAMES`): applied
 * to the collected ResourceMetrics before the Prometheus serializer, so only `/metrics` sees them and OTLP keeps
 * the OTel names. The serializer then maps the new name as any other (`.` → `_`, `_total` for a counter).
 */
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

/**
 * `rm` with each metric whose OTel name is a key of `names` renamed to its value. Scopes without such a
 * metric are passed through as they are (the same objects); a renamed metric is a shallow copy with a new
 * descriptor. Never mutates `rm`.
 */
export function renameMetrics(rm: ResourceMetrics, names: ReadonlyMap<string, string>): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => {
      if (!sm.metrics.some((m) => names.has(m.descriptor.name))) return sm;
      return {
        ...sm,
        metrics: sm.metrics.map((m) => {
          const name = names.get(m.descriptor.name);
          return name === undefined ? m : { ...m, descriptor: { ...m.descriptor, name } };
        }),
      };
    }),
  };
}
