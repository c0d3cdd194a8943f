/**
 * Validation of the kubelet's claim references where they enter (NodePrepareResources /
 * NodeUnprepareResources `claims`), with the rules of src/model/names.ts.
 *
 * Independent facts: a ResourceClaim's namespace is a DNS label and its name a DNS subdomain (apimachinery
 * `ValidateNamespaceName` / `NameIsDNSSubdomain`); its `metadata.uid` is what the API server issued,
 * `uuid.New().String()` (lower-case RFC 4122 text, here node:crypto `randomUUID`); the response map holds one
 * entry per claim UID of the request (kubernetes/kubelet pkg/apis/dra/v1 api.proto).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildPrepareResponse, validateClaims } from '../../../src/dra/kubelet/grpc-dra-mapping.js';
import { isDnsLabel, isDnsSubdomain, isObjectUid } from '../../../src/model/names.js';
import type { ClaimRef } from '../../../src/model/types.js';

describe('validateClaims', () => {
  it('passes well-formed references through, checked and de-duplicated, in request order', () => {
    const a = { namespace: 'default', name: 'claim-a', uid: randomUUID() };
    const b = { namespace: 'n'.repeat(63), name: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, uid: randomUUID() };
    const v = validateClaims([a, b, { ...a }]);
    expect(v.valid).toEqual([a, b]);
    expect(v.errors.size).toBe(0);
    expect(v.uids).toEqual([a.uid, b.uid]);
    for (const ref of v.valid) expect(isDnsLabel(ref.namespace) && isDnsSubdomain(ref.name) && isObjectUid(ref.uid)).toBe(true);
    // The checked reference is a ClaimRef, what the preparer takes; the wire's plain strings are not one.
    const asRef: readonly ClaimRef[] = v.valid;
    expect(asRef).toHaveLength(2);
    // @ts-expect-error a plain object of strings is not a ClaimRef: only the entry check makes one
    const unchecked: ClaimRef = a;
    expect(unchecked).toBe(a);
  });

  it.each([
    ['an empty UID', { namespace: 'default', name: 'x', uid: '' }, /field "uid" must be a non-empty string/],
    ['a UID that is not a UUID', { namespace: 'default', name: 'x', uid: 'claim-1' }, /field "uid" is not a claim UID: must be a lower-case UUID/],
    ['an upper-case UUID', { namespace: 'default', name: 'x', uid: 'DEADBEEF-0000-4000-8000-000000000000' }, /field "uid" is not a claim UID/],
    ['a path in the UID', { namespace: 'default', name: 'x', uid: '../../etc' }, /field "uid" is not a claim UID/],
    ['a UUID with a suffix', { namespace: 'default', name: 'x', uid: 'deadbeef-0000-4000-8000-000000000000/..' }, /field "uid"/],
    ['a UID naming an Object.prototype member', { namespace: 'default', name: 'x', uid: 'constructor' }, /field "uid" is not a claim UID/],
    ['a __proto__ UID', { namespace: 'default', name: 'x', uid: '__proto__' }, /field "uid" is not a claim UID/],
    ['an empty namespace', { namespace: '', name: 'x', uid: randomUUID() }, /field "namespace" must be a non-empty string/],
    ['an upper-case namespace', { namespace: 'Default', name: 'x', uid: randomUUID() }, /field "namespace" is not a DNS label: must be a DNS label/],
    ['a 64-character namespace', { namespace: 'n'.repeat(64), name: 'x', uid: randomUUID() }, /field "namespace" is not a DNS label: must be at most 63 characters \(is 64\)/],
    ['a dotted namespace', { namespace: 'a.b', name: 'x', uid: randomUUID() }, /field "namespace" is not a DNS label/],
    ['an empty name', { namespace: 'default', name: '', uid: randomUUID() }, /field "name" must be a non-empty string/],
    ['a name with "/"', { namespace: 'default', name: 'a/b', uid: randomUUID() }, /field "name" is not a DNS subdomain/],
    ['a 254-character name', { namespace: 'default', name: 'n'.repeat(254), uid: randomUUID() }, /field "name" is not a DNS subdomain: must be at most 253 characters \(is 254\)/],
  ])('refuses %s with an error naming the position, the field and the rule', (_what, claim, message) => {
    const good = { namespace: 'default', name: 'good', uid: randomUUID() };
    const v = validateClaims([good, claim]);
    expect(v.valid).toEqual([good]);
    expect(v.errors.get(claim.uid)).toMatch(/^invalid claim in request \(claims\[1\]\): /);
    expect(v.errors.get(claim.uid)).toMatch(message);
    expect(v.uids).toEqual([good.uid, claim.uid]);
  });

  it('refuses a UID repeated with another identity, and non-objects', () => {
    const uid = randomUUID();
    const v = validateClaims([{ namespace: 'a', name: 'x', uid }, { namespace: 'b', name: 'x', uid }, null, 7]);
    expect(v.valid).toEqual([]);
    expect(v.errors.get(uid)).toMatch(/claims\[1\].*duplicates the UID of claim a\/x/);
    expect(v.errors.get('')).toMatch(/claims\[2\]\): field "uid" must be a non-empty string/);
    expect(validateClaims('not a list')).toEqual({ valid: [], errors: new Map(), uids: [] });
  });

  it('echoes a huge value cut short, so the answer stays far below gRPC\'s 4 MiB limit', () => {
    const uid = '\0'.repeat(600_000);
    const v = validateClaims([{ namespace: 'default', name: 'x', uid }]);
    const res = buildPrepareResponse(v, undefined, 'v1');
    expect(res.claims[uid]?.error).toMatch(/… \(600000 characters\)$/);
    expect(res.claims[uid]?.error.length).toBeLessThan(1000);
  });
});
