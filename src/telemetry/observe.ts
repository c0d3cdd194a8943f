/**
 * Pure observation: the data points of one catalogue instrument for the latest sample, the inventory,
 * device health and ownership. The OTel callbacks (register.ts) and the tests call this; it has no I/O.
 */
import type { DeviceOwner } from '../dra/types.js';
import type { DeviceHealthState, Sample } from '../gpu/types.js';
import { attributionSets, type Attrs, type DeviceIdentity } from './attributes.js';
import { readSeries, type InstrumentSpec, type SeriesSpec } from './instruments.js';

/** The health facts observation needs (implemented by `HealthTracker`). */
export interface HealthView {
  state(uuid: string): DeviceHealthState;
  xidCounts(uuid: string): ReadonlyMap<number, number>;
}

/** Everything one collection reads. */
export interface ObservationContext {
  /** Latest sample; undefined before the first successful sample (then only `hw.status` has points). */
  readonly sample: Sample | undefined;
  /** UUID → device identity (from the inventory). */
  readonly identities: ReadonlyMap<string, DeviceIdentity>;
  /** UUID → holders (from `OwnershipSource.owners()`). */
  readonly owners: ReadonlyMap<string, readonly DeviceOwner[]>;
  readonly health: HealthView;
}

/** One data point: value in the instrument's unit, and its attributes. */
export interface Point {
  readonly value: number;
  readonly attributes: Attrs;
}

/** The `hw.state` values reported by `hw.status` (semconv `hw.state` members used by the health policy). */
export const HW_STATES: readonly DeviceHealthState[] = ['ok', 'degraded', 'failed'];

function baseAttributes(ctx: ObservationContext, uuid: string): Attrs {
  return ctx.identities.get(uuid)?.attributes ?? { 'hw.id': uuid, 'hw.type': 'gpu' };
}

function pointsForSeries(series: SeriesSpec, ctx: ObservationContext): Point[] {
  const out: Point[] = [];
  const push = (uuid: string, value: number, extra: Attrs): void => {
    for (const attrs of attributionSets(baseAttributes(ctx, uuid), ctx.owners.get(uuid))) {
      out.push({ value, attributes: { ...attrs, ...series.attributes, ...extra } });
    }
  };
  const source = series.source;
  switch (source.from) {
    case 'sample':
      for (const device of ctx.sample?.devices ?? []) {
        const value = readSeries(device, source, series.convert);
        if (value !== undefined) push(device.uuid, value, {});
      }
      break;
    case 'health-state':
      for (const uuid of ctx.identities.keys()) {
        const current = ctx.health.state(uuid);
        for (const state of HW_STATES) push(uuid, state === current ? 1 : 0, { 'hw.state': state });
      }
      break;
    case 'xid-counts':
      for (const uuid of ctx.identities.keys()) {
        for (const [xid, count] of ctx.health.xidCounts(uuid)) push(uuid, count, { 'error.type': String(xid) });
      }
      break;
  }
  return out;
}

/** Every data point of one instrument. An unsupported reading (undefined) yields no point, never 0. */
export function observeInstrument(spec: InstrumentSpec, ctx: ObservationContext): Point[] {
  return spec.series.flatMap((series) => pointsForSeries(series, ctx));
}
