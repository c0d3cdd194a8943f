/**
 * OpenTelemetry `MetricData` built by gpulet itself from its observations, for the series whose attribute sets
 * come and go with pods and claims: the catalogue instruments (`hw.*`, `gpulet.gpu.*`, attributed to the pods
 * and claims holding each device) and the per-claim accounting (`gpulet.claim.*`).
 *
 * Why not the SDK's asynchronous instruments: sdk-metrics 3.x keeps, per reader, an accumulation for every
 * attribute set an asynchronous instrument ever observed (`TemporalMetricProcessor` report history for
 * cumulative temporality, `DeltaMetricProcessor` cumulative memo for delta), and never forgets one. Every
 * departed claim's pod and claim attributes stayed in memory for the life of the process: a 30-minute soak with a
 * claim churning every 10 s grew the heap after GC from 39 to 79 MiB (BENCHMARKS.md, footprint). A
 * {@link MetricDataBuilder} keeps state only for the series of the latest collection, so memory follows the
 * live claims, and a departed series leaves the next export without a filter.
 *
 * Shapes are the SDK's own (`MetricData` of `@opentelemetry/sdk-metrics`), so the SDK's Prometheus serializer
 * and OTLP exporter take them as they take the SDK's: one per export path (the Prometheus scrape, the OTLP
 * reader), because start times and deltas are per path.
 * - gauge → `GAUGE` points; `updowncounter` → non-monotonic `SUM`; `counter` → monotonic `SUM` (the SDK's
 *   mapping of observable instruments, `DataPointType`), value type `DOUBLE` (the SDK's default).
 * - Cumulative sums: the start time of a series is kept while it is observed in consecutive collections; a new
 *   series starts at the previous collection of this path (the SDK's `calibrateStartTime`), or at the
 *   builder's creation for the first collection. A series absent from one collection starts over.
 * - Delta sums (an OTLP exporter configured with `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`):
 *   the change since the previous collection of this path, the whole value for a new series, and for a
 *   monotonic counter that went down (a reset) the new value, as the SDK's `SumAggregator.diff` does.
 * - Two points of one instrument with equal attributes in one collection: the last one wins (the SDK's
 *   asynchronous storage does the same).
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType, type DataPoint, type MetricData } from '@opentelemetry/sdk-metrics';
import { attributeKey } from './attribute-key.js';
import type { InstrumentKind } from './instruments.js';

/** What an instrument is: its OTel name, kind, unit (UCUM) and description. */
export interface OwnInstrument {
  readonly name: string;
  readonly kind: InstrumentKind;
  readonly unit: string;
  readonly description: string;
}

/** One data point: value in the instrument's unit, and its attributes (never mutated by the builder). */
export interface ObservedPoint {
  readonly value: number;
  readonly attributes: Attributes;
}

/** The points of one instrument in one collection. */
export interface Observation {
  readonly instrument: OwnInstrument;
  readonly points: readonly ObservedPoint[];
}

/** The temporality an export path wants for sums of an instrument kind (gauges have none). */
export type TemporalityOf = (kind: Exclude<InstrumentKind, 'gauge'>) => AggregationTemporality;

interface SeriesState {
  readonly startTime: HrTime;
  readonly value: number;
}

/** Builds the `MetricData` of one export path from successive collections (see the file doc). */
export class MetricDataBuilder {
  /** Metric name → attribute key → state, for the series of the latest collection only. */
  private series = new Map<string, Map<string, SeriesState>>();
  private previous: HrTime;

  /** @param createdAt start time of the series of the first collection (the telemetry start). */
  constructor(private readonly temporalityOf: TemporalityOf, createdAt: HrTime) {
    this.previous = createdAt;
  }

  /**
   * The `MetricData` of one collection at `now`, in the order of `observations`; an instrument without points
   * is left out. Series absent from this collection are forgotten.
   */
  build(observations: readonly Observation[], now: HrTime): MetricData[] {
    const next = new Map<string, Map<string, SeriesState>>();
    const out: MetricData[] = [];
    for (const { instrument, points } of observations) {
      const latest = new Map<string, ObservedPoint>();
      for (const point of points) latest.set(attributeKey(point.attributes), point);
      if (latest.size === 0) continue;
      const descriptor = { name: instrument.name, description: instrument.description, unit: instrument.unit, valueType: ValueType.DOUBLE };
      if (instrument.kind === 'gauge') {
        const dataPoints: DataPoint<number>[] = [];
        for (const p of latest.values()) dataPoints.push({ startTime: now, endTime: now, attributes: p.attributes, value: p.value });
        out.push({ descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints });
        continue;
      }
      const temporality = this.temporalityOf(instrument.kind);
      const monotonic = instrument.kind === 'counter';
      const before = this.series.get(instrument.name);
      const states = new Map<string, SeriesState>();
      const dataPoints: DataPoint<number>[] = [];
      for (const [key, p] of latest) {
        const was = before?.get(key);
        if (temporality === AggregationTemporality.DELTA) {
          const value = was === undefined || (monotonic && p.value < was.value) ? p.value : p.value - was.value;
          dataPoints.push({ startTime: this.previous, endTime: now, attributes: p.attributes, value });
          states.set(key, { startTime: this.previous, value: p.value });
        } else {
          const startTime = was?.startTime ?? this.previous;
          dataPoints.push({ startTime, endTime: now, attributes: p.attributes, value: p.value });
          states.set(key, { startTime, value: p.value });
        }
      }
      next.set(instrument.name, states);
      out.push({ descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: monotonic, dataPoints });
    }
    this.series = next;
    this.previous = now;
    return out;
  }

  /** Series whose state is kept (the sums of the latest collection): bounded by the live devices and claims. */
  trackedSeries(): number {
    let n = 0;
    for (const states of this.series.values()) n += states.size;
    return n;
  }
}
