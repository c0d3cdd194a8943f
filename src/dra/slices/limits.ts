/**
 * Validation limits of resource.k8s.io/v1 ResourceSlices (kubernetes `pkg/apis/resource/validation`, mirrored in
 * the OpenAPI descriptions and docs/contracts.md §4) and the canonical Quantity form the API server stores.
 * Pure helpers used by the slice builder; each returns a reason string (or undefined when valid) so the caller
 * can name the device and attribute in its error.
 */

/** Devices per slice (`ResourceSliceMaxDevices`). */
export const MAX_DEVICES_PER_SLICE = 128;
/** Devices per slice when any device has taints, consumesCounters (`ResourceSliceMaxDevicesWithTaintsOrConsumesCounters`). */
export const MAX_DEVICES_PER_SLICE_WITH_TAINTS = 64;
/** Attributes + capacities per device (`ResourceSliceMaxAttributesAndCapacitiesPerDevice`). */
export const MAX_ATTRIBUTES_AND_CAPACITIES = 32;
/** Taints per device (`DeviceTaintsMaxLength`). */
export const MAX_TAINTS_PER_DEVICE = 16;
/** Bytes of a string attribute value (`DeviceAttributeMaxValueLength`). */
export const MAX_STRING_VALUE_LENGTH = 64;
/** Characters of the identifier part of an attribute/capacity name (`DeviceMaxIDLength`). */
export const MAX_ID_LENGTH = 32;
/** Characters of a driver name (`DriverNameMaxLength`). */
export const MAX_DRIVER_NAME_LENGTH = 63;
/** Characters of a pool name (`PoolNameMaxLength`). */
export const MAX_POOL_NAME_LENGTH = 253;
/**
 * Characters kept of `metadata.generateName`: the API server's name generator truncates the base to
 * 63 − 5 = 58 characters before appending 5 random characters (apiserver `names.SimpleNameGenerator`).
 */
export const MAX_GENERATE_NAME_LENGTH = 58;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Why `s` is not a DNS label (RFC 1123, ≤ 63 chars), or undefined. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s.length > 63) return `must be at most 63 characters (is ${s.length})`;
  if (!DNS_LABEL.test(s)) return 'must be a DNS label (lower-case alphanumerics and "-", starting and ending alphanumeric)';
  return undefined;
}

/** Why `s` is not a DNS subdomain (RFC 1123, ≤ `max` chars), or undefined. */
export function dnsSubdomainProblem(s: string, max = 253): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > max) return `must be at most ${max} characters (is ${s.length})`;
  for (const label of s.split('.')) {
    if (!DNS_LABEL.test(label)) return 'must be a DNS subdomain (dot-separated DNS labels)';
  }
  return undefined;
}

/**
 * Why `key` is not a valid attribute or capacity name, or undefined: a C identifier of at most 32 characters,
 * optionally prefixed by `<DNS subdomain ≤ 63>/` (resource.k8s.io/v1 `QualifiedName`).
 */
export function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const id = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    const domainProblem = dnsSubdomainProblem(key.slice(0, slash), 63);
    if (domainProblem !== undefined) return `domain ${domainProblem}`;
  }
  if (id.length > MAX_ID_LENGTH) return `identifier must be at most ${MAX_ID_LENGTH} characters (is ${id.length})`;
  if (!C_IDENTIFIER.test(id)) return 'identifier must be a C identifier';
  return undefined;
}

/** Why `s` is not a label value (≤ 63 chars, alphanumerics, `-_.`, starting and ending alphanumeric), or undefined. */
export function labelValueProblem(s: string): string | undefined {
  if (s.length > 63) return `must be at most 63 characters (is ${s.length})`;
  if (!LABEL_VALUE.test(s)) return 'must be a label value';
  return undefined;
}

/** Why `s` is not a label name (`[prefix/]name`, prefix a DNS subdomain, name ≤ 63 chars), or undefined. */
export function labelNameProblem(s: string): string | undefined {
  const slash = s.lastIndexOf('/');
  const name = slash < 0 ? s : s.slice(slash + 1);
  if (slash >= 0) {
    const p = dnsSubdomainProblem(s.slice(0, slash));
    if (p !== undefined) return `prefix ${p}`;
  }
  if (name === '') return 'name must not be empty';
  return labelValueProblem(name);
}

const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'] as const;

/**
 * Canonical Quantity string of a non-negative integer in the binary-SI format, as the API server stores it
 * (apimachinery `resource.NewQuantity(n, resource.BinarySI).String()`, what NVIDIA's driver uses for every
 * capacity): values below 1024 print as plain integers (`16`); larger values use the largest binary suffix that
 * divides them exactly (`85520809984` → `81559Mi`, `1024` → `1Ki`), or plain digits when 1024 does not divide them.
 * @throws RangeError for a negative or non-integer input.
 */
export function binaryQuantity(n: number | bigint): string {
  let v = BigInt(n);
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`quantity ${n} is not a safe integer`);
  if (v < 0n) throw new RangeError(`quantity ${n} is negative`);
  if (v < 1024n) return v.toString();
  let i = 0;
  while (i < BINARY_SUFFIXES.length - 1 && v % 1024n === 0n) {
    v /= 1024n;
    i += 1;
  }
  return `${v.toString()}${BINARY_SUFFIXES[i] ?? ''}`;
}
