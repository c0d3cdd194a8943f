/**
 * Typed wrapper of the native `NvmlSession` object (native/session.h): the raw methods are checked once
 * here, and every result goes through the validators of `validate.ts`, so nothing untyped leaves the loader.
 */
import { BackendError } from '../../errors.js';
import type {
  NvmlCreateMigResult,
  NvmlDestroyMigResult,
  NvmlGpuInstanceListed,
  NvmlDiscovery,
  NvmlEventRegistration,
  NvmlGpuFacts,
  NvmlMigMode,
  NvmlRawEvent,
  NvmlSampleResult,
  NvmlSetMigModeResult,
} from './native-types.js';
import {
  validateCreateMig,
  validateDestroyMig,
  validateGpuInstances,
  validateDiscovery,
  validateEvent,
  validateMigMode,
  validateReadGpu,
  validateRegistration,
  validateSample,
  validateSetMigMode,
} from './validate.js';

/**
 * One opened NVML library. Every method but the properties runs its NVML calls on a libuv worker thread;
 * calls of one session are serialized natively. NVML failures reject with {@link NvmlError}.
 */
export interface NvmlSession {
  /** The path or soname that was dlopen()ed. */
  readonly library: string;
  /** Per function gpulet uses (preferred name): the symbol that resolved, or null when missing. */
  readonly symbols: Readonly<Record<string, string | null>>;
  /** `nvmlInit_v2` (or `nvmlInit`). @throws NvmlError, e.g. code 9 NVML_ERROR_DRIVER_NOT_LOADED. */
  init(): Promise<void>;
  /**
   * Enumerate GPUs and MIG devices, read their static facts, and (re)fetch the device handles that
   * {@link sample} and events use. @throws NvmlError only when `nvmlDeviceGetCount_v2` fails.
   */
  discover(): Promise<NvmlDiscovery>;
  /** Read every device of the last discovery, except the GPUs (indexes) in `skipGpus` and their MIG devices. */
  sample(skipGpus?: readonly number[]): Promise<NvmlSampleResult>;
  /**
   * Register the health event types on every GPU and start the native waiting thread; `onEvent` runs on the
   * JS thread for each event. `onMalformed` receives a validation error instead of throwing into the addon.
   */
  startEvents(onEvent: (event: NvmlRawEvent) => void, onMalformed: (err: unknown) => void): Promise<NvmlEventRegistration>;
  /** Stop and join the event thread and free the event set (≤ ~0.5 s). */
  stopEvents(): Promise<void>;
  /** Stop events, `nvmlShutdown`, drop handles. Idempotent. @throws NvmlError when nvmlShutdown fails. */
  shutdown(): Promise<void>;
  /** `nvmlDeviceGetMigMode` of GPU `gpu` (discovery index). @throws NvmlError */
  migMode(gpu: number): Promise<NvmlMigMode>;
  /** `nvmlDeviceSetMigMode`, then the mode and the GPU read again. @throws NvmlError from the failing call */
  setMigMode(gpu: number, enabled: boolean): Promise<NvmlSetMigModeResult>;
  /**
   * `nvmlDeviceCreateGpuInstanceWithPlacement` + the GI's full compute instance; the GI is destroyed again when
   * a later step fails. The GPU is read again (its handles replaced) whatever happened.
   * @throws NvmlError from the failing call; its `rollbackError` property is set when the rollback failed too
   */
  createMigDevice(gpu: number, giProfileId: number, start: number, size: number): Promise<NvmlCreateMigResult>;
  /** Destroy GI `gpuInstanceId` and its compute instances (`found: false` when there is none). @throws NvmlError */
  destroyMigDevice(gpu: number, gpuInstanceId: number): Promise<NvmlDestroyMigResult>;
  /**
   * Every GPU instance of GPU `gpu`, with or without a compute instance (`nvmlDeviceGetGpuInstances` per GI
   * profile, `nvmlGpuInstanceGetInfo`). Reads only: the GPU's handles are not replaced. @throws NvmlError
   */
  gpuInstances(gpu: number): Promise<NvmlGpuInstanceListed[]>;
  /** Read GPU `gpu` again (facts, MIG devices, profiles) and replace its handles. */
  readGpu(gpu: number): Promise<NvmlGpuFacts>;
}

type Method = (...args: unknown[]) => unknown;

function method(raw: Record<string, unknown>, name: string, library: string): Method {
  const fn = raw[name];
  if (typeof fn !== 'function') {
    throw new BackendError(`native NVML session for ${library} lacks ${name}(): run \`npm rebuild\``, { library });
  }
  return (...args: unknown[]) => (fn as Method).apply(raw, args);
}

/** The native methods return Promises; anything else is resolved as is (and then fails validation). */
function asPromise(v: unknown): Promise<unknown> {
  return Promise.resolve(v);
}

/**
 * Wrap a raw native session object.
 * @throws BackendError when a method or property is missing (an addon from another build).
 */
export function wrapSession(raw: Record<string, unknown>, library: string): NvmlSession {
  const init = method(raw, 'init', library);
  const discover = method(raw, 'discover', library);
  const sample = method(raw, 'sample', library);
  const startEvents = method(raw, 'startEvents', library);
  const stopEvents = method(raw, 'stopEvents', library);
  const shutdown = method(raw, 'shutdown', library);
  const migMode = method(raw, 'migMode', library);
  const setMigMode = method(raw, 'setMigMode', library);
  const createMigDevice = method(raw, 'createMigDevice', library);
  const destroyMigDevice = method(raw, 'destroyMigDevice', library);
  const readGpu = method(raw, 'readGpu', library);
  const gpuInstances = method(raw, 'gpuInstances', library);
  const symbols: Record<string, string | null> = {};
  const rawSymbols = raw['symbols'];
  if (typeof rawSymbols === 'object' && rawSymbols !== null) {
    for (const [k, v] of Object.entries(rawSymbols)) symbols[k] = typeof v === 'string' ? v : null;
  }
  return {
    library: typeof raw['library'] === 'string' ? raw['library'] : library,
    symbols,
    init: async () => {
      await asPromise(init());
    },
    discover: async () => validateDiscovery(await asPromise(discover())),
    sample: async (skipGpus = []) => validateSample(await asPromise(sample([...skipGpus]))),
    startEvents: async (onEvent, onMalformed) => {
      const deliver = (ev: unknown): void => {
        let event: NvmlRawEvent;
        try {
          event = validateEvent(ev);
        } catch (err) {
          onMalformed(err);
          return;
        }
        onEvent(event);
      };
      return validateRegistration(await asPromise(startEvents(deliver)));
    },
    stopEvents: async () => {
      await asPromise(stopEvents());
    },
    shutdown: async () => {
      await asPromise(shutdown());
    },
    migMode: async (gpu) => validateMigMode(await asPromise(migMode(gpu))),
    setMigMode: async (gpu, enabled) => validateSetMigMode(await asPromise(setMigMode(gpu, enabled))),
    createMigDevice: async (gpu, giProfileId, start, size) =>
      validateCreateMig(await asPromise(createMigDevice(gpu, giProfileId, start, size))),
    destroyMigDevice: async (gpu, gpuInstanceId) => validateDestroyMig(await asPromise(destroyMigDevice(gpu, gpuInstanceId))),
    readGpu: async (gpu) => validateReadGpu(await asPromise(readGpu(gpu))),
    gpuInstances: async (gpu) => validateGpuInstances(await asPromise(gpuInstances(gpu))),
  };
}
