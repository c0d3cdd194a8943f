/**
 * Patch algorithms (pure): JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation of
 * Kubernetes strategic merge patch (apimachinery `pkg/util/strategicpatch`): merge patch, except that lists of
 * objects which all carry a `name` are merged by `name` (the merge key of containers, volumes, env, ...), and the
 * `$patch: replace|delete`, `$retainKeys`, `$setElementOrder/...` and `$deleteFromPrimitiveList/...` directives are
 * honoured or dropped. Functions throw `StatusError` (400/422) on malformed patches.
 */
import { StatusError, badRequest } from './status.js';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A shallow copy of `obj` without `keys`. */
export function omit<T extends object>(obj: T, keys: readonly string[]): Partial<T> {
  const out = { ...obj } as Record<string, unknown>;
  for (const k of keys) delete out[k];
  return out as Partial<T>;
}

/** Deep copy of a JSON value. */
export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** RFC 7386 JSON merge patch: `null` deletes, objects merge recursively, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

function unescapePointer(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer "${pointer}"`);
  return pointer.slice(1).split('/').map(unescapePointer);
}

function unprocessable(message: string): StatusError {
  return new StatusError(422, 'Invalid', message);
}

function getAt(doc: Json, path: string[]): Json {
  let cur: Json = doc;
  for (const token of path) {
    if (Array.isArray(cur)) {
      const i = Number(token);
      if (!/^\d+$/.test(token) || i >= cur.length) throw unprocessable(`index ${token} out of range`);
      cur = cur[i] as Json;
    } else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, token)) {
      cur = cur[token] as Json;
    } else {
      throw unprocessable(`path element "${token}" not found`);
    }
  }
  return cur;
}

/** Split a path into its parent container (in `doc`) and the last token. */
function parentOf(doc: Json, path: string[]): { parent: Json; last: string } {
  if (path.length === 0) throw unprocessable('operation on the document root is not supported');
  return { parent: getAt(doc, path.slice(0, -1)), last: path[path.length - 1] ?? '' };
}

function addAt(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return clone(value);
  const { parent, last } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (!(last === '-' || /^\d+$/.test(last)) || i > parent.length) throw unprocessable(`index ${last} out of range`);
    parent.splice(i, 0, clone(value));
  } else if (isObject(parent)) {
    parent[last] = clone(value);
  } else {
    throw unprocessable(`cannot add "${last}" to a non-container`);
  }
  return doc;
}

function removeAt(doc: Json, path: string[]): Json {
  const { parent, last } = parentOf(doc, path);
  getAt(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(last), 1);
  else if (isObject(parent)) delete parent[last];
  return doc;
}

/** JSON text with object keys sorted (equal values give equal text whatever the key order). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys((v ?? null) as Json)) ?? 'null';
}

function deepEqual(a: Json, b: Json): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObject(v)) return Object.fromEntries(Object.keys(v).filter((k) => v[k] !== undefined).sort().map((k) => [k, sortKeys(v[k] ?? null)]));
  return v;
}

/** RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`, applied in order to a copy. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') {
      throw badRequest('each json patch operation needs string "op" and "path"');
    }
    const path = parsePointer(raw['path']);
    const from = typeof raw['from'] === 'string' ? parsePointer(raw['from']) : undefined;
    const value = raw['value'];
    switch (raw['op']) {
      case 'add':
        if (value === undefined) throw badRequest('json patch "add" needs a value');
        doc = addAt(doc, path, value);
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'replace':
        if (value === undefined) throw badRequest('json patch "replace" needs a value');
        doc = addAt(removeAt(doc, path), path, value);
        break;
      case 'move': {
        if (!from) throw badRequest('json patch "move" needs "from"');
        const moved = clone(getAt(doc, from));
        doc = addAt(removeAt(doc, from), path, moved);
        break;
      }
      case 'copy':
        if (!from) throw badRequest('json patch "copy" needs "from"');
        doc = addAt(doc, path, clone(getAt(doc, from)));
        break;
      case 'test':
        if (value === undefined || !deepEqual(getAt(doc, path), value)) {
          throw unprocessable(`json patch test failed at "${raw['path']}"`);
        }
        break;
      default:
        throw badRequest(`unknown json patch op "${raw['op']}"`);
    }
  }
  return doc;
}

function isNamedList(v: Json[]): v is JsonObject[] {
  return v.length > 0 && v.every((e) => isObject(e) && typeof e['name'] === 'string');
}

function strategicList(target: Json, patch: Json[]): Json {
  if (!Array.isArray(target) || !isNamedList(patch)) return clone(patch.filter((e) => !(isObject(e) && '$patch' in e)));
  if (!isNamedList(target) && target.length > 0) return clone(patch);
  const out: JsonObject[] = clone(target as JsonObject[]);
  for (const item of patch) {
    const idx = out.findIndex((e) => e['name'] === item['name']);
    if (item['$patch'] === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) {
      out[idx] = strategicMergePatch(out[idx] ?? null, item) as JsonObject;
    } else {
      out.push(strategicMergePatch(null, item) as JsonObject);
    }
  }
  return out;
}

/** Approximate Kubernetes strategic merge patch (see module doc for what is and is not honoured). */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  if (patch['$patch'] === 'delete') return null;
  const base: JsonObject = patch['$patch'] === 'replace' || !isObject(target) ? {} : clone(target);
  const retain = patch['$retainKeys'];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const cur = base[field];
      if (Array.isArray(cur) && Array.isArray(v)) base[field] = cur.filter((e) => !v.some((d) => deepEqual(d, e)));
      continue;
    }
    if (v === null) delete base[k];
    else if (Array.isArray(v)) base[k] = strategicList(base[k] ?? null, v);
    else base[k] = strategicMergePatch(base[k] ?? null, v);
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(base)) if (!retain.includes(k)) delete base[k];
  }
  return base;
}
