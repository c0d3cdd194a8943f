/**
 * The parsing half of validate.ts: run a zod schema over a value the native addon returned and turn the first
 * issue into a {@link MalformedNativeValue} that names the field's path, what it should have been, and the device
 * it belongs to. Pure.
 */
import type { z } from 'zod';

/** The addon returned a value of an unexpected shape. `path` names the field, e.g. `gpus[2].uuid`. */
export class MalformedNativeValue extends Error {
  /**
   * @param path the field, e.g. `gpus[2].memoryTotal`
   * @param expected what it should have been, e.g. `a number`
   * @param device the device the field belongs to when known, e.g. `GPU GPU-5c5b…` or `gpu 1, MIG device 0`
   */
  constructor(readonly path: string, expected: string, readonly device?: string) {
    super(`native addon returned a malformed value at ${path}${device === undefined ? '' : ` of ${device}`} (expected ${expected}): rebuild it with \`npm rebuild\``);
    this.name = 'MalformedNativeValue';
  }
}

/** `path` of an issue as the field is written: `gpus[2].pci.busId`. */
function pathOf(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  return out;
}

const ARTICLE: Readonly<Record<string, string>> = { object: 'an object', array: 'an array', number: 'a number', string: 'a string' };

/** What the field should have been, worded as the error says it: `a number`, `at most 95 characters`. */
function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') return ARTICLE[issue.expected] ?? issue.expected;
  if (issue.code === 'too_big') return `at most ${String(issue.maximum)} ${issue.origin === 'array' ? 'entries' : 'characters'}`;
  return issue.message;
}

/** The raw value at `path` (before validation), or undefined. */
function at(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** The field `key` of the object at `path` in `raw` (before validation), or undefined. */
export function field(raw: unknown, path: readonly PropertyKey[], key: string): unknown {
  const o = at(raw, path);
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
}

/**
 * Parse `raw` with `schema`, or throw a {@link MalformedNativeValue} for the first issue.
 * @param root the name of the whole value in paths (`sample.devices[0]`), or `''` for top-level field names
 * @param whole the name of the whole value when the value itself is wrong (not an object)
 */
export function parse<T>(
  schema: z.ZodType<T>,
  raw: unknown,
  root: string,
  whole: string,
  device: (raw: unknown, path: readonly PropertyKey[]) => string | undefined = () => undefined,
): T {
  const res = schema.safeParse(raw);
  if (res.success) return res.data;
  const issue = res.error.issues[0];
  if (issue === undefined) throw new MalformedNativeValue(whole, 'a valid value');
  const path = issue.path;
  throw new MalformedNativeValue(path.length === 0 ? whole : pathOf(root, path), expectedOf(issue), device(raw, path));
}

/** `T` with `undefined` taken out of its (optional) fields: what {@link present} makes of it. */
export type Present<T> = { [K in keyof T]: Exclude<T[K], undefined> };

/**
 * `o` without the keys whose value is `undefined` (deleted in place: `o` is zod's fresh output): an optional
 * field is absent, never present and undefined, as the shapes of native-types.ts are declared
 * (`exactOptionalPropertyTypes`).
 */
export function present<T extends object>(o: T): Present<T> {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o as Present<T>;
}
