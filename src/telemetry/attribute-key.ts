/**
 * A stable key of an OTel attribute set, for the per-series state of metric-data.ts (start times, last values)
 * and for finding one series among a collection's points.
 *
 * Keys are cached per attribute object (a WeakMap, so nothing is kept alive): observe.ts hands out one
 * attributes object per series for as long as its device and owners do not change (an unowned device's per
 * inventory, an owned device's per owners array, a claim's per accounting entry), so after the first collection
 * most keys are a map lookup instead of a sort and a `JSON.stringify` (see bench/scrape-stages.ts and
 * BENCHMARKS.md).
 */
import type { Attributes } from '@opentelemetry/api';

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
