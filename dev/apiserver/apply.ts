/**
 * Server-side apply of associative lists (`+listType=map`), for the lists where it matters to gpulet (pure).
 * The embedded server applies everything else as a strategic merge patch (patch.ts); a list-map is merged
 * by its keys instead, with ownership per field manager, as structured-merge-diff does for the real API server
 * (https://kubernetes.io/docs/reference/using-api/server-side-apply/):
 * - an applied item replaces the fields it sets of the item with the same key (or is added);
 * - an item the manager applied before and leaves out now is removed, unless another manager applied it too;
 * - items other managers applied, or wrote by update, are kept.
 * Ownership is kept in `metadata.managedFields` (manager, operation `Apply`, subresource, `fieldsV1` with the
 * list's items as `k:{...}` keys, as the real server records them), so a later apply can tell what it owned.
 *
 * Lists known (k8s.io/api v0.37.2 resource/v1 ResourceClaimStatus.Devices: `+listMapKey=driver`, `device`,
 * `pool`, `shareID`): ResourceClaim `status.devices`. Only what gpulet applies is modelled: no conflicts
 * (gpulet applies with `force=true`), no ownership of fields outside these lists.
 */
import type { Json } from './patch.js';

type JsonObject = { [key: string]: Json };
const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A list-map: its path from the object root and its key fields. */
interface ListMap {
  readonly path: readonly string[];
  readonly keys: readonly string[];
}

/** The list-maps of each kind (see file doc). */
const LIST_MAPS: Readonly<Record<string, readonly ListMap[]>> = {
  ResourceClaim: [{ path: ['status', 'devices'], keys: ['driver', 'device', 'pool', 'shareID'] }],
};

/** The list-maps of `kind` (empty when none is modelled). */
export function listMapsOf(kind: string): readonly ListMap[] {
  return LIST_MAPS[kind] ?? [];
}

/** `k:{...}` key of an item, as managedFields' fieldsV1 spells it (key fields present, sorted). */
function itemKey(item: JsonObject, keys: readonly string[]): string {
  const fields = Object.fromEntries(keys.filter((k) => item[k] !== undefined).sort().map((k) => [k, item[k]!]));
  return `k:${JSON.stringify(fields)}`;
}

function getPath(obj: Json, path: readonly string[]): Json | undefined {
  let cur: Json | undefined = obj;
  for (const p of path) cur = isObject(cur) ? cur[p] : undefined;
  return cur;
}

function setPath(obj: JsonObject, path: readonly string[], value: Json | undefined): void {
  let cur: JsonObject = obj;
  for (const p of path.slice(0, -1)) {
    const next = cur[p];
    if (!isObject(next)) {
      if (value === undefined) return;
      cur[p] = {};
    }
    cur = cur[p] as JsonObject;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

/** `f:a` → `f:b` → ... → the set of item keys, in a fieldsV1 tree. */
function ownedKeys(fieldsV1: Json | undefined, path: readonly string[]): Set<string> {
  const node = getPath(fieldsV1 ?? null, path.map((p) => `f:${p}`));
  return new Set(isObject(node) ? Object.keys(node).filter((k) => k.startsWith('k:')) : []);
}

interface ManagedFieldsEntry extends JsonObject {
  manager: string;
  operation: string;
}

/** managedFields of `meta` (entries that are objects with a manager). */
function managedFields(meta: JsonObject): ManagedFieldsEntry[] {
  const mf = meta['managedFields'];
  return Array.isArray(mf) ? mf.filter((e): e is ManagedFieldsEntry => isObject(e) && typeof e['manager'] === 'string') : [];
}

/** What {@link applyListMaps} returns. */
export interface ListMapApply {
  /** `applied` without the list-maps (to be merged as a strategic merge patch). */
  readonly rest: JsonObject;
  /** Sets the list-maps on the merged object, and the manager's managedFields entry. */
  finish(merged: JsonObject, now: string): void;
}

/**
 * Split an apply of `applied` onto `current` (both whole objects) by `manager` on `subresource` ('' for the
 * main resource): the list-maps are merged here (see file doc), the rest is returned for the caller to merge.
 */
export function applyListMaps(kind: string, current: JsonObject, applied: JsonObject, manager: string, subresource: string): ListMapApply {
  const maps = listMapsOf(kind);
  const rest = structuredClone(applied);
  const meta = isObject(current['metadata']) ? current['metadata'] : {};
  const entries = managedFields(meta);
  const mine = entries.find((e) => e.manager === manager && e.operation === 'Apply' && (e['subresource'] ?? '') === subresource);
  const others = entries.filter((e) => e !== mine);
  const results: Array<{ map: ListMap; list: JsonObject[] | undefined; owned: Set<string> }> = [];
  for (const map of maps) {
    const before = getPath(current, map.path);
    const list: JsonObject[] = Array.isArray(before) ? before.filter(isObject).map((i) => structuredClone(i)) : [];
    const appliedList = getPath(applied, map.path);
    setPath(rest, map.path, undefined);
    const items = Array.isArray(appliedList) ? appliedList.filter(isObject) : [];
    const nowOwned = new Set(items.map((i) => itemKey(i, map.keys)));
    const ownedByOthers = new Set(others.flatMap((e) => [...ownedKeys(e['fieldsV1'], map.path)]));
    // Items the manager owned and leaves out now: removed unless another manager owns them too.
    const dropped = [...ownedKeys(mine?.['fieldsV1'], map.path)].filter((k) => !nowOwned.has(k) && !ownedByOthers.has(k));
    let next = list.filter((i) => !dropped.includes(itemKey(i, map.keys)));
    for (const item of items) {
      const key = itemKey(item, map.keys);
      const at = next.findIndex((i) => itemKey(i, map.keys) === key);
      if (at >= 0) next[at] = { ...next[at], ...structuredClone(item) };
      else next = [...next, structuredClone(item)];
    }
    results.push({ map, list: next.length === 0 ? undefined : next, owned: nowOwned });
  }
  return {
    rest,
    finish(merged, now) {
      for (const { map, list } of results) setPath(merged, map.path, list);
      const fieldsV1: JsonObject = {};
      for (const { map, owned } of results) {
        if (owned.size === 0) continue;
        setPath(fieldsV1, map.path.map((p) => `f:${p}`), Object.fromEntries([...owned].map((k) => [k, {}])));
      }
      const entry: JsonObject = {
        manager,
        operation: 'Apply',
        apiVersion: typeof merged['apiVersion'] === 'string' ? merged['apiVersion'] : '',
        time: now,
        fieldsType: 'FieldsV1',
        fieldsV1,
        ...(subresource === '' ? {} : { subresource }),
      };
      const mergedMeta = isObject(merged['metadata']) ? merged['metadata'] : {};
      mergedMeta['managedFields'] = [...others, entry];
      merged['metadata'] = mergedMeta;
    },
  };
}
