/**
 * The one check of claim and pod references (src/model/claim-ref.ts), against the rules Kubernetes applies.
 *
 * Independent facts: a namespace is a DNS label (apimachinery `ValidateNamespaceName`), a ResourceClaim's and
 * a pod's name a DNS subdomain (`NameIsDNSSubdomain`, `ValidatePodName`), a UID what the API server issues,
 * `uuid.New().String()` (lower-case RFC 4122 text, here node:crypto `randomUUID`).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { objectRefSchema, parseClaimRef, parsePodRef } from '../../src/model/claim-ref.js';
import type { ClaimRef } from '../../src/model/types.js';

describe('parseClaimRef', () => {
  it('passes a valid reference, keeping only namespace, name and uid', () => {
    const uid = randomUUID();
    const raw = { namespace: 'ml', name: 'train.gpu-0', uid, extra: 'dropped' };
    const { ref, problem } = parseClaimRef(raw);
    expect(problem).toBeUndefined();
    expect(ref).toEqual({ namespace: 'ml', name: 'train.gpu-0', uid });
    const checked: ClaimRef | undefined = ref;
    expect(checked?.uid).toBe(uid);
  });

  it.each([
    ['no object', undefined, { field: 'uid', rule: 'must be a non-empty string', value: undefined }],
    ['null', null, { field: 'uid', rule: 'must be a non-empty string', value: undefined }],
    ['an empty uid', { namespace: 'ml', name: 'x', uid: '' }, { field: 'uid', rule: 'must be a non-empty string', value: '' }],
    ['a number as uid', { namespace: 'ml', name: 'x', uid: 7 }, { field: 'uid', rule: 'must be a non-empty string', value: 7 }],
    ['a uid naming an Object.prototype member', { namespace: 'ml', name: 'x', uid: 'constructor' }, { field: 'uid', value: 'constructor' }],
    ['a __proto__ uid', { namespace: 'ml', name: 'x', uid: '__proto__' }, { field: 'uid', value: '__proto__' }],
    ['a path as uid', { namespace: 'ml', name: 'x', uid: '../../etc' }, { field: 'uid', value: '../../etc' }],
    ['an upper-case UUID', { namespace: 'ml', name: 'x', uid: 'DEADBEEF-0000-4000-8000-000000000000' }, { field: 'uid' }],
    ['an empty namespace', { namespace: '', name: 'x', uid: randomUUID() }, { field: 'namespace', rule: 'must be a non-empty string', value: '' }],
    ['a dotted namespace', { namespace: 'a.b', name: 'x', uid: randomUUID() }, { field: 'namespace', value: 'a.b' }],
    ['a missing name', { namespace: 'ml', uid: randomUUID() }, { field: 'name', rule: 'must be a non-empty string', value: undefined }],
    ['an upper-case name', { namespace: 'ml', name: 'Train', uid: randomUUID() }, { field: 'name', value: 'Train' }],
  ])('refuses %s, naming the first field at fault (uid, namespace, name) and the value', (_what, raw, expected) => {
    const { ref, problem } = parseClaimRef(raw);
    expect(ref).toBeUndefined();
    expect(problem).toMatchObject(expected);
  });

  it('says which rule is broken, with the rule text of src/model/names.ts', () => {
    expect(parseClaimRef({ namespace: 'ml', name: 'x', uid: 'abc' }).problem?.rule).toBe(
      'is not a claim UID: must be a lower-case UUID (8-4-4-4-12 hex digits) as the API server issues it',
    );
    expect(parseClaimRef({ namespace: 'n'.repeat(64), name: 'x', uid: randomUUID() }).problem?.rule).toBe(
      'is not a DNS label: must be at most 63 characters (is 64)',
    );
    expect(parseClaimRef({ namespace: 'ml', name: 'a/b', uid: randomUUID() }).problem?.rule).toMatch(/^is not a DNS subdomain: must be a DNS subdomain/);
    expect(parseClaimRef({ namespace: 'ml', name: 'n'.repeat(254), uid: randomUUID() }).problem?.rule).toBe(
      'is not a DNS subdomain: must be at most 253 characters (is 254)',
    );
  });
});

describe('parsePodRef', () => {
  it('applies the same rules, calling the UID a pod UID', () => {
    const uid = randomUUID();
    expect(parsePodRef({ namespace: 'ml', name: 'trainer-0', uid }).ref).toEqual({ namespace: 'ml', name: 'trainer-0', uid });
    expect(parsePodRef({ namespace: 'ml', name: 'trainer-0', uid: 'p-1' }).problem).toMatchObject({ field: 'uid', rule: expect.stringMatching(/^is not a pod UID: /) as unknown });
    expect(parsePodRef({ namespace: 'ml', name: 'pod "a"', uid }).problem).toMatchObject({ field: 'name' });
  });
});

describe('objectRefSchema (the checkpoint\'s)', () => {
  it('accepts what parseClaimRef accepts and refuses what it refuses, naming the field', () => {
    const uid = randomUUID();
    expect(objectRefSchema.parse({ namespace: 'ml', name: 'x', uid })).toEqual({ namespace: 'ml', name: 'x', uid });
    const bad = objectRefSchema.safeParse({ namespace: 'ml', name: 'x', uid: 'constructor' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]).toMatchObject({ path: ['uid'], message: expect.stringMatching(/lower-case UUID/) as unknown });
    expect(objectRefSchema.safeParse({ namespace: 'ML', name: 'x', uid }).error?.issues[0]?.path).toEqual(['namespace']);
  });
});
