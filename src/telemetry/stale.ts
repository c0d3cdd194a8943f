/**
 * Drop series that the latest observation did not report.
 *
 * The OTel JS SDK (sdk-metrics 3.x, `TemporalMetricProcessor.merge` for cumulative temporality) keeps
 * reporting every attribute set an asynchronous instrument ever observed, with its last value. Our series
 * come and go with claims (`k8s.pod.name` ...) and with device readings (a lost GPU), so without this filter
 * a released device would stay attributed to its old pod forever. Both export paths (Prometheus, OTLP) pass
 * the collected ResourceMetrics through {@link dropUnobserved} with the sets the last callback observed.
 *
 * Cost: this runs on every scrape and every OTLP export, over every data point. Keys are cached per attribute
 * object (a WeakMap, so nothing is kept alive): the SDK hands back the same attributes object for a series on
 * every collection (its cumulative `AttributeHashMap` keeps the first object it saw for each set), and
 * observe.ts reuses one object per unowned device and series, so after the first collection most keys are a
 * map lookup instead of a sort and a `JSON.stringify` (see bench/scrape.ts and BENCHMARKS.md).
 */
import type { Attributes } from '@opentelemetry/api';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';

const keyCache = new WeakMap<Attributes, string>();

/** The key itself: JSON of the `[name, value]` pairs sorted by name (the SDK's `hashAttributes` shape). */
function computeKey(attributes: Attributes): string {
  const names = Object.keys(attributes).sort();
  const pairs = new Array<[string, Attributes[string]]>(names.length);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    pairs[i] = [name, attributes[name]];
  }
  return JSON.stringify(pairs);
}

/**
 * Stable key of an attribute set (order-independent): equal sets give equal keys, different sets different
 * keys. Cached per object identity, so an attributes object must not be mutated after it has been keyed
 * (neither the SDK nor observe.ts ever mutates one).
 */
export function attributeKey(attributes: Attributes): string {
  let key = keyCache.get(attributes);
  if (key === undefined) {
    key = computeKey(attributes);
    keyCache.set(attributes, key);
  }
  return key;
}

/** Metric name → attribute-set keys observed in the latest collection callback. */
export type ObservedSets = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * A copy of `rm` without the data points of catalogue metrics (names in `observed`) whose attribute set was
 * not observed last time, and without metrics left with no points. Other metrics pass through unchanged, and
 * so does a catalogue metric that keeps all its (one or more) points (the same object, not a copy).
 */
export function dropUnobserved(rm: ResourceMetrics, observed: ObservedSets): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.flatMap((m) => {
        const keys = observed.get(m.descriptor.name);
        if (keys === undefined) return [m];
        const points = m.dataPoints as readonly { attributes: Attributes }[];
        const kept: { attributes: Attributes }[] = [];
        for (const p of points) if (keys.has(attributeKey(p.attributes))) kept.push(p);
        if (kept.length === 0) return [];
        return kept.length === points.length ? [m] : [{ ...m, dataPoints: kept } as typeof m];
      }),
    })),
  };
}
