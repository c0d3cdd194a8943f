/**
 * The one generic registration loop: every catalogue entry becomes an observable (asynchronous) OTel
 * instrument of its kind, and one batch callback observes them all from the latest sample.
 */
import type { BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { Logger } from '../log.js';
import type { InstrumentSpec } from './instruments.js';
import { observeInstrument, type ObservationContext } from './observe.js';
import { attributeKey, type ObservedSets } from './stale.js';

/** Handle of the registered instruments. */
export interface Registration {
  /** Attribute sets observed by the latest callback, per metric name (for {@link dropUnobserved}). */
  observed(): ObservedSets;
  /** Remove the callback. */
  unregister(): void;
}

/**
 * Create the instruments of `specs` on `meter` and register one batch callback reading `context()` at
 * every collection. A callback failure is logged and yields no points for that collection (never throws
 * into the SDK). The callback records which attribute sets it observed (see stale.ts).
 */
export function registerInstruments(
  meter: Meter,
  specs: readonly InstrumentSpec[],
  context: () => ObservationContext,
  logger: Logger,
): Registration {
  let observed: ObservedSets = new Map(specs.map((spec) => [spec.name, new Set<string>()]));
  const instruments: { spec: InstrumentSpec; observable: Observable }[] = specs.map((spec) => {
    const options = { description: spec.description, unit: spec.unit };
    switch (spec.kind) {
      case 'gauge':
        return { spec, observable: meter.createObservableGauge(spec.name, options) };
      case 'updowncounter':
        return { spec, observable: meter.createObservableUpDownCounter(spec.name, options) };
      case 'counter':
        return { spec, observable: meter.createObservableCounter(spec.name, options) };
    }
  });
  const callback = (result: BatchObservableResult): void => {
    const seen = new Map(specs.map((spec) => [spec.name, new Set<string>()]));
    try {
      const ctx = context();
      for (const { spec, observable } of instruments) {
        const keys = seen.get(spec.name);
        for (const point of observeInstrument(spec, ctx)) {
          result.observe(observable, point.value, point.attributes);
          keys?.add(attributeKey(point.attributes));
        }
      }
      observed = seen;
    } catch (err) {
      observed = new Map(specs.map((spec) => [spec.name, new Set<string>()]));
      logger.error({ err }, 'telemetry: observing instruments failed; this collection has no GPU points');
    }
  };
  const observables = instruments.map((i) => i.observable);
  meter.addBatchObservableCallback(callback, observables);
  return {
    observed: () => observed,
    unregister: () => meter.removeBatchObservableCallback(callback, observables),
  };
}
