/**
 * The OpenTelemetry instruments of per-claim accounting (accounting.ts): one series per claim, attributes
 * `k8s.namespace.name`, `gpulet.claim.{name,namespace,uid}` and, for a claim reserved by one pod,
 * `k8s.pod.name` / `k8s.pod.uid` (the attributes of attributes.ts; OTel semconv 1.45 has no ResourceClaim
 * attributes). Asynchronous instruments: each collection reports the claims' totals, so an agent restart that
 * restored them from the checkpoint continues the counters where they were.
 *
 * Names follow the OTel naming guidelines (docs/general/naming.md: a namespace, `.time` for a duration counter
 * in `s` as `process.cpu.time`, `energy` in `J` as `hw.energy`; units UCUM); the Prometheus names are the OTel
 * Prometheus exporter's (dots → underscores, counters `_total`, no unit suffix: `gpulet_claim_energy_total`).
 * A departed claim's final totals are reported until each export path collected them once
 * (`ClaimAccounting.delivered`), then its series leave: the callback no longer observes them and the export
 * paths drop what the last callback did not observe (stale.ts), with {@link AccountingRegistration.observed}.
 */
import type { BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { Logger } from '../log.js';
import type { ClaimAccounting, ClaimTotals } from './accounting.js';
import { attributeKey, type ObservedSets } from './stale.js';

/** OTel names of the accounting instruments. */
export const ACCOUNTING_METRICS = {
  energy: 'gpulet.claim.energy',
  deviceTime: 'gpulet.claim.device.time',
  activeTime: 'gpulet.claim.sm_active.time',
  memoryPeak: 'gpulet.claim.memory.peak',
} as const;

/** One instrument: its name, kind, unit, description and the total it reports. */
const SPECS: readonly { readonly name: string; readonly kind: 'counter' | 'gauge'; readonly unit: string; readonly description: string; readonly value: (t: ClaimTotals) => number | undefined }[] = [
  {
    name: ACCOUNTING_METRICS.energy, kind: 'counter', unit: 'J',
    description: "Energy used by the ResourceClaim's devices while it held them (a MIG device: its compute-slice share of its GPU's energy; a shared device: an equal part)",
    value: (t) => t.energyJoules,
  },
  {
    name: ACCOUNTING_METRICS.deviceTime, kind: 'counter', unit: 's',
    description: 'Device-seconds the ResourceClaim held its devices (summed over its devices)',
    value: (t) => t.deviceSeconds,
  },
  {
    name: ACCOUNTING_METRICS.activeTime, kind: 'counter', unit: 's',
    description: "Active-seconds of the ResourceClaim's devices: SM-active seconds where GPM is sampled, utilization-seconds otherwise; absent for devices with neither (MIG devices without GPM)",
    value: (t) => t.activeSeconds,
  },
  {
    name: ACCOUNTING_METRICS.memoryPeak, kind: 'gauge', unit: 'By',
    description: "Peak memory used by the ResourceClaim's devices (summed over its devices at one sample; the driver's reserved memory excluded)",
    value: (t) => t.memoryPeakBytes,
  },
];

/** Handle of the registered accounting instruments. */
export interface AccountingRegistration {
  /** Attribute sets observed by the latest callback, per metric name (for stale.ts `dropUnobserved`). */
  observed(): ObservedSets;
  /** Remove the callback. */
  unregister(): void;
}

/**
 * Create the accounting instruments on `meter` and one batch callback reporting `accounting.collect()`. A
 * failure is logged and yields no accounting points for that collection (never throws into the SDK).
 */
export function registerAccounting(meter: Meter, accounting: ClaimAccounting, logger: Logger): AccountingRegistration {
  const empty = (): Map<string, Set<string>> => new Map(SPECS.map((s) => [s.name, new Set<string>()]));
  let observed: ObservedSets = empty();
  const instruments: { spec: (typeof SPECS)[number]; observable: Observable }[] = SPECS.map((spec) => {
    const options = { description: spec.description, unit: spec.unit };
    return { spec, observable: spec.kind === 'counter' ? meter.createObservableCounter(spec.name, options) : meter.createObservableGauge(spec.name, options) };
  });
  const callback = (result: BatchObservableResult): void => {
    const seen = empty();
    try {
      const totals = accounting.collect();
      for (const { spec, observable } of instruments) {
        const keys = seen.get(spec.name);
        for (const t of totals) {
          const value = spec.value(t);
          if (value === undefined) continue;
          result.observe(observable, value, t.attributes);
          keys?.add(attributeKey(t.attributes));
        }
      }
      observed = seen;
    } catch (err) {
      observed = empty();
      logger.error({ err }, 'telemetry: observing the claims\' accounting failed; this collection has no accounting points');
    }
  };
  const observables = instruments.map((i) => i.observable);
  meter.addBatchObservableCallback(callback, observables);
  return {
    observed: () => observed,
    unregister: () => meter.removeBatchObservableCallback(callback, observables),
  };
}
