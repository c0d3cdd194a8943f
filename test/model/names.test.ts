/**
 * The name rules of src/model/names.ts against Kubernetes' own cases.
 *
 * Independent facts:
 * - DNS label, DNS subdomain, C identifier, qualified (label) name, label value: the good and bad values of
 *   k8s.io/apimachinery `pkg/util/validation/validation_test.go` (`TestIsDNS1123Label`,
 *   `TestIsDNS1123Subdomain`, `TestIsCIdentifier`, `TestIsQualifiedName`, `TestIsValidLabelValue`).
 * - Driver and pool names: resource.k8s.io/v1 `DriverNameMaxLength` = 63, `PoolNameMaxLength` = 253, pool
 *   names are `/`-separated DNS subdomains; device attribute names: `DeviceMaxIDLength` = 32,
 *   `DeviceMaxDomainLength` = 63 (k8s.io/api/resource/v1 types.go).
 * - Object UIDs: the API server issues `uuid.New().String()` (google/uuid, lower-case RFC 4122 text form).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  cIdentifierProblem, DEFAULT_DRIVER_NAME, deviceQualifiedNameProblem, dnsLabelProblem, dnsLabelSchema, dnsSubdomainProblem,
  dnsSubdomainSchema, driverNameProblem, driverNameSchema, isDnsLabel, isDnsSubdomain, isDriverName, isObjectUid, isPoolName,
  labelNameProblem, labelValueProblem, objectUidProblem, objectUidSchema, poolNameOf, poolNameProblem, poolNameSchema,
} from '../../src/model/names.js';

const r = (c: string, n: number): string => c.repeat(n);

describe('DNS label (apimachinery TestIsDNS1123Label)', () => {
  const good = ['a', 'ab', 'abc', 'a1', 'a-1', 'a--1--2--b', '0', '01', '012', '1a', '1-a', '1--a--b--2', r('a', 63)];
  const bad = [
    '', 'A', 'ABC', 'aBc', 'A1', 'A-1', '1-A', '-', 'a-', '-a', '1-', '-1', '_', 'a_', '_a', 'a_b', '1_', '_1', '1_2',
    '.', 'a.', '.a', 'a.b', '1.', '.1', '1.2', ' ', 'a ', ' a', 'a b', '1 ', ' 1', '1 2', r('a', 64),
  ];
  it.each(good)('accepts %j', (s) => {
    expect(dnsLabelProblem(s)).toBeUndefined();
    expect(isDnsLabel(s)).toBe(true);
  });
  it.each(bad)('rejects %j', (s) => {
    expect(dnsLabelProblem(s)).toMatch(/.{10}/);
    expect(isDnsLabel(s)).toBe(false);
  });
  it('says why: empty, too long, alphabet', () => {
    expect(dnsLabelProblem('')).toBe('must not be empty');
    expect(dnsLabelProblem(r('a', 64))).toBe('must be at most 63 characters (is 64)');
    expect(dnsLabelProblem('Bad_NS')).toMatch(/DNS label/);
  });
});

describe('DNS subdomain (apimachinery TestIsDNS1123Subdomain)', () => {
  const good = [
    'a', 'ab', 'abc', 'a1', 'a-1', 'a--1--2--b', '0', '01', '012', '1a', '1-a', '1--a--b--2',
    'a.a', 'ab.a', 'abc.a', 'a1.a', 'a-1.a', 'a--1--2--b.a', 'a.1', 'ab.1', 'abc.1', 'a1.1', 'a-1.1', 'a--1--2--b.1',
    '0.a', '01.a', '012.a', '1a.a', '1-a.a', '0.1', '01.1', '012.1', '1a.1', '1-a.1', '1--a--b--2.1',
    'a.b.c.d.e', 'aa.bb.cc.dd.ee', '1.2.3.4.5', '11.22.33.44.55', r('a', 253),
    // A part longer than 63 is still a subdomain: apimachinery bounds the whole name only.
    `${r('a', 64)}.b`,
  ];
  const bad = [
    '', 'A', 'ABC', 'aBc', 'A1', 'A-1', '1-A', '-', 'a-', '-a', '1-', '-1', '_', 'a_', '_a', 'a_b', '1_', '_1', '1_2',
    '.', 'a.', '.a', 'a..b', '1.', '.1', '1..2', ' ', 'a ', ' a', 'a b', '1 ', ' 1', '1 2',
    'A.a', 'aB.a', 'ab.A', 'A1.a', 'a1.A', 'A.1', 'aB.1', 'A1.1', '1A.1', '0.A', '01.A', '012.A', '1A.a', '1a.A',
    'A.B.C.D.E', 'AA.BB.CC.DD.EE', 'a.B.c.d.e', 'aa.bB.cc.dd.ee', 'a@b', 'a,b', 'a;b', 'a:b', 'a%b', 'a?b', 'a$b',
    r('a', 254),
  ];
  it.each(good)('accepts %j', (s) => {
    expect(dnsSubdomainProblem(s)).toBeUndefined();
    expect(isDnsSubdomain(s)).toBe(true);
  });
  it.each(bad)('rejects %j', (s) => {
    expect(dnsSubdomainProblem(s)).toMatch(/.{10}/);
    expect(isDnsSubdomain(s)).toBe(false);
  });
  it('takes a smaller maximum', () => {
    expect(dnsSubdomainProblem(r('a', 63), 63)).toBeUndefined();
    expect(dnsSubdomainProblem(r('a', 64), 63)).toBe('must be at most 63 characters (is 64)');
  });
});

describe('driver name (DNS subdomain ≤ DriverNameMaxLength = 63, lower case)', () => {
  it.each(['gpu.gpulet.dev', 'gpu.nvidia.com', 'a', `${r('a', 59)}.dev`])('accepts %j', (s) => {
    expect(driverNameProblem(s)).toBeUndefined();
    expect(isDriverName(s)).toBe(true);
  });
  it.each(['', '../gpu.gpulet.dev', 'gpu/gpulet.dev', 'Gpu.Example', 'GPU_Driver', `${r('a', 60)}.dev`, r('x', 64)])('rejects %j', (s) => {
    expect(driverNameProblem(s)).toMatch(/.{10}/);
    expect(isDriverName(s)).toBe(false);
  });
  it('the default is one', () => {
    expect(DEFAULT_DRIVER_NAME).toBe('gpu.gpulet.dev');
    expect(isDriverName(DEFAULT_DRIVER_NAME)).toBe(true);
  });
});

describe('pool name ("/"-separated DNS subdomains, ≤ PoolNameMaxLength = 253)', () => {
  it.each(['node-a', 'a/b', 'rack-1.example.com/node-7', r('a', 253), `${r('a', 126)}/${r('b', 126)}`])('accepts %j', (s) => {
    expect(poolNameProblem(s)).toBeUndefined();
    expect(isPoolName(s)).toBe(true);
  });
  it.each(['', '/', 'a/', '/a', 'a//b', 'Node-A', 'a/B', 'a b', r('a', 254), `${r('a', 127)}/${r('b', 126)}`])('rejects %j', (s) => {
    expect(poolNameProblem(s)).toMatch(/.{10}/);
    expect(isPoolName(s)).toBe(false);
  });
  it('says why: empty as a whole, or which part breaks the subdomain rule (quoting at most 64 of its characters)', () => {
    expect(poolNameProblem('')).toBe('must not be empty');
    expect(poolNameProblem('a//b')).toBe('must be "/"-separated DNS subdomains: "" must not be empty');
    expect(poolNameProblem(`rack-1/${r('B', 100)}`)).toBe(
      `must be "/"-separated DNS subdomains: "${r('B', 64)}" must be a DNS subdomain (dot-separated DNS labels of lower-case alphanumerics and "-")`,
    );
  });
  it('a node name is a pool name: poolNameOf is the identity', () => {
    for (const node of ['node-a', r('a', 253), `${r('a', 63)}.example.com`]) {
      const pool = poolNameOf(dnsSubdomainSchema.parse(node));
      expect(pool).toBe(node);
      expect(isPoolName(pool)).toBe(true);
    }
  });
});

describe('object UID (lower-case RFC 4122 UUID, as the API server issues)', () => {
  it('accepts what randomUUID and the API server produce', () => {
    for (let i = 0; i < 20; i++) expect(objectUidProblem(randomUUID())).toBeUndefined();
    expect(isObjectUid('0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0001')).toBe(true);
  });
  it.each([
    '', 'abc', 'u-ns', '../../etc', '__proto__', 'DEADBEEF-0000-4000-8000-000000000000', 'deadbeef-0000-4000-8000-00000000000',
    'deadbeef-0000-4000-8000-0000000000000', 'deadbeef00004000800000000000000', 'deadbeef-0000-4000-8000-000000000000/../x',
    'deadbeef-0000-4000-8000-000000000000\0', ' deadbeef-0000-4000-8000-000000000000', 'gggggggg-0000-4000-8000-000000000000',
  ])('rejects %j', (s) => {
    expect(objectUidProblem(s)).toMatch(/lower-case UUID/);
    expect(isObjectUid(s)).toBe(false);
  });
});

describe('C identifier (apimachinery TestIsCIdentifier)', () => {
  const good = ['a', 'ab', 'abc', 'a1', '_a', 'a_', 'a_b', 'a_1', 'a__1__2__b', '__abc_123', 'A', 'AB', 'AbC', 'A1', '_A', 'A_', 'A_B', 'A_1', 'A__1__2__B', '__123_ABC'];
  const bad = ['', '1', '123', '1a', '-', 'a-', '-a', '1-', '-1', '1_', '1_2', '.', 'a.', '.a', 'a.b', '1.', '.1', '1.2', ' ', 'a ', ' a', 'a b', '1 ', ' 1', '1 2', '#a#'];
  it.each(good)('accepts %j', (s) => expect(cIdentifierProblem(s, 100)).toBeUndefined());
  it.each(bad)('rejects %j', (s) => expect(cIdentifierProblem(s, 100)).toBe('must be a C identifier'));
  it('bounds the length', () => expect(cIdentifierProblem(r('a', 33), 32)).toBe('must be at most 32 characters (is 33)'));
});

describe('label name (apimachinery TestIsQualifiedName)', () => {
  const good = [
    'simple', 'now-with-dashes', '1-starts-with-num', '1234', 'simple/simple', 'now-with-dashes/simple', 'now-with-dashes/now-with-dashes',
    'now.with.dots/simple', 'now-with.dashes-and.dots/simple', '1-num.2-num/3-num', '1234/5678', '1.2.3.4/5678', 'Uppercase_Is_OK_123',
    'example.com/Uppercase_Is_OK_123', 'requests.storage-foo', r('a', 63), `${r('a', 253)}/${r('b', 63)}`,
  ];
  const bad = [
    'nospecialchars%^=@', 'cantendwithadash-', '-cantstartwithadash-', 'only/one/slash', 'Example.com/abc', 'example_com/abc',
    'example.com/', '/simple', r('a', 64), `${r('a', 254)}/abc`,
  ];
  it.each(good)('accepts %j', (s) => expect(labelNameProblem(s)).toBeUndefined());
  it.each(bad)('rejects %j', (s) => expect(labelNameProblem(s)).toMatch(/.{10}/));
});

describe('label value (apimachinery TestIsValidLabelValue)', () => {
  // One alphanumeric is a value too: apimachinery's `labelValueFmt` is `(` + `labelKeyFmt` + `)?` with `labelKeyFmt`
  // = `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]` (pkg/api/validate/content/kube.go); one `-`, `_` or `.` is not.
  const good = ['simple', 'now-with-dashes', '1-starts-with-num', 'end-with-num-1', '1234', r('a', 63), '', 'a', 'Z', '7'];
  const bad = ['nospecialchars%^=@', 'Tama-nui-te-rā.is.Māori.sun', '\\backslashes\\are\\bad', '-starts-with-dash', 'ends-with-dash-', '.starts.with.dot', 'ends.with.dot.', r('a', 64), '-', '_', '.'];
  it.each(good)('accepts %j', (s) => expect(labelValueProblem(s)).toBeUndefined());
  it.each(bad)('rejects %j', (s) => expect(labelValueProblem(s)).toMatch(/.{10}/));
});

describe('device attribute / capacity name (resource.k8s.io QualifiedName)', () => {
  it.each(['memory', 'productName', 'cudaComputeCapability', 'resource.kubernetes.io/pcieRoot', 'gpu.gpulet.dev/type', r('a', 32), `${r('d', 63)}/x`])('accepts %j', (s) => {
    expect(deviceQualifiedNameProblem(s)).toBeUndefined();
  });
  it.each([
    ['', /identifier must be a C identifier/],
    ['1gpu', /identifier must be a C identifier/],
    ['has-dash', /identifier must be a C identifier/],
    [r('a', 33), /identifier must be at most 32 characters \(is 33\)/],
    [`${r('d', 64)}/x`, /domain must be at most 63 characters/],
    ['Bad.Domain/x', /domain must be a DNS subdomain/],
    ['/x', /domain must not be empty/],
    ['a.b/', /identifier must be a C identifier/],
  ])('rejects %j', (s, why) => expect(deviceQualifiedNameProblem(s)).toMatch(why));
});

describe('zod schemas: where structured input enters', () => {
  it('pass valid values through unchanged and reject invalid ones with the rule as the message', () => {
    expect(dnsLabelSchema.parse('default')).toBe('default');
    expect(dnsSubdomainSchema.parse('node-a.example.com')).toBe('node-a.example.com');
    expect(driverNameSchema.parse('gpu.gpulet.dev')).toBe('gpu.gpulet.dev');
    expect(poolNameSchema.parse('a/b')).toBe('a/b');
    const uid = randomUUID();
    expect(objectUidSchema.parse(uid)).toBe(uid);
    const cases: [{ safeParse(v: unknown): { success: boolean; error?: { issues: { message: string }[] } } }, unknown, RegExp][] = [
      [dnsLabelSchema, 'Bad_NS', /DNS label/],
      [dnsSubdomainSchema, 'a..b', /DNS subdomain/],
      [driverNameSchema, r('x', 64), /at most 63/],
      [poolNameSchema, 'a//b', /"\/"-separated/],
      [objectUidSchema, 'UPPER', /lower-case UUID/],
      [objectUidSchema, 7, /string/],
    ];
    for (const [schema, value, message] of cases) {
      const res = schema.safeParse(value);
      expect(res.success, String(value)).toBe(false);
      expect(res.error?.issues[0]?.message).toMatch(message);
    }
  });
  it("report a broken rule as one zod 'custom' issue (a refinement's code) at the value, with the rule's words", () => {
    expect(dnsLabelSchema.safeParse('').error?.issues).toEqual([{ code: 'custom', path: [], message: 'must not be empty' }]);
    expect(poolNameSchema.safeParse('').error?.issues).toEqual([{ code: 'custom', path: [], message: 'must not be empty' }]);
  });
});
