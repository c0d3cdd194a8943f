/**
 * Validation limits of resource.k8s.io/v1 ResourceSlices (kubernetes `pkg/apis/resource/validation`, mirrored in
 * the OpenAPI descriptions and docs/contracts.md §4) and the canonical Quantity form the API server stores.
 * The name rules (driver, pool, DNS names, attribute names, label keys and values) and their length limits are in
 * src/model/names.ts, the one module for names.
 */

/** Devices per slice (`ResourceSliceMaxDevices`). */
export const MAX_DEVICES_PER_SLICE = 128;
/** Devices per slice when any device has taints or consumesCounters (`ResourceSliceMaxDevicesWithAdvancedFeatures` in 1.37). */
export const MAX_DEVICES_PER_SLICE_WITH_TAINTS = 64;
/**
 * Devices per slice when any device consumes counters: the same `ResourceSliceMaxDevicesWithAdvancedFeatures`
 * (k8s.io/api v0.37.2 resource/v1/types.go: "device taints, consuming counters, list attributes"; enforced by
 * kubernetes v1.37.2 pkg/apis/resource/validation/validation.go `validateResourceSliceSpec`, `haveConsumesCounters`).
 */
export const MAX_DEVICES_PER_SLICE_WITH_COUNTERS = MAX_DEVICES_PER_SLICE_WITH_TAINTS;
/**
 * Counter sets per slice (`ResourceSliceMaxCounterSets`, types.go; `spec.sharedCounters` maxItems=8). A slice
 * has either `sharedCounters` or `devices`, never both (validation.go: "only one of `sharedCounters` or
 * `devices` is allowed"), so counter sets go in slices of their own.
 */
export const MAX_COUNTER_SETS_PER_SLICE = 8;
/** Counters per counter set (`ResourceSliceMaxCountersPerCounterSet`; validation.go `validateCounterSet`). */
export const MAX_COUNTERS_PER_COUNTER_SET = 32;
/** Counter consumptions per device, one per counter set (`ResourceSliceMaxDeviceCounterConsumptionsPerDevice`). */
export const MAX_COUNTER_CONSUMPTIONS_PER_DEVICE = 2;
/** Counters per device counter consumption (`ResourceSliceMaxCountersPerDeviceCounterConsumption`). */
export const MAX_COUNTERS_PER_CONSUMPTION = 32;
/*
 * No per-slice total of consumed counters exists in resource.k8s.io/v1 of 1.37 (validation.go checks only the
 * limits above; counter and counter-set names are DNS labels, `validateCounterName`).
 */
/** Attributes + capacities per device (`ResourceSliceMaxAttributesAndCapacitiesPerDevice`). */
export const MAX_ATTRIBUTES_AND_CAPACITIES = 32;
/** Taints per device (`DeviceTaintsMaxLength`). */
export const MAX_TAINTS_PER_DEVICE = 16;
/** Bytes of a string attribute value (`DeviceAttributeMaxValueLength`). */
export const MAX_STRING_VALUE_LENGTH = 64;
/**
 * Characters kept of `metadata.generateName`: the API server's name generator truncates the base to
 * 63 − 5 = 58 characters before appending 5 random characters (apiserver `names.SimpleNameGenerator`).
 */
export const MAX_GENERATE_NAME_LENGTH = 58;

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
