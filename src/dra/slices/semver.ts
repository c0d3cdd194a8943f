/**
 * Version attributes of ResourceSlice devices. The API (resource.k8s.io/v1 `DeviceAttribute.version`) requires a
 * strict semantic version per semver.org 2.0.0, at most 64 characters. NVML reports versions in other shapes:
 * driver `580.95.05` (leading zero), compute capability `9.0` (two parts), CUDA driver `13000` (an integer).
 * Pure functions; they throw {@link SemverError} on input that cannot be made a valid version.
 */
import { GpuletError } from '../../errors.js';

/** A raw version could not be normalised to semver 2.0.0. `input` is the offending value. */
export class SemverError extends GpuletError {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super('SEMVER', `version ${JSON.stringify(input)}: ${reason}`);
  }
}

/**
 * The official semver 2.0.0 regular expression, from https://semver.org ("Is there a suggested regular
 * expression (RegEx) to check a SemVer string?", the variant with numbered capture groups).
 */
export const SEMVER_REGEX =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

/** Maximum length of a version attribute value (resource.k8s.io/v1 `DeviceAttribute.version`). */
export const MAX_VERSION_LENGTH = 64;

/** True when `value` is a strict semver 2.0.0 string of at most 64 characters. */
export function isStrictSemver(value: string): boolean {
  return value.length <= MAX_VERSION_LENGTH && SEMVER_REGEX.test(value);
}

/** Parse a decimal component, dropping leading zeros (`05` → 5). Throws on anything but digits. */
function component(input: string, part: string): string {
  if (!/^\d+$/.test(part)) throw new SemverError(input, `component ${JSON.stringify(part)} is not a decimal number`);
  const n = BigInt(part);
  return n.toString();
}

/**
 * Normalise a dotted numeric version to semver 2.0.0: leading zeros dropped, missing minor/patch filled with 0.
 * `580.95.05` → `580.95.5`; `9.0` → `9.0.0`; `535` → `535.0.0`. This is what NVIDIA's DRA driver publishes
 * (it runs `Masterminds/semver.MustParse(v).String()`, which is lenient the same way).
 * @throws SemverError for empty input, non-numeric components or more than three components.
 */
export function normalizeVersion(raw: string): string {
  const input = raw.trim();
  if (input === '') throw new SemverError(raw, 'empty');
  const parts = input.split('.');
  if (parts.length > 3) throw new SemverError(raw, 'more than three components');
  const [major = '0', minor = '0', patch = '0'] = parts.map((p) => component(raw, p));
  const out = `${major}.${minor}.${patch}`;
  if (!isStrictSemver(out)) throw new SemverError(raw, `normalised form ${out} is not valid semver 2.0.0`);
  return out;
}

/**
 * CUDA compute capability (`nvmlDeviceGetCudaComputeCapability` major/minor) as a version: 9.0 → `9.0.0`.
 * @throws SemverError when a component is negative or not an integer.
 */
export function computeCapabilityVersion(cc: { readonly major: number; readonly minor: number }): string {
  if (!Number.isSafeInteger(cc.major) || !Number.isSafeInteger(cc.minor) || cc.major < 0 || cc.minor < 0) {
    throw new SemverError(`${cc.major}.${cc.minor}`, 'compute capability components must be non-negative integers');
  }
  return normalizeVersion(`${cc.major}.${cc.minor}`);
}

/**
 * CUDA driver version as `nvmlSystemGetCudaDriverVersion_v2` encodes it (1000 × major + 10 × minor) to a
 * version: 13000 → `13.0.0`, 12040 → `12.4.0`, 12020 → `12.2.0`. The patch level is not encoded (always 0),
 * as in NVIDIA's DRA driver (`cuda.Major(v).Minor(v)`).
 * @throws SemverError when `encoded` is not a positive safe integer.
 */
export function cudaDriverVersion(encoded: number): string {
  if (!Number.isSafeInteger(encoded) || encoded <= 0) {
    throw new SemverError(String(encoded), 'CUDA driver version must be a positive integer (1000*major + 10*minor)');
  }
  const major = Math.floor(encoded / 1000);
  const minor = Math.floor((encoded % 1000) / 10);
  return normalizeVersion(`${major}.${minor}.0`);
}
