/**
 * Version normalisation against semver.org 2.0.0 (the official regex, re-typed here) and the encodings NVML
 * documents: driver "580.95.05", compute capability major.minor, CUDA 1000*major + 10*minor.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { computeCapabilityVersion, cudaDriverVersion, isStrictSemver, normalizeVersion, SemverError } from '../../../src/dra/slices/semver.js';
import { binaryQuantity } from '../../../src/dra/slices/limits.js';
import { reference } from '../../helpers/reference.js';

/** semver.org's own valid and invalid examples (test/reference/README.md). */
const EXAMPLES = JSON.parse(readFileSync(reference('semver-org-examples.json'), 'utf8')) as { valid: string[]; invalid: string[] };

const SEMVER_ORG = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

describe('semver normalisation', () => {
  it.each([
    ['580.95.05', '580.95.5'],
    ['535.104.05', '535.104.5'],
    ['550.54.15', '550.54.15'],
    ['9.0', '9.0.0'],
    ['535', '535.0.0'],
    ['007.00.000', '7.0.0'],
  ])('%s → %s', (raw, want) => {
    const got = normalizeVersion(raw);
    expect(got).toBe(want);
    expect(SEMVER_ORG.test(got)).toBe(true);
  });

  it.each(['', '1.2.3.4', '580.95.05-rc1', 'v580', '1..2', '-1.0'])('rejects %j with SemverError', (raw) => {
    expect(() => normalizeVersion(raw)).toThrow(SemverError);
  });

  it('compute capability major.minor → major.minor.0', () => {
    expect(computeCapabilityVersion({ major: 9, minor: 0 })).toBe('9.0.0');
    expect(computeCapabilityVersion({ major: 8, minor: 6 })).toBe('8.6.0');
    expect(() => computeCapabilityVersion({ major: 9.5, minor: 0 })).toThrow(SemverError);
  });

  it('CUDA driver version integer (1000*major + 10*minor) → major.minor.0', () => {
    expect(cudaDriverVersion(13000)).toBe('13.0.0');
    expect(cudaDriverVersion(12040)).toBe('12.4.0');
    expect(cudaDriverVersion(12020)).toBe('12.2.0');
    expect(cudaDriverVersion(11080)).toBe('11.8.0');
    expect(() => cudaDriverVersion(0)).toThrow(SemverError);
    expect(() => cudaDriverVersion(Number.NaN)).toThrow(SemverError);
  });

  it('isStrictSemver accepts every valid example of semver.org at most 64 characters long and no invalid one', () => {
    for (const v of EXAMPLES.valid) expect(isStrictSemver(v), v).toBe(v.length <= 64);
    for (const v of EXAMPLES.invalid) expect(isStrictSemver(v), v).toBe(false);
  });

  it('numeric pre-release identifiers of any length, without leading zeros (semver 2.0.0 item 9)', () => {
    for (const v of ['1.0.0-10', '1.0.0-123.456', '1.0.0-7.1000', '1.0.0-1a.22b']) expect(isStrictSemver(v), v).toBe(true);
    for (const v of ['1.0.0-01', '1.0.0-7.010', '1.0.0-a..b', '1.0.0+a..b', '1.0.0-']) expect(isStrictSemver(v), v).toBe(false);
  });

  it('the 64-character limit of DeviceAttribute.version is inclusive', () => {
    const at64 = `1.0.0-${'a'.repeat(58)}`;
    expect(at64).toHaveLength(64);
    expect(isStrictSemver(at64)).toBe(true);
    expect(isStrictSemver(`${at64}b`)).toBe(false);
    // A numeric version whose normalised form exceeds the limit cannot be published.
    const long = `${'9'.repeat(30)}.${'9'.repeat(30)}.99999`;
    expect(() => normalizeVersion(long)).toThrow(/not valid semver 2\.0\.0/);
    expect(normalizeVersion(`${'9'.repeat(29)}.${'9'.repeat(29)}.9999`)).toHaveLength(64);
  });

  it('says why a version is rejected, and trims the whitespace NVML strings may carry', () => {
    expect(normalizeVersion(' 580.95.05\n')).toBe('580.95.5');
    const err = (f: () => unknown): SemverError => {
      try {
        f();
      } catch (e) {
        if (e instanceof SemverError) return e;
      }
      throw new Error('no SemverError');
    };
    expect(err(() => normalizeVersion('  ')).message).toBe('version "  ": empty');
    expect(err(() => normalizeVersion('  ')).code).toBe('SEMVER');
    expect(err(() => normalizeVersion('1.2.3.4')).message).toBe('version "1.2.3.4": more than three components');
    expect(err(() => normalizeVersion('580.x')).message).toBe('version "580.x": component "x" is not a decimal number');
    expect(err(() => normalizeVersion('580.x')).input).toBe('580.x');
    expect(err(() => computeCapabilityVersion({ major: -1, minor: 0 })).message).toBe(
      'version "-1.0": compute capability components must be non-negative integers',
    );
    expect(err(() => computeCapabilityVersion({ major: 9, minor: -1 })).message).toMatch(/compute capability/);
    expect(err(() => computeCapabilityVersion({ major: 9, minor: 0.5 })).message).toMatch(/compute capability/);
    expect(computeCapabilityVersion({ major: 0, minor: 0 })).toBe('0.0.0');
    expect(err(() => cudaDriverVersion(-5)).message).toBe(
      'version "-5": CUDA driver version must be a positive integer (1000*major + 10*minor)',
    );
  });

  it('isStrictSemver agrees with the semver.org regex and the 64-char limit', () => {
    for (const v of ['1.0.0', '1.0.0-alpha.1', '1.0.0+build.5', '01.0.0', '1.0', '1.0.0-01', `1.0.0-${'a'.repeat(60)}`]) {
      expect(isStrictSemver(v), v).toBe(SEMVER_ORG.test(v) && v.length <= 64);
    }
  });
});

describe('binaryQuantity (apimachinery canonical BinarySI form)', () => {
  // Expected strings are what `resource.NewQuantity(n, resource.BinarySI).String()` prints (Quantity doc:
  // "the exponent (or suffix) is as large as possible", "No precision is lost"; < 1024 stays plain).
  it.each([
    [0, '0'], [16, '16'], [1023, '1023'], [1024, '1Ki'], [1500, '1500'], [1536, '1536'], [3 * 1024 * 1024, '3Mi'],
  ])('%d → %s', (n, want) => {
    expect(binaryQuantity(n)).toBe(want);
  });

  it('uses the largest exact binary suffix', () => {
    expect(binaryQuantity(81559 * 1024 * 1024)).toBe('81559Mi');
    expect(binaryQuantity(80 * 1024 ** 3)).toBe('80Gi');
    expect(binaryQuantity(9856 * 1024 * 1024)).toBe('9856Mi');
    expect(binaryQuantity(2n ** 62n)).toBe('4Ei');
    expect(() => binaryQuantity(-1)).toThrow(RangeError);
    expect(() => binaryQuantity(1.5)).toThrow(RangeError);
  });

  it('stops at Ei, the largest binary suffix, and says why it refuses a number', () => {
    expect(binaryQuantity(2n ** 70n)).toBe('1024Ei');
    expect(binaryQuantity(3n * 2n ** 80n)).toBe('3145728Ei');
    expect(() => binaryQuantity(2 ** 60)).toThrow(new RangeError(`quantity ${2 ** 60} is not a safe integer`));
    expect(binaryQuantity(2n ** 60n)).toBe('1Ei');
    expect(() => binaryQuantity(-1)).toThrow(new RangeError('quantity -1 is negative'));
    expect(() => binaryQuantity(-2048n)).toThrow(new RangeError('quantity -2048 is negative'));
  });
});
