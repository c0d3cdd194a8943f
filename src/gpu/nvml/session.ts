/**
 * Typed wrapper of the native `NvmlSession` object (native/session.h): the raw methods are checked once
 * here, and every result goes through the validators of `validate.ts`, so nothing untyped leaves the loader.
 */
import { BackendError } from '../../errors.js';
import type { NvmlDiscovery, NvmlEventRegistration, NvmlRawEvent, NvmlSampleResult } from './native-types.js';
import { validateDiscovery, validateEvent, validateRegistration, validateSample } from './validate.js';

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
  };
}
