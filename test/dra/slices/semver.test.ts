/**
 * Version normalisation against semver.org 2.0.0 (the official regex, re-typed here) and the encodings NVML
 * documents: driver "580.95.05", compute capability major.minor, CUDA 1000*major + 10*minor.
 */
import { describe, expect, it } from 'vitest';
import { computeCapabilityVersion, cudaDriverVersion, isStrictSemver, normalizeVersion, SemverError } from '../../../src/dra/slices/semver.js';
import { binaryQuantity } from '../../../src/dra/slices/limits.js';

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
});
