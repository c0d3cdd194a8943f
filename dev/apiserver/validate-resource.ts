/**
 * Spec validation of the `resource.k8s.io/v1` kinds (pure): a subset of kubernetes
 * `pkg/apis/resource/validation/validation.go` (v1.37), with its field paths and cause reasons, so that what the
 * real API server rejects with 422 the embedded one rejects too, naming the same fields:
 *
 * - ResourceSlice (`validateResourceSliceSpec`): driver, pool (name, generation, resourceSliceCount), exactly one
 *   of nodeName/nodeSelector/allNodes/perDeviceNodeSelection, `sharedCounters` xor `devices`, at most 128 devices
 *   (64 with taints, counters or list attributes), unique DNS-label device names, ≤ 32 attributes + capacities and
 *   ≤ 48 attribute values per device, attribute names (`validateQualifiedName`) and values (exactly one; strings
 *   ≤ 64 bytes; versions semver), taints (key, value, effect), per-device node selection only with
 *   `perDeviceNodeSelection`; on update driver, pool.name and nodeName are immutable;
 * - ResourceClaim and ResourceClaimTemplate (`validateDeviceClaim`): requests (≤ 32, unique DNS-label names,
 *   exactly one of `exactly`/`firstAvailable`, ≤ 8 subrequests), deviceClassName, selectors (≤ 32, `cel`
 *   required), allocationMode/count, tolerations, constraints (request references, attribute names), config
 *   (request references, opaque driver);
 * - DeviceClass (`validateDeviceClassSpec`): selectors and config as above.
 *
 * Not checked (listed in README "Embedded dev server vs kube-apiserver"): CEL expressions are not compiled,
 * counters and consumable-capacity request policies, binding conditions, node selector terms beyond their
 * count, opaque parameter size, status updates.
 */
import type { KubeObject } from './types.js';
import type { StatusCause } from './status.js';
import { StatusError } from './status.js';
import { cIdentifier, dns1123Label, dns1123Subdomain, duplicate, invalidValue, labelValue, notSupported, qualifiedName, required, tooLong, tooMany } from './causes.js';

type Rec = Record<string, unknown>;

function rec(v: unknown): Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** resource.k8s.io/v1 limits (k8s.io/api resource/v1 types.go). */
const MAX_DEVICES = 128;
const MAX_DEVICES_ADVANCED = 64;
const MAX_ATTRIBUTES_AND_CAPACITIES = 32;
const MAX_ATTRIBUTE_VALUES = 48;
const MAX_ID_LENGTH = 32;
const MAX_VALUE_LENGTH = 64;
const MAX_TAINTS = 16;
const MAX_REQUESTS = 32;
const MAX_CONSTRAINTS = 32;
const MAX_CONFIG = 32;
const MAX_SELECTORS = 32;
const MAX_FIRST_AVAILABLE = 8;
const MAX_POOL_NAME = 253;
const TAINT_EFFECTS = ['NoExecute', 'NoSchedule', 'None'];
const TOLERATION_OPERATORS = ['Equal', 'Exists'];
const ALLOCATION_MODES = ['All', 'ExactCount'];
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?$/;
/** `resource.Quantity` wire form (apimachinery `pkg/api/resource/quantity.go` `ParseQuantity`). */
const QUANTITY = /^[+-]?(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** `ValidateCSIDriverName` (the driver-name rule of resource.k8s.io). */
function driverName(v: unknown, path: string): StatusCause[] {
  const s = str(v);
  if (s === '') return [required(path)];
  const out: StatusCause[] = [];
  if (s.length > 63) out.push(tooLong(path, 63));
  for (const m of dns1123Subdomain(s.toLowerCase())) out.push(invalidValue(path, s, m));
  return out;
}

function label(v: unknown, path: string): StatusCause[] {
  return dns1123Label(str(v)).map((m) => invalidValue(path, v, m));
}

function subdomain(v: unknown, path: string): StatusCause[] {
  return dns1123Subdomain(str(v)).map((m) => invalidValue(path, v, m));
}

/** `validateSet`: too many (short-circuits), each item, then duplicates by key. */
function set(items: unknown[], max: number, path: string, item: (v: unknown, p: string) => StatusCause[], key: (v: unknown) => string): StatusCause[] {
  if (items.length > max) return [tooMany(path, items.length, max)];
  const out = items.flatMap((v, i) => item(v, `${path}[${i}]`));
  const seen = new Set<string>();
  items.forEach((v, i) => {
    const k = key(v);
    if (seen.has(k)) out.push(duplicate(`${path}[${i}]`, k));
    seen.add(k);
  });
  return out;
}

/** `validateSlice`: too many (short-circuits), then each item. */
function list(items: unknown[], max: number, path: string, item: (v: unknown, p: string) => StatusCause[]): StatusCause[] {
  if (items.length > max) return [tooMany(path, items.length, max)];
  return items.flatMap((v, i) => item(v, `${path}[${i}]`));
}

/** `validateQualifiedName` (attribute and capacity names); errors are reported on the map's path. */
function deviceQualifiedName(name: string, path: string): StatusCause[] {
  const parts = name.split('/');
  const cid = (id: string): StatusCause[] => [...(id.length > MAX_ID_LENGTH ? [tooLong(path, MAX_ID_LENGTH)] : []), ...cIdentifier(id).map((m) => invalidValue(path, id, m))];
  if (parts.length === 1) return cid(parts[0] ?? '');
  if (parts.length === 2) {
    const [domain = '', id = ''] = parts;
    return [
      ...(domain === '' ? [invalidValue(path, '', 'the domain must not be empty')] : driverName(domain, path)),
      ...(id === '' ? [invalidValue(path, '', 'the name must not be empty')] : cid(id)),
    ];
  }
  return []; // upstream accepts more than one slash (a TODO in validateQualifiedName)
}

function fullyQualifiedName(v: unknown, path: string): StatusCause[] {
  const s = str(v);
  const out = deviceQualifiedName(s, path);
  if (!s.includes('/')) out.push(invalidValue(path, s, 'a fully qualified name must be a domain and a name separated by a slash'));
  return out;
}

function versionValue(v: string, path: string): StatusCause[] {
  return [
    ...(SEMVER.test(v) ? [] : [invalidValue(path, v, 'must be a string compatible with semver.org spec 2.0.0')]),
    ...(v.length > MAX_VALUE_LENGTH ? [tooLong(path, MAX_VALUE_LENGTH)] : []),
  ];
}

/** `validateDeviceAttribute`. */
function attribute(v: unknown, path: string): StatusCause[] {
  const a = rec(v);
  const out: StatusCause[] = [];
  let fields = 0;
  for (const k of ['bool', 'int']) if (a[k] !== undefined && a[k] !== null) fields++;
  if (a['string'] !== undefined && a['string'] !== null) {
    fields++;
    if (str(a['string']).length > MAX_VALUE_LENGTH) out.push(tooLong(`${path}.string`, MAX_VALUE_LENGTH));
  }
  if (a['version'] !== undefined && a['version'] !== null) {
    fields++;
    out.push(...versionValue(str(a['version']), `${path}.version`));
  }
  for (const k of ['bools', 'ints', 'strings', 'versions']) {
    if (a[k] === undefined || a[k] === null) continue;
    fields++;
    const items = arr(a[k]);
    if (items.length === 0) out.push(invalidValue(`${path}.${k}`, [], 'must not be empty if specified'));
    items.forEach((item, i) => {
      if (k === 'strings' && str(item).length > MAX_VALUE_LENGTH) out.push(tooLong(`${path}.${k}[${i}]`, MAX_VALUE_LENGTH));
      if (k === 'versions') out.push(...versionValue(str(item), `${path}.${k}[${i}]`));
    });
  }
  if (fields !== 1) out.push(invalidValue(path, fields === 0 ? '' : a, 'exactly one value must be specified'));
  return out;
}

/** `validateDeviceTaint`. */
function taint(v: unknown, path: string): StatusCause[] {
  const t = rec(v);
  const out = qualifiedName(str(t['key'])).map((m) => invalidValue(`${path}.key`, t['key'] ?? '', m));
  if (str(t['value']) !== '') out.push(...labelValue(str(t['value'])).map((m) => invalidValue(`${path}.value`, t['value'], m)));
  const effect = str(t['effect']);
  if (effect === '') out.push(required(`${path}.effect`));
  else if (!TAINT_EFFECTS.includes(effect)) out.push(notSupported(`${path}.effect`, effect, TAINT_EFFECTS));
  return out;
}

function listAttributes(d: Rec): boolean {
  return Object.values(rec(d['attributes'])).some((a) => ['bools', 'ints', 'strings', 'versions'].some((k) => rec(a)[k] !== undefined));
}

/** `validateDevice` (without counters, capacity policies, binding conditions and node-allocatable resources). */
function device(v: unknown, path: string, perDeviceNodeSelection: boolean): StatusCause[] {
  const d = rec(v);
  const attrs = rec(d['attributes']);
  const capacity = rec(d['capacity']);
  const out = label(d['name'] ?? '', `${path}.name`);
  const total = Object.keys(attrs).length + Object.keys(capacity).length;
  if (total > MAX_ATTRIBUTES_AND_CAPACITIES) {
    out.push(invalidValue(path, total, `the total number of attributes and capacities must not exceed ${MAX_ATTRIBUTES_AND_CAPACITIES}`));
  }
  const values = Object.values(attrs).reduce<number>((n, a) => {
    const lists = ['bools', 'ints', 'strings', 'versions'].reduce((m, k) => m + arr(rec(a)[k]).length, 0);
    return n + (lists === 0 ? 1 : lists);
  }, 0);
  if (values > MAX_ATTRIBUTE_VALUES) out.push(invalidValue(path, values, `the total number of attribute values must not exceed ${MAX_ATTRIBUTE_VALUES}`));
  for (const [k, a] of Object.entries(attrs)) out.push(...deviceQualifiedName(k, `${path}.attributes`), ...attribute(a, `${path}.attributes[${k}]`));
  for (const k of Object.keys(capacity)) out.push(...deviceQualifiedName(k, `${path}.capacity`));
  out.push(...list(arr(d['taints']), MAX_TAINTS, `${path}.taints`, taint));
  const placed = ['nodeName', 'nodeSelector', 'allNodes'].filter((k) => d[k] !== undefined && d[k] !== null);
  if (!perDeviceNodeSelection && placed.length > 0) {
    out.push(invalidValue(path, null, '`nodeName`, `nodeSelector` and `allNodes` can only be set if `perDeviceNodeSelection` is set to true in the ResourceSlice spec'));
  } else if (perDeviceNodeSelection && placed.length !== 1) {
    const what = 'exactly one of `nodeName`, `nodeSelector`, or `allNodes` is required when `perDeviceNodeSelection` is set to true in the ResourceSlice spec';
    out.push(placed.length === 0 ? required(path, what) : invalidValue(path, `{${placed.map((p) => `\`${p}\``).join(', ')}}`, what));
  }
  return out;
}

/** 400 BadRequest for a capacity that is not a Quantity, as the real server's decoder answers. */
function checkQuantities(kind: string, spec: Rec): void {
  for (const d of arr(spec['devices'])) {
    for (const c of Object.values(rec(rec(d)['capacity']))) {
      const q = rec(c)['value'];
      if (typeof q !== 'string' || !QUANTITY.test(q)) {
        throw new StatusError(400, 'BadRequest', `${kind} in version "v1" cannot be handled as a ${kind}: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
      }
    }
  }
}

/** `validateResourceSliceSpec`; `old` is the stored spec on update. */
function resourceSliceSpec(spec: Rec, old: Rec | undefined): StatusCause[] {
  const out = driverName(spec['driver'], 'spec.driver');
  const pool = rec(spec['pool']);
  const poolName = str(pool['name']);
  if (poolName === '') out.push(required('spec.pool.name'));
  else {
    if (poolName.length > MAX_POOL_NAME) out.push(tooLong('spec.pool.name', MAX_POOL_NAME));
    for (const part of poolName.split('/')) out.push(...subdomain(part, 'spec.pool.name'));
  }
  const count = pool['resourceSliceCount'];
  if (typeof count !== 'number' || count <= 0) out.push(invalidValue('spec.pool.resourceSliceCount', count ?? 0, 'must be greater than zero'));
  const generation = pool['generation'];
  if (typeof generation === 'number' && generation < 0) out.push(invalidValue('spec.pool.generation', generation, 'must be greater than or equal to zero'));
  if (old !== undefined) {
    for (const [path, now, before] of [
      ['spec.pool.name', poolName, rec(old['pool'])['name']],
      ['spec.driver', spec['driver'], old['driver']],
      ['spec.nodeName', spec['nodeName'], old['nodeName']],
    ] as const) {
      if (JSON.stringify(now ?? null) !== JSON.stringify(before ?? null)) out.push(invalidValue(path, now ?? null, 'field is immutable'));
    }
  }
  const setFields: string[] = [];
  if (spec['nodeName'] !== undefined && spec['nodeName'] !== null) {
    if (str(spec['nodeName']) === '') out.push(invalidValue('spec.nodeName', '', 'must be either unset or set to a non-empty string'));
    else {
      setFields.push('`nodeName`');
      out.push(...subdomain(spec['nodeName'], 'spec.nodeName'));
    }
  }
  if (spec['nodeSelector'] !== undefined && spec['nodeSelector'] !== null) {
    setFields.push('`nodeSelector`');
    const terms = arr(rec(spec['nodeSelector'])['nodeSelectorTerms']);
    if (terms.length !== 1) out.push(invalidValue('spec.nodeSelector.nodeSelectorTerms', terms, 'must have exactly one node selector term'));
  }
  for (const k of ['allNodes', 'perDeviceNodeSelection']) {
    if (spec[k] === undefined || spec[k] === null) continue;
    if (spec[k] === true) setFields.push(`\`${k}\``);
    else out.push(invalidValue(`spec.${k}`, spec[k], 'must be either unset or set to true'));
  }
  const one = 'exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required';
  if (setFields.length === 0) out.push(required('spec', one));
  else if (setFields.length > 1) out.push(invalidValue('spec', `{${setFields.join(', ')}}`, `${one}, but multiple fields are set`));
  if (spec['sharedCounters'] !== undefined && spec['sharedCounters'] !== null && spec['devices'] !== undefined && spec['devices'] !== null) {
    out.push(invalidValue('spec', '', 'only one of `sharedCounters` or `devices` is allowed'));
  }
  const devices = arr(spec['devices']);
  const advanced = devices.some((d) => arr(rec(d)['taints']).length > 0 || arr(rec(d)['consumesCounters']).length > 0 || listAttributes(rec(d)));
  const perDevice = spec['perDeviceNodeSelection'] === true;
  out.push(...set(devices, advanced ? MAX_DEVICES_ADVANCED : MAX_DEVICES, 'spec.devices', (d, p) => device(d, p, perDevice), (d) => str(rec(d)['name'])));
  return out;
}

/** `validateSelector`, CEL not compiled. */
function selector(v: unknown, path: string): StatusCause[] {
  const cel = rec(v)['cel'];
  if (cel === undefined || cel === null) return [required(`${path}.cel`)];
  return str(rec(cel)['expression']) === '' ? [required(`${path}.cel.expression`)] : [];
}

/** `validateDeviceToleration`. */
function toleration(v: unknown, path: string): StatusCause[] {
  const t = rec(v);
  const out: StatusCause[] = [];
  if (str(t['key']) !== '') out.push(...qualifiedName(str(t['key'])).map((m) => invalidValue(`${path}.key`, t['key'], m)));
  const op = str(t['operator']);
  if (op === 'Exists' && str(t['value']) !== '') out.push(invalidValue(`${path}.value`, t['value'], 'must be empty for operator `Exists`'));
  else if (op === 'Equal') out.push(...labelValue(str(t['value'])).map((m) => invalidValue(`${path}.value`, t['value'] ?? '', m)));
  else if (op === '') out.push(required(`${path}.operator`));
  else if (!TOLERATION_OPERATORS.includes(op)) out.push(notSupported(`${path}.operator`, op, TOLERATION_OPERATORS));
  const effect = str(t['effect']);
  if (effect !== '' && !TAINT_EFFECTS.includes(effect)) out.push(notSupported(`${path}.effect`, effect, TAINT_EFFECTS));
  return out;
}

/** `validateExactDeviceRequest` / `validateDeviceSubRequest` (without derived attributes and admin access). */
function exactRequest(v: unknown, path: string): StatusCause[] {
  const r = rec(v);
  const cls = str(r['deviceClassName']);
  const out = cls === '' ? [required(`${path}.deviceClassName`)] : subdomain(cls, `${path}.deviceClassName`);
  out.push(...list(arr(r['selectors']), MAX_SELECTORS, `${path}.selectors`, selector));
  const mode = str(r['allocationMode']);
  const count = typeof r['count'] === 'number' ? r['count'] : 0;
  if (mode === 'All' && count !== 0) out.push(invalidValue(`${path}.count`, count, "must not be specified when allocationMode is 'All'"));
  else if (mode === 'ExactCount' && count <= 0) out.push(invalidValue(`${path}.count`, count, 'must be greater than zero'));
  else if (!ALLOCATION_MODES.includes(mode)) out.push(notSupported(`${path}.allocationMode`, mode, ALLOCATION_MODES));
  arr(r['tolerations']).forEach((t, i) => out.push(...toleration(t, `${path}.tolerations[${i}]`)));
  return out;
}

/** `validateDeviceRequest`. */
function request(v: unknown, path: string): StatusCause[] {
  const r = rec(v);
  const out = label(r['name'] ?? '', `${path}.name`);
  const first = arr(r['firstAvailable']);
  const exactly = r['exactly'] !== undefined && r['exactly'] !== null;
  if (first.length === 0 && !exactly) out.push(required(path, 'exactly one of `exactly` or `firstAvailable` is required'));
  else if (first.length > 0 && exactly) out.push(invalidValue(path, null, 'exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set'));
  else if (exactly) out.push(...exactRequest(r['exactly'], `${path}.exactly`));
  else {
    const sub = (s: unknown, p: string): StatusCause[] => [...label(rec(s)['name'] ?? '', `${p}.name`), ...exactRequest(s, p)];
    out.push(...set(first, MAX_FIRST_AVAILABLE, `${path}.firstAvailable`, sub, (s) => str(rec(s)['name'])));
  }
  return out;
}

/** `validateRequestNameRef` against the claim's requests (`req` or `req/subreq`). */
function requestRef(names: ReadonlyMap<string, ReadonlySet<string>>) {
  return (v: unknown, path: string): StatusCause[] => {
    const s = str(v);
    const segs = s.split('/');
    const what = "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'";
    if (segs.length > 2) return [invalidValue(path, s, what)];
    const out = segs.flatMap((seg) => label(seg, path));
    const subs = names.get(segs[0] ?? '');
    if (subs === undefined || (segs.length === 2 && !subs.has(segs[1] ?? ''))) out.push(invalidValue(path, s, what));
    return out;
  };
}

/** `validateDeviceConfiguration`: `opaque` with a driver name. */
function configuration(v: unknown, path: string): StatusCause[] {
  const opaque = rec(v)['opaque'];
  if (opaque === undefined || opaque === null) return [required(`${path}.opaque`)];
  return driverName(rec(opaque)['driver'], `${path}.opaque.driver`);
}

/** `validateDeviceClaim` under `path` (`spec.devices` or `spec.spec.devices`). */
function deviceClaim(v: unknown, path: string): StatusCause[] {
  const c = rec(v);
  const requests = arr(c['requests']);
  const names = new Map<string, Set<string>>(requests.map((r) => [str(rec(r)['name']), new Set(arr(rec(r)['firstAvailable']).map((s) => str(rec(s)['name'])))]));
  const ref = requestRef(names);
  const out = set(requests, MAX_REQUESTS, `${path}.requests`, request, (r) => str(rec(r)['name']));
  out.push(
    ...list(arr(c['constraints']), MAX_CONSTRAINTS, `${path}.constraints`, (k, p) => {
      const con = rec(k);
      const errs = set(arr(con['requests']), MAX_REQUESTS, `${p}.requests`, ref, str);
      if (con['matchAttribute'] !== undefined && con['matchAttribute'] !== null) errs.push(...fullyQualifiedName(con['matchAttribute'], `${p}.matchAttribute`));
      else if (con['distinctAttribute'] !== undefined && con['distinctAttribute'] !== null) errs.push(...fullyQualifiedName(con['distinctAttribute'], `${p}.distinctAttribute`));
      else errs.push(required(p, 'exactly one of "matchAttribute" or "distinctAttribute" is required, but multiple fields are set'));
      return errs;
    }),
    ...list(arr(c['config']), MAX_CONFIG, `${path}.config`, (k, p) => [...set(arr(rec(k)['requests']), MAX_REQUESTS, `${p}.requests`, ref, str), ...configuration(k, p)]),
  );
  return out;
}

/** `validateDeviceClassSpec` (without extendedResourceName). */
function deviceClassSpec(spec: Rec): StatusCause[] {
  return [...list(arr(spec['selectors']), MAX_SELECTORS, 'spec.selectors', selector), ...list(arr(spec['config']), MAX_CONFIG, 'spec.config', configuration)];
}

/**
 * Field causes for the spec of a resource.k8s.io object (empty when valid or when the kind has none here).
 * `old` is the stored object on update (ResourceClaim and ResourceClaimTemplate specs are immutable and are
 * not re-validated then, as upstream). Throws 400 BadRequest for a capacity that is no Quantity.
 */
export function validateResourceSpec(kind: string, obj: KubeObject, old?: KubeObject): StatusCause[] {
  const spec = rec(obj['spec']);
  switch (kind) {
    case 'ResourceSlice':
      checkQuantities(kind, spec);
      return resourceSliceSpec(spec, old === undefined ? undefined : rec(old['spec']));
    case 'ResourceClaim':
      return old === undefined ? deviceClaim(spec['devices'], 'spec.devices') : [];
    case 'ResourceClaimTemplate':
      return old === undefined ? deviceClaim(rec(spec['spec'])['devices'], 'spec.spec.devices') : [];
    case 'DeviceClass':
      return deviceClassSpec(spec);
    default:
      return [];
  }
}

