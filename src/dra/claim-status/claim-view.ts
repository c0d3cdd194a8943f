/**
 * The parts of a ResourceClaim read from the API server that the status writer needs, taken from the raw
 * object (untrusted: every field is checked for its type and every list bounded before it is used). Pure.
 *
 * Fields (k8s.io/api resource/v1): `metadata.uid`; `status.allocation.devices.results[]` (driver, pool,
 * device, shareID: what is allocated, which the API server requires every `status.devices[]` entry to name);
 * `status.devices[]` (AllocatedDeviceStatus: the entries already written, ours and other drivers').
 */
import { entryKey, type DeviceStatusEntry } from './build.js';

/** At most this many allocation results or device entries are read (the API allows 32 results per claim). */
export const MAX_LIST_ITEMS = 1024;

/** What {@link claimView} finds in a claim. */
export interface ClaimView {
  /** `metadata.uid`, or undefined when absent. */
  readonly uid: string | undefined;
  /** Keys (`entryKey`) of every allocated device (all drivers). */
  readonly allocated: ReadonlySet<string>;
  /** `driverName`'s entries in `status.devices`, by key, as read (each a JSON object). */
  readonly ours: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Their Ready condition: status and lastTransitionTime, by key (entries without one are absent). */
  readonly ready: ReadonlyMap<string, { readonly status: string; readonly lastTransitionTime: string }>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v.slice(0, MAX_LIST_ITEMS) : []);

/** The key of an object naming a device (driver, pool, device strings; shareID optional), or undefined. */
function keyOf(o: Record<string, unknown>): string | undefined {
  const driver = str(o['driver']);
  const pool = str(o['pool']);
  const device = str(o['device']);
  if (driver === undefined || pool === undefined || device === undefined) return undefined;
  const shareID = str(o['shareID']);
  return entryKey({ driver, pool, device, ...(shareID === undefined ? {} : { shareID }) });
}

/** Read what the writer needs from a raw claim (see file doc); malformed parts are ignored, never thrown on. */
export function claimView(raw: unknown, driverName: string): ClaimView {
  const metadata = isObject(raw) ? raw['metadata'] : undefined;
  const status = isObject(raw) ? raw['status'] : undefined;
  const allocation = isObject(status) ? status['allocation'] : undefined;
  const devices = isObject(allocation) ? allocation['devices'] : undefined;
  const allocated = new Set<string>();
  for (const r of list(isObject(devices) ? devices['results'] : undefined)) {
    const key = isObject(r) ? keyOf(r) : undefined;
    if (key !== undefined) allocated.add(key);
  }
  const ours = new Map<string, Record<string, unknown>>();
  const ready = new Map<string, { status: string; lastTransitionTime: string }>();
  for (const e of list(isObject(status) ? status['devices'] : undefined)) {
    if (!isObject(e) || e['driver'] !== driverName) continue;
    const key = keyOf(e);
    if (key === undefined) continue;
    ours.set(key, e);
    const cond = list(e['conditions']).find((c) => isObject(c) && c['type'] === 'Ready');
    if (isObject(cond)) {
      const s = str(cond['status']);
      const t = str(cond['lastTransitionTime']);
      if (s !== undefined && t !== undefined) ready.set(key, { status: s, lastTransitionTime: t });
    }
  }
  return { uid: isObject(metadata) ? str(metadata['uid']) : undefined, allocated, ours, ready };
}

/** JSON text with object keys sorted, so equal values compare equal whatever their key order. */
export function canonicalJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : isObject(x) ? Object.fromEntries(Object.keys(x).sort().filter((k) => x[k] !== undefined).map((k) => [k, sort(x[k])])) : x;
  return JSON.stringify(sort(v)) ?? 'null';
}

/** Whether the entries already on the claim ({@link ClaimView.ours}) are exactly `desired` (nothing to write). */
export function sameEntries(ours: ReadonlyMap<string, Readonly<Record<string, unknown>>>, desired: readonly DeviceStatusEntry[]): boolean {
  if (ours.size !== desired.length) return false;
  return desired.every((d) => {
    const have = ours.get(entryKey(d));
    return have !== undefined && canonicalJson(have) === canonicalJson(d);
  });
}
