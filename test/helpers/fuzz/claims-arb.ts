/**
 * fast-check arbitraries of NodePrepareResources claim lists: references to real allocated claims, mutated
 * references, and adversarial `Claim` fields (empty, whitespace, NUL, `../`, unicode, bidi controls, invalid
 * UTF-8 bytes, limits ± 1 of the Kubernetes name rules, strings up to 1 MiB), in lists from empty to
 * thousands, with duplicated UIDs and unknown proto fields.
 *
 * Name rules (apimachinery validation, the independent fact the expectations use): a namespace is a
 * DNS-1123 label (≤ 63, `[a-z0-9]([-a-z0-9]*[a-z0-9])?`), a ResourceClaim name a DNS-1123 subdomain (≤ 253),
 * and object UIDs are RFC 4122 UUIDs the API server issues.
 */
import fc from 'fast-check';
import type { DraApiVersion } from '../../../src/dra/kubelet/grpc-protos.js';
import type { FieldValue, RawClaim } from './wire.js';

/** 1 MiB. */
export const MIB = 1024 * 1024;

const SPECIAL: readonly string[] = [
  '', ' ', '\t', '\n', '\r\n', '\0', 'a\0b', 'default\0', '\0default', '.', '..', '../', '../..', '../../../../../../../../tmp/gpulet-escape',
  '/', '/etc/passwd', 'a/b/c', './a', 'a\\..\\b', '%2e%2e%2f', ' default', 'default ', 'DEFAULT', 'Default', '-a', 'a-', 'a_b', 'a..b',
  'a.b', '.a', 'ñandú', '日本語', '😀', '\u202etxt.json', '\uFEFFdefault', '\u0085', '\u00a0', '\u200b', '\ud800', '\udfff',
  'x'.repeat(63), 'x'.repeat(64), 'x'.repeat(128), 'x'.repeat(129), 'x'.repeat(253), 'x'.repeat(254), 'con', 'nul', 'lpt1', '*', '?', '~',
  '${HOME}', '$(id)', '`id`', '; rm -rf /', 'null', 'undefined', '__proto__', 'constructor', 'k8s.gpu.gpulet.dev-claim_', '0', '-1',
  'DEADBEEF-0000-4000-8000-000000000000', 'deadbeef-0000-4000-8000-00000000000', 'deadbeef-0000-4000-8000-0000000000000',
  'deadbeef-0000-4000-8000-000000000000/../x', 'deadbeef-0000-4000-8000-000000000000\0',
];

/** A short adversarial string (or raw bytes, possibly invalid UTF-8). */
export const smallField: fc.Arbitrary<FieldValue> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SPECIAL) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?$/) },
  { weight: 2, arbitrary: fc.uuid() },
);

/** A big string: a unit repeated to 1 KiB … 1 MiB bytes (at most 1 MiB on the wire). */
export const hugeField: fc.Arbitrary<FieldValue> = fc
  .tuple(fc.constantFrom('a', '../', '\0', 'é', '😀', 'A-', ' ', '\ud800'), fc.integer({ min: 1024, max: MIB }))
  .map(([unit, bytes]) => ({ repeat: unit, times: Math.max(1, Math.floor(bytes / Buffer.byteLength(unit, 'utf8'))) }));

/** Override of one or more fields of a reference. */
export interface FieldOverride {
  readonly namespace?: FieldValue;
  readonly uid?: FieldValue;
  readonly name?: FieldValue;
}

/** One request entry: a reference to existing claim `index` (maybe mutated) or a free-standing claim. */
export type Entry =
  | { readonly kind: 'ref'; readonly index: number; readonly override?: FieldOverride; readonly extra?: Uint8Array | undefined }
  | { readonly kind: 'raw'; readonly claim: RawClaim };

/** An allocated claim to create before the request (namespace and name are valid Kubernetes names). */
export interface ExistingSpec {
  readonly namespace: string;
  readonly name: string;
}

/** A generated NodePrepareResources case. */
export interface ClaimsCase {
  readonly version: DraApiVersion;
  readonly existing: readonly ExistingSpec[];
  readonly entries: readonly Entry[];
}

const validNamespace = fc.oneof(
  fc.constantFrom('default', 'team-a', 'n'.repeat(63)),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/),
);
/** Valid claim-name suffix (the index prefix keeps names unique in a case). */
const validNameSuffix = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?$/).filter((s) => !s.includes('..') && !s.includes('.-') && !s.includes('-.')),
  fc.constant(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(50)}`),
);

const existingArb = fc.array(fc.tuple(validNamespace, validNameSuffix), { maxLength: 3 }).map((list) =>
  list.map(([namespace, suffix], i): ExistingSpec => ({ namespace, name: suffix === '' ? `c${i}` : `c${i}-${suffix}`.slice(0, 253).replace(/[-.]+$/, '') })),
);

const fieldArb = (hugeWeight: number): fc.Arbitrary<FieldValue> =>
  fc.oneof({ weight: 20, arbitrary: smallField }, { weight: hugeWeight, arbitrary: hugeField });

const overrideArb = (hugeWeight: number): fc.Arbitrary<FieldOverride> =>
  fc.record({ namespace: fieldArb(hugeWeight), uid: fieldArb(hugeWeight), name: fieldArb(hugeWeight) }, { requiredKeys: [] });

const extraArb = fc.option(fc.uint8Array({ minLength: 1, maxLength: 16 }), { nil: undefined });

const rawClaimArb = (hugeWeight: number): fc.Arbitrary<RawClaim> =>
  fc.record(
    { namespace: fieldArb(hugeWeight), uid: fieldArb(hugeWeight), name: fieldArb(hugeWeight) },
    { requiredKeys: [] },
  );

const entryArb = (hugeWeight: number): fc.Arbitrary<Entry> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('ref' as const), index: fc.nat(2) }) },
    {
      weight: 2,
      arbitrary: fc.record(
        { kind: fc.constant('ref' as const), index: fc.nat(2), override: overrideArb(hugeWeight), extra: extraArb },
        { requiredKeys: ['kind', 'index', 'override'] },
      ),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('raw' as const), claim: rawClaimArb(hugeWeight) }) },
  );

/** Short mixed lists (0–12 entries; a 1 MiB field now and then, at most 2 per list). */
const shortLists = fc
  .array(entryArb(1), { maxLength: 12 })
  .filter((entries) => entries.filter((e) => JSON.stringify(e).includes('"repeat"')).length <= 2);

/**
 * Long lists built from a few templates (cycled, with an index-specific UID so each is a new claim): up to
 * the bound of claims per request (200 – 256 entries, answered claim by claim) or far above it (1 000 – 4 000,
 * refused as a whole), all failing validation or naming claims the API server does not have (at most 100 of
 * the latter, each costs a GET), plus the references to real claims.
 */
const thousands: fc.Arbitrary<readonly Entry[]> = fc
  .tuple(fc.oneof(fc.integer({ min: 200, max: 256 }), fc.integer({ min: 1000, max: 4000 })), fc.array(smallField, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(2), { maxLength: 3 }))
  .map(([n, badUids, refs]) => {
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const bad = badUids[i % badUids.length] ?? '';
      const uid = typeof bad === 'string' ? `${bad}${i}` : bad;
      entries.push(
        i < 200 && i % 2 === 0
          ? { kind: 'raw', claim: { namespace: 'default', name: `ghost-${i}`, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` } }
          : { kind: 'raw', claim: { namespace: i % 3 === 0 ? 'Bad_NS' : 'default', name: `n${i}`, uid } },
      );
    }
    refs.forEach((index, k) => entries.splice((k * 997) % (entries.length + 1), 0, { kind: 'ref', index }));
    return entries;
  });

/** A whole case: API version, claims to create, and the request's entries. */
export const claimsCaseArb: fc.Arbitrary<ClaimsCase> = fc.record({
  version: fc.constantFrom<DraApiVersion>('v1', 'v1beta1'),
  existing: existingArb,
  entries: fc.oneof({ weight: 9, arbitrary: shortLists }, { weight: 1, arbitrary: thousands }),
});
