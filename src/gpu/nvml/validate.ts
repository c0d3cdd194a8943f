/**
 * Validation of what the native addon returns: `unknown` in, the typed shapes of `native-types.ts` out.
 * Pure. A malformed value (a bug in the addon, or an addon from another build) throws a
 * {@link MalformedNativeValue} naming the path of the bad field; optional readings of the wrong type are
 * treated the same way, never silently coerced.
 */
import type {
  NvmlDiscovery,
  NvmlEventRegistration,
  NvmlGpuFacts,
  NvmlMigFacts,
  NvmlPciFacts,
  NvmlRawEvent,
  NvmlReading,
  NvmlSampleResult,
  NvmlSystemFacts,
} from './native-types.js';
import { NvmlError } from './nvml-error.js';

/** The addon returned a value of an unexpected shape. `path` names the field, e.g. `gpus[2].uuid`. */
export class MalformedNativeValue extends Error {
  constructor(readonly path: string, expected: string) {
    super(`native addon returned a malformed value at ${path} (expected ${expected}): rebuild it with \`npm rebuild\``);
    this.name = 'MalformedNativeValue';
  }
}

type Rec = Record<string, unknown>;

function rec(v: unknown, path: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MalformedNativeValue(path, 'an object');
  return v as Rec;
}
function arr(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new MalformedNativeValue(path, 'an array');
  return v;
}
function num(o: Rec, k: string, path: string): number {
  const v = o[k];
  if (typeof v !== 'number' || Number.isNaN(v)) throw new MalformedNativeValue(`${path}.${k}`, 'a number');
  return v;
}
function str(o: Rec, k: string, path: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new MalformedNativeValue(`${path}.${k}`, 'a string');
  return v;
}
/** Copy the optional number fields `keys` of `o` into `out` (absent stays absent). */
function optNums(o: Rec, keys: readonly string[], path: string, out: Rec): void {
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || Number.isNaN(v)) throw new MalformedNativeValue(`${path}.${k}`, 'a number');
    out[k] = v;
  }
}
function optStrs(o: Rec, keys: readonly string[], path: string, out: Rec): void {
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new MalformedNativeValue(`${path}.${k}`, 'a string');
    out[k] = v;
  }
}
function nvmlErr(v: unknown, path: string): NvmlError {
  if (!(v instanceof NvmlError)) throw new MalformedNativeValue(path, 'an NvmlError');
  return v;
}
function errList(o: Rec, path: string): NvmlError[] {
  const v = o['errors'];
  if (v === undefined) return [];
  return arr(v, `${path}.errors`).map((e, i) => nvmlErr(e, `${path}.errors[${i}]`));
}
function optErr(o: Rec, path: string, out: Rec): void {
  if (o['error'] !== undefined) out['error'] = nvmlErr(o['error'], `${path}.error`);
}

/** Validate `session.discover()`'s result. @throws MalformedNativeValue */
export function validateDiscovery(raw: unknown): NvmlDiscovery {
  const o = rec(raw, 'discovery');
  const s = rec(o['system'], 'system');
  const system: Rec = { errors: errList(s, 'system') };
  optStrs(s, ['driverVersion', 'nvmlVersion'], 'system', system);
  optNums(s, ['cudaDriverVersion'], 'system', system);
  const gpus = arr(o['gpus'], 'gpus').map((g, i) => validateGpu(g, `gpus[${i}]`));
  return { system: system as unknown as NvmlSystemFacts, gpus };
}

const GPU_NUMS = ['minor', 'brand', 'architecture', 'ccMajor', 'ccMinor', 'memoryTotal', 'multiprocessors', 'powerLimit', 'migCurrent', 'migPending'];

function validateGpu(raw: unknown, path: string): NvmlGpuFacts {
  const g = rec(raw, path);
  const out: Rec = { index: num(g, 'index', path), errors: errList(g, path) };
  optErr(g, path, out);
  optStrs(g, ['uuid', 'serial', 'name'], path, out);
  optNums(g, GPU_NUMS, path, out);
  if (g['pci'] !== undefined) {
    const p = rec(g['pci'], `${path}.pci`);
    const pp = `${path}.pci`;
    const pci: NvmlPciFacts = {
      busId: str(p, 'busId', pp),
      domain: num(p, 'domain', pp),
      bus: num(p, 'bus', pp),
      device: num(p, 'device', pp),
      pciDeviceId: num(p, 'pciDeviceId', pp),
      pciSubSystemId: num(p, 'pciSubSystemId', pp),
    };
    out['pci'] = pci;
  }
  out['migDevices'] = arr(g['migDevices'] ?? [], `${path}.migDevices`).map((m, j) => validateMig(m, `${path}.migDevices[${j}]`));
  return out as unknown as NvmlGpuFacts;
}

const PROFILE_NUMS = ['index', 'id', 'sliceCount', 'multiprocessorCount', 'copyEngineCount', 'decoderCount', 'encoderCount', 'jpegCount', 'ofaCount', 'memorySizeMB'] as const;

function validateMig(raw: unknown, path: string): NvmlMigFacts {
  const m = rec(raw, path);
  const out: Rec = { index: num(m, 'index', path), errors: errList(m, path) };
  optErr(m, path, out);
  optStrs(m, ['uuid'], path, out);
  optNums(m, ['gpuInstanceId', 'computeInstanceId', 'profileId', 'placementStart', 'placementSize'], path, out);
  if (m['profile'] !== undefined) {
    const pp = `${path}.profile`;
    const p = rec(m['profile'], pp);
    const prof: Rec = { name: str(p, 'name', pp) };
    for (const k of PROFILE_NUMS) prof[k] = num(p, k, pp);
    out['profile'] = prof;
  }
  return out as unknown as NvmlMigFacts;
}

const READING_NUMS = [
  'gpuUtil', 'memUtil', 'encUtil', 'decUtil', 'memTotal', 'memReserved', 'memFree', 'memUsed', 'power', 'powerLimit',
  'energy', 'gpuTemp', 'memTemp', 'smClock', 'memClock', 'clockReasons', 'eccCorrected', 'eccUncorrected',
  'remappedCorrectable', 'remappedUncorrectable', 'pcieReplays', 'pcieTxKBs', 'pcieRxKBs',
];

/** Validate `session.sample()`'s result. @throws MalformedNativeValue */
export function validateSample(raw: unknown): NvmlSampleResult {
  const o = rec(raw, 'sample');
  const devices = arr(o['devices'], 'sample.devices').map((d, i): NvmlReading => {
    const path = `sample.devices[${i}]`;
    const r = rec(d, path);
    const out: Rec = { gpu: num(r, 'gpu', path), mig: num(r, 'mig', path) };
    optErr(r, path, out);
    if (r['errors'] !== undefined) out['errors'] = errList(r, path);
    optNums(r, READING_NUMS, path, out);
    return out as unknown as NvmlReading;
  });
  return { timestampMs: num(o, 'timestampMs', 'sample'), devices };
}

/** Validate one event from the native event thread. @throws MalformedNativeValue */
export function validateEvent(raw: unknown): NvmlRawEvent {
  const e = rec(raw, 'event');
  const out: Rec = {
    gpu: num(e, 'gpu', 'event'),
    eventType: num(e, 'eventType', 'event'),
    eventData: num(e, 'eventData', 'event'),
    gpuInstanceId: num(e, 'gpuInstanceId', 'event'),
    computeInstanceId: num(e, 'computeInstanceId', 'event'),
    timestampMs: num(e, 'timestampMs', 'event'),
  };
  optErr(e, 'event', out);
  return out as unknown as NvmlRawEvent;
}

/** Validate `session.startEvents()`'s result. @throws MalformedNativeValue */
export function validateRegistration(raw: unknown): NvmlEventRegistration {
  const o = rec(raw, 'registration');
  const registered = arr(o['registered'], 'registration.registered').map((v, i) => {
    if (typeof v !== 'number') throw new MalformedNativeValue(`registration.registered[${i}]`, 'a number');
    return v;
  });
  return { registered, errors: errList(o, 'registration') };
}
