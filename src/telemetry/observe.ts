/**
 * Pure observation: the data points of one catalogue instrument for the latest sample, the inventory,
 * device health and ownership. Each collection of an export path (own-metrics.ts) and the tests call this; it has no I/O.
 * Attribute objects are memoised (weakly) so that a series keeps one object across collections: results are
 * equal to fresh ones, and must not be mutated.
 */
import type { DeviceOwner } from '../model/types.js';
import type { DeviceHealthState, Sample } from '../gpu/types.js';
import { attributionSets, HW_TYPE_GPU, type Attrs, type DeviceIdentity, type TemperatureLocation } from './attributes.js';
import { readGpm, readSeries, type Component, type InstrumentSpec, type SeriesSpec } from './instruments.js';

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

/**
 * The attribute carrying the XID number on `hw.errors` (gpulet's; semconv has no XID attribute). The series'
 * `error.type` is `xid`: the conventions list `corrected` / `uncorrected` for GPU errors (ECC), and an XID is
 * neither, so it gets its own low-cardinality identifier (semconv `hw.errors`, note on `error.type`).
 */
export const XID_ATTRIBUTE = 'gpulet.gpu.xid';

/** The `hw.state` values reported by `hw.status` (semconv `hw.state` members used by the health policy). */
export const HW_STATES: readonly DeviceHealthState[] = ['ok', 'degraded', 'failed'];

/** Attributes of a device missing from the inventory, per component (one object each, for the caches below). */
const unknownCache = new Map<string, Attrs>();

function baseAttributes(ctx: ObservationContext, uuid: string, component: Component, series: SeriesSpec): Attrs {
  const id = ctx.identities.get(uuid);
  const location = series.attributes['hw.sensor_location'] === 'memory' ? 'memory' : ('gpu' satisfies TemperatureLocation);
  if (id !== undefined) {
    if (component === 'common') return id.commonAttributes;
    if (component === 'temperature') return id.temperatureAttributes[location];
    return id.attributes;
  }
  const key = `${uuid}\u0000${component}\u0000${location}`;
  let attrs = unknownCache.get(key);
  if (attrs === undefined) {
    attrs =
      component === 'common' ? { 'hw.id': uuid, 'hw.type': HW_TYPE_GPU }
      : component === 'temperature' ? { 'hw.id': `${uuid}-temperature-${location}`, 'hw.type': 'temperature', 'hw.parent': uuid }
      : { 'hw.id': uuid };
    if (unknownCache.size < 4096) unknownCache.set(key, attrs);
  }
  return attrs;
}

/**
 * Merged attributes `{ ...attrs, ...series.attributes, [extraName]: extraValue }`, one object per (attrs
 * object, series, extra) for as long as `attrs` lives. The base attributes of an unowned device are one object
 * per inventory, so its points keep the same attributes object from one collection to the next and the
 * per-object key cache of attribute-key.ts hits (a scrape-cost optimisation: see BENCHMARKS.md); so does an owned
 * device's, while its owners do not change ({@link cachedAttributionSets}). Never mutate the result.
 */
const mergedCache = new WeakMap<Attrs, WeakMap<SeriesSpec, Map<string, Attrs>>>();

function pointAttributes(attrs: Attrs, series: SeriesSpec, extraName: string | undefined, extraValue: string): Attrs {
  let bySeries = mergedCache.get(attrs);
  if (bySeries === undefined) {
    bySeries = new WeakMap();
    mergedCache.set(attrs, bySeries);
  }
  let byExtra = bySeries.get(series);
  if (byExtra === undefined) {
    byExtra = new Map();
    bySeries.set(series, byExtra);
  }
  const extraKey = extraName === undefined ? '' : `${extraName}\u0000${extraValue}`;
  let merged = byExtra.get(extraKey);
  if (merged === undefined) {
    merged = extraName === undefined ? { ...attrs, ...series.attributes } : { ...attrs, ...series.attributes, [extraName]: extraValue };
    byExtra.set(extraKey, merged);
  }
  return merged;
}

/**
 * `attributionSets(base, owners)`, one result per (owners array, base object) for as long as both live:
 * `OwnershipSource.owners()` returns the same arrays until a claim changes (OwnershipView caches them), so an
 * owned device keeps the same attribute objects across collections too (see {@link pointAttributes}).
 */
const setsCache = new WeakMap<readonly DeviceOwner[], WeakMap<Attrs, Attrs[]>>();

function cachedAttributionSets(base: Attrs, owners: readonly DeviceOwner[] | undefined): readonly Attrs[] {
  if (owners === undefined || owners.length === 0) return attributionSets(base, owners);
  let byBase = setsCache.get(owners);
  if (byBase === undefined) {
    byBase = new WeakMap();
    setsCache.set(owners, byBase);
  }
  let sets = byBase.get(base);
  if (sets === undefined) {
    sets = attributionSets(base, owners);
    byBase.set(base, sets);
  }
  return sets;
}

function pointsForSeries(series: SeriesSpec, ctx: ObservationContext, component: Component): Point[] {
  const out: Point[] = [];
  /** One point per attribution set of `uuid`; `extraName`/`extraValue`: one more attribute (health, XID). */
  const push = (uuid: string, value: number, extraName?: string, extraValue = ''): void => {
    for (const attrs of cachedAttributionSets(baseAttributes(ctx, uuid, component, series), ctx.owners.get(uuid))) {
      out.push({ value, attributes: pointAttributes(attrs, series, extraName, extraValue) });
    }
  };
  const source = series.source;
  switch (source.from) {
    case 'sample':
      for (const device of ctx.sample?.devices ?? []) {
        const value = readSeries(device, source, series.convert);
        if (value !== undefined) push(device.uuid, value);
      }
      break;
    case 'gpm':
      for (const device of ctx.sample?.devices ?? []) {
        const value = readGpm(device, source.field);
        if (value !== undefined) push(device.uuid, value);
      }
      break;
    case 'health-state':
      for (const uuid of ctx.identities.keys()) {
        const current = ctx.health.state(uuid);
        for (const state of HW_STATES) push(uuid, state === current ? 1 : 0, 'hw.state', state);
      }
      break;
    case 'xid-counts':
      for (const uuid of ctx.identities.keys()) {
        for (const [xid, count] of ctx.health.xidCounts(uuid)) push(uuid, count, XID_ATTRIBUTE, String(xid));
      }
      break;
  }
  return out;
}

/** Every data point of one instrument. An unsupported reading (undefined) yields no point, never 0. */
export function observeInstrument(spec: InstrumentSpec, ctx: ObservationContext): Point[] {
  return spec.series.flatMap((series) => pointsForSeries(series, ctx, spec.component ?? 'gpu-metric'));
}
