/**
 * The OpenTelemetry instruments of per-claim accounting (accounting.ts): one series per claim, attributes
 * `k8s.namespace.name`, `gpulet.claim.{name,namespace,uid}` and, for a claim reserved by one pod,
 * `k8s.pod.name` / `k8s.pod.uid` (the attributes of attributes.ts; OTel semconv 1.45 has no ResourceClaim
 * attributes). Each collection reports the claims' totals, so an agent restart that restored them from the
 * checkpoint continues the counters where they were.
 *
 * Names follow the OTel naming guidelines (docs/general/naming.md: a namespace, `.time` for a duration counter
 * in `s` as `process.cpu.time`, `energy` in `J` as `hw.energy`; units UCUM); the Prometheus names are the OTel
 * Prometheus exporter's (dots → underscores, counters `_total`, no unit suffix: `gpulet_claim_energy_total`).
 * A departed claim's final totals are reported until each export path collected them once
 * (`ClaimAccounting.delivered`), then its series leave: no longer observed, they are in no export. The points are
 * turned into `MetricData` by metric-data.ts, not by the SDK's instruments, so a departed claim's attributes are
 * not kept for the life of the process.
 */
import type { ClaimTotals } from './accounting.js';
import type { Observation, ObservedPoint, OwnInstrument } from './metric-data.js';

/** OTel names of the accounting instruments. */
export const ACCOUNTING_METRICS = {
  energy: 'gpulet.claim.energy',
  deviceTime: 'gpulet.claim.device.time',
  activeTime: 'gpulet.claim.sm_active.time',
  memoryPeak: 'gpulet.claim.memory.peak',
} as const;

/** One instrument: its name, kind, unit, description and the total it reports. */
const SPECS: readonly (OwnInstrument & { readonly kind: 'counter' | 'gauge'; readonly value: (t: ClaimTotals) => number | undefined })[] = [
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

/**
 * The accounting instruments' points for `totals` (`ClaimAccounting.collect()`), in the order of
 * {@link ACCOUNTING_INSTRUMENTS}; a claim without a value for an instrument (no energy reading) has no point there.
 */
export function accountingObservations(totals: readonly ClaimTotals[]): Observation[] {
  return SPECS.map((spec) => {
    const points: ObservedPoint[] = [];
    for (const t of totals) {
      const value = spec.value(t);
      if (value !== undefined) points.push({ value, attributes: t.attributes });
    }
    return { instrument: spec, points };
  });
}

/** The accounting instruments (names, kinds, units, descriptions), in the order of their observations. */
export const ACCOUNTING_INSTRUMENTS: readonly OwnInstrument[] = SPECS;
