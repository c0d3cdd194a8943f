/**
 * Validation of what the native addon returns: `unknown` in, the typed shapes of `native-types.ts` out, with
 * zod schemas (one per shape). Pure. A malformed value (a bug in the addon, or an addon from another build)
 * throws a {@link MalformedNativeValue} naming the path of the bad field and the device it belongs to; optional
 * readings of the wrong type are treated the same way, never silently coerced. Unknown fields are dropped.
 *
 * Rules, as the addon produces its values (native/js_convert.cc, native/session.cc):
 * - a number is any JS number but NaN (NVML's integers become doubles); an optional field is absent or
 *   `undefined`, never `null`;
 * - `errors` are arrays of {@link NvmlError} (the class the addon is handed at load);
 * - strings are C strings copied out of NVML's fixed buffers, so each is shorter than its buffer
 *   (`NVML_DEVICE_UUID_V2_BUFFER_SIZE` 96, `NVML_DEVICE_NAME_V2_BUFFER_SIZE` 96, `NVML_DEVICE_SERIAL_BUFFER_SIZE`
 *   30, `NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE` 32, `NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE` 32, `NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE` and
 *   `NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE` 80: native/nvml_abi.h);
 * - arrays are bounded: {@link MAX_NATIVE_GPUS} GPUs, {@link MAX_NATIVE_MIG_DEVICES} MIG devices per GPU,
 *   one reading per device, {@link MAX_NATIVE_ERRORS} errors per object.
 */
import { z } from 'zod';
import type {
  NvmlCreateMigResult,
  NvmlDestroyMigResult,
  NvmlGpuFacts,
  NvmlGpuInstanceListed,
  NvmlMigMode,
  NvmlSetMigModeResult,
  NvmlDiscovery,
  NvmlEventRegistration,
  NvmlRawEvent,
  NvmlSampleResult,
} from './native-types.js';
import { NvmlError } from './nvml-error.js';
import { field, parse, present } from './native-parse.js';

export { MalformedNativeValue } from './native-parse.js';

/**
 * GPUs per node gpulet accepts from the addon: well above any single node (NVIDIA's largest, DGX-2 / HGX-2,
 * has 16 GPUs), small enough that a corrupt count cannot make gpulet allocate without bound.
 */
export const MAX_NATIVE_GPUS = 64;
/** MIG devices per GPU: NVIDIA's MIG user guide allows at most seven per GPU; twice that leaves room. */
export const MAX_NATIVE_MIG_DEVICES = 14;
/** GPU-instance profiles per GPU: NVML 12.x has 10 profile indexes (`NVML_GPU_INSTANCE_PROFILE_COUNT`); room left. */
export const MAX_NATIVE_MIG_PROFILES = 16;
/** Possible placements per profile: one per memory slice (8), `GPULET_NVML_MAX_PLACEMENTS` in native/nvml_abi.h. */
export const MAX_NATIVE_PLACEMENTS = 8;
/**
 * GPU instances per GPU (`session.gpuInstances`): at most one per memory slice (8, MIG user guide), listed per
 * profile with at most `GPULET_NVML_MAX_GPU_INSTANCES` (8, native/nvml_abi.h) each; twice 8 leaves room.
 */
export const MAX_NATIVE_GPU_INSTANCES = 16;
/** NVML failures reported for one object (one per NVML call at most; gpulet makes about 30 per device). */
export const MAX_NATIVE_ERRORS = 256;

/** Any JS number but NaN (Infinity included: the hand-written checks this replaces allowed it). */
const num = z.custom<number>((v) => typeof v === 'number' && !Number.isNaN(v), { message: 'a number' });
const str = (max: number) => z.string().max(max);
const nvmlError = z.custom<NvmlError>((v) => v instanceof NvmlError, { message: 'an NvmlError' });
/** `errors` where it is always set; an absent list reads as empty. */
const errorList = z.array(nvmlError).max(MAX_NATIVE_ERRORS).optional().default([]);

const UUID = str(95);
const NAME = str(95);

const systemSchema = z.object({
  errors: errorList,
  driverVersion: str(79).optional(),
  nvmlVersion: str(79).optional(),
  cudaDriverVersion: num.optional(),
});

const pciSchema = z.object({
  busId: str(31),
  domain: num,
  bus: num,
  device: num,
  pciDeviceId: num,
  pciSubSystemId: num,
});

const profileSchema = z.object({
  name: NAME,
  index: num,
  id: num,
  sliceCount: num,
  multiprocessorCount: num,
  copyEngineCount: num,
  decoderCount: num,
  encoderCount: num,
  jpegCount: num,
  ofaCount: num,
  memorySizeMB: num,
  instanceCount: num.optional(),
  placements: z.array(z.object({ start: num, size: num })).max(MAX_NATIVE_PLACEMENTS).optional(),
});

const migSchema = z.object({
  index: num,
  errors: errorList,
  error: nvmlError.optional(),
  uuid: UUID.optional(),
  gpuInstanceId: num.optional(),
  computeInstanceId: num.optional(),
  profileId: num.optional(),
  placementStart: num.optional(),
  placementSize: num.optional(),
  profile: profileSchema.optional(),
});

const gpuSchema = z.object({
  index: num,
  errors: errorList,
  error: nvmlError.optional(),
  uuid: UUID.optional(),
  serial: str(29).optional(),
  name: NAME.optional(),
  minor: num.optional(),
  brand: num.optional(),
  architecture: num.optional(),
  ccMajor: num.optional(),
  ccMinor: num.optional(),
  memoryTotal: num.optional(),
  multiprocessors: num.optional(),
  powerLimit: num.optional(),
  migCurrent: num.optional(),
  migPending: num.optional(),
  addressingMode: num.optional(),
  vbiosVersion: str(31).optional(),
  pci: pciSchema.optional(),
  // `null` reads as "no MIG devices", as the `?? []` of the checks this replaces did.
  migDevices: z.array(migSchema).max(MAX_NATIVE_MIG_DEVICES).nullish().transform((v) => v ?? []),
  migProfiles: z.array(profileSchema).max(MAX_NATIVE_MIG_PROFILES).optional(),
});

const discoverySchema = z.object({
  system: systemSchema,
  gpus: z.array(gpuSchema).max(MAX_NATIVE_GPUS),
});

/**
 * GPM metrics of a reading (native/nvml_gpm.cc): percent 0–100 or MiB/s, each a finite number ≥ 0 (NVML computes
 * them from counter differences; a negative or infinite figure is a bug, not a reading).
 */
const gpmValue = z.custom<number>((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, { message: 'a finite number >= 0' });
const gpmSchema = z.object({
  graphicsUtil: gpmValue.optional(),
  smUtil: gpmValue.optional(),
  smOccupancy: gpmValue.optional(),
  anyTensorUtil: gpmValue.optional(),
  dramBwUtil: gpmValue.optional(),
  fp64Util: gpmValue.optional(),
  fp32Util: gpmValue.optional(),
  fp16Util: gpmValue.optional(),
  pcieTxPerSec: gpmValue.optional(),
  pcieRxPerSec: gpmValue.optional(),
  nvlinkTotalTxPerSec: gpmValue.optional(),
  nvlinkTotalRxPerSec: gpmValue.optional(),
});

const readingSchema = z.object({
  gpu: num,
  mig: num,
  error: nvmlError.optional(),
  // Only where some reading failed (the addon leaves it out otherwise), so no default here.
  errors: z.array(nvmlError).max(MAX_NATIVE_ERRORS).optional(),
  gpuUtil: num.optional(),
  memUtil: num.optional(),
  encUtil: num.optional(),
  decUtil: num.optional(),
  memTotal: num.optional(),
  memReserved: num.optional(),
  memFree: num.optional(),
  memUsed: num.optional(),
  power: num.optional(),
  powerLimit: num.optional(),
  energy: num.optional(),
  gpuTemp: num.optional(),
  memTemp: num.optional(),
  smClock: num.optional(),
  memClock: num.optional(),
  clockReasons: num.optional(),
  eccCorrected: num.optional(),
  eccUncorrected: num.optional(),
  remappedCorrectable: num.optional(),
  remappedUncorrectable: num.optional(),
  remappedFailure: num.optional(),
  nvlinkTxKiB: num.optional(),
  nvlinkRxKiB: num.optional(),
  pcieReplays: num.optional(),
  pcieTxKBs: num.optional(),
  pcieRxKBs: num.optional(),
  gpm: gpmSchema.optional(),
});

const sampleSchema = z.object({
  devices: z.array(readingSchema).max(MAX_NATIVE_GPUS * (1 + MAX_NATIVE_MIG_DEVICES)),
  timestampMs: num,
});

const eventSchema = z.object({
  gpu: num,
  eventType: num,
  eventData: num,
  gpuInstanceId: num,
  computeInstanceId: num,
  timestampMs: num,
  error: nvmlError.optional(),
});

const registrationSchema = z.object({
  // An event-type mask per GPU; any number, as the checks this replaces accepted.
  registered: z.array(z.custom<number>((v) => typeof v === 'number', { message: 'a number' })).max(MAX_NATIVE_GPUS),
  errors: errorList,
});

/** How a device names itself in an error: its UUID when the addon gave a well-formed one, else its NVML index. */
function deviceName(kind: 'GPU' | 'MIG device', raw: unknown, path: readonly PropertyKey[]): string | undefined {
  const uuid = field(raw, path, 'uuid');
  if (UUID.safeParse(uuid).success) return `${kind} ${String(uuid)}`;
  const index = field(raw, path, 'index');
  return typeof index === 'number' ? `${kind} index ${index}` : undefined;
}

/** The device a discovery path is in, e.g. `MIG device MIG-… of GPU GPU-…`; the path itself says where. */
function discoveryDevice(raw: unknown, path: readonly PropertyKey[]): string | undefined {
  if (path[0] !== 'gpus' || typeof path[1] !== 'number') return undefined;
  const gpu = deviceName('GPU', raw, path.slice(0, 2));
  if (path[2] !== 'migDevices' || typeof path[3] !== 'number') return gpu;
  const mig = deviceName('MIG device', raw, path.slice(0, 4));
  return mig === undefined ? gpu : `${mig}${gpu === undefined ? '' : ` of ${gpu}`}`;
}

/** The device a sample path is in: `gpu <i>` or `gpu <i>, MIG device <j>`, from the reading's own indexes. */
function sampleDevice(raw: unknown, path: readonly PropertyKey[]): string | undefined {
  if (path[0] !== 'devices' || typeof path[1] !== 'number') return undefined;
  const gpu = field(raw, path.slice(0, 2), 'gpu');
  const mig = field(raw, path.slice(0, 2), 'mig');
  if (typeof gpu !== 'number') return undefined;
  return typeof mig === 'number' && mig >= 0 ? `gpu ${gpu}, MIG device ${mig}` : `gpu ${gpu}`;
}

/** One GPU's facts as the shapes declare them (optional fields absent, not undefined). */
function gpuFacts(g: z.output<typeof gpuSchema>): NvmlGpuFacts {
  const { migProfiles, migDevices, ...rest } = g;
  return {
    ...present(rest),
    migDevices: migDevices.map((m) => {
      const { profile, ...mig } = m;
      return { ...present(mig), ...(profile === undefined ? {} : { profile: present(profile) }) };
    }),
    ...(migProfiles === undefined ? {} : { migProfiles: migProfiles.map((p) => present(p)) }),
  };
}

/** Validate `session.discover()`'s result. @throws MalformedNativeValue */
export function validateDiscovery(raw: unknown): NvmlDiscovery {
  const d = parse(discoverySchema, raw, '', 'discovery', discoveryDevice);
  return { system: present(d.system), gpus: d.gpus.map(gpuFacts) };
}

const migModeSchema = z.object({ current: num, pending: num });
const setMigModeSchema = z.object({ current: num, pending: num, activationStatus: num, activationStatusName: str(80), gpu: gpuSchema });
const createMigSchema = z.object({ gpuInstanceId: num, computeInstanceProfileId: num, gpu: gpuSchema });
const destroyMigSchema = z.object({ found: z.boolean(), gpu: gpuSchema });
const readGpuSchema = z.object({ gpu: gpuSchema });
const gpuInstancesSchema = z.object({
  gpuInstances: z.array(z.object({ gpuInstanceId: num, giProfileId: num, start: num, size: num })).max(MAX_NATIVE_GPU_INSTANCES),
});

/** Validate `session.migMode(gpu)`'s result. @throws MalformedNativeValue */
export function validateMigMode(raw: unknown): NvmlMigMode {
  return parse(migModeSchema, raw, 'migMode', 'migMode');
}

/** Validate `session.setMigMode(gpu, enabled)`'s result. @throws MalformedNativeValue */
export function validateSetMigMode(raw: unknown): NvmlSetMigModeResult {
  const r = parse(setMigModeSchema, raw, 'setMigMode', 'setMigMode');
  return { ...r, gpu: gpuFacts(r.gpu) };
}

/** Validate `session.createMigDevice(...)`'s result. @throws MalformedNativeValue */
export function validateCreateMig(raw: unknown): NvmlCreateMigResult {
  const r = parse(createMigSchema, raw, 'createMigDevice', 'createMigDevice');
  return { ...r, gpu: gpuFacts(r.gpu) };
}

/** Validate `session.destroyMigDevice(...)`'s result. @throws MalformedNativeValue */
export function validateDestroyMig(raw: unknown): NvmlDestroyMigResult {
  const r = parse(destroyMigSchema, raw, 'destroyMigDevice', 'destroyMigDevice');
  return { found: r.found, gpu: gpuFacts(r.gpu) };
}

/**
 * Validate `session.gpuInstances(gpu)`'s result: at most {@link MAX_NATIVE_GPU_INSTANCES} GPU instances.
 * @throws MalformedNativeValue
 */
export function validateGpuInstances(raw: unknown): NvmlGpuInstanceListed[] {
  return parse(gpuInstancesSchema, raw, 'gpuInstances', 'gpuInstances').gpuInstances;
}

/** Validate `session.readGpu(gpu)`'s result: the GPU's facts. @throws MalformedNativeValue */
export function validateReadGpu(raw: unknown): NvmlGpuFacts {
  return gpuFacts(parse(readGpuSchema, raw, 'readGpu', 'readGpu').gpu);
}

/** Validate `session.sample()`'s result. @throws MalformedNativeValue */
export function validateSample(raw: unknown): NvmlSampleResult {
  const s = parse(sampleSchema, raw, 'sample', 'sample', sampleDevice);
  return {
    timestampMs: s.timestampMs,
    devices: s.devices.map((r) => {
      const { gpm, ...rest } = r;
      return gpm === undefined ? present(rest) : { ...present(rest), gpm: present(gpm) };
    }),
  };
}

/** Validate one event from the native event thread. @throws MalformedNativeValue */
export function validateEvent(raw: unknown): NvmlRawEvent {
  return present(parse(eventSchema, raw, 'event', 'event', (r) => {
    const gpu = field(r, [], 'gpu');
    return typeof gpu === 'number' ? `gpu ${gpu}` : undefined;
  }));
}

/** Validate `session.startEvents()`'s result. @throws MalformedNativeValue */
export function validateRegistration(raw: unknown): NvmlEventRegistration {
  return parse(registrationSchema, raw, 'registration', 'registration');
}
