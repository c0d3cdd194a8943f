/**
 * Typed loader of gpulet's native addon (`build/Release/gpulet_nvml.node`, built from `native/` by node-gyp
 * during `npm install`). Nothing untyped leaves this module: the raw `require()` result is checked field by
 * field before it is returned as a {@link NativeAddon}.
 *
 * The addon links only `-ldl`; it dlopen()s libnvidia-ml at run time, so it builds and loads on machines
 * without an NVIDIA driver.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { BackendError, errorMessage } from '../../errors.js';
import { NvmlError } from './nvml-error.js';
import { wrapSession, type NvmlSession } from './session.js';

/** Result of {@link NativeAddon.probeLibrary}. */
export interface ProbeResult {
  /** True when `dlopen(path, RTLD_NOW | RTLD_LOCAL)` succeeded. */
  readonly loaded: boolean;
  /** The path (or soname) that was probed, as given. */
  readonly path: string;
  /** `dlerror()` text when `loaded` is false, e.g. `libnvidia-ml.so.1: cannot open shared object file: ...`. */
  readonly error?: string;
  /** When loaded: whether `dlsym(handle, "nvmlInit_v2")` resolved (i.e. this looks like an NVML library). */
  readonly nvmlInitV2?: boolean;
}

/**
 * Result of {@link NativeAddon.open}: a session over the opened library, or why it could not be opened
 * (`error` is dlerror()'s text, or names the missing required symbol in `missingSymbol`).
 */
export type OpenResult =
  | { readonly ok: true; readonly session: NvmlSession }
  | { readonly ok: false; readonly error: string; readonly missingSymbol?: string };

/** The functions and constants the native addon exports. */
export interface NativeAddon {
  /** Version string compiled into the addon, e.g. `0.1.0`. */
  readonly addonVersion: string;
  /**
   * dlopen()s `libraryPath` (RTLD_NOW | RTLD_LOCAL), checks that `nvmlInit_v2` resolves, and dlclose()s it.
   * Makes no NVML call. Never throws for a missing or broken library: that is `loaded: false` with `error`.
   * @throws TypeError when `libraryPath` is not a string.
   */
  readonly probeLibrary: (libraryPath: string) => ProbeResult;
  /**
   * dlopen()s `libraryPath` (RTLD_NOW | RTLD_LOCAL) and dlsym()s the NVML function table (versioned names
   * with fallbacks). Makes no NVML call: `session.init()` does. Never throws for a missing library or symbol.
   */
  readonly open: (libraryPath: string) => OpenResult;
}

/**
 * Repository root: this file is `src/gpu/nvml/addon.ts` (or `dist/src/gpu/nvml/addon.js` when built, or a chunk
 * of `dist/agent/` in the image's bundle), the root the nearest directory above it with binding.gyp.
 */
function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
}

/** Absolute path of the built addon: `<repo>/build/Release/gpulet_nvml.node`. */
export function addonPath(): string {
  return path.join(findRepoRoot(), 'build', 'Release', 'gpulet_nvml.node');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function checkProbeResult(raw: unknown, libraryPath: string): ProbeResult {
  if (!isRecord(raw) || typeof raw['loaded'] !== 'boolean' || typeof raw['path'] !== 'string') {
    throw new BackendError(`native addon returned a malformed probeLibrary() result for ${libraryPath}`, {
      library: libraryPath,
    });
  }
  const error = raw['error'];
  const nvmlInitV2 = raw['nvmlInitV2'];
  return {
    loaded: raw['loaded'],
    path: raw['path'],
    ...(typeof error === 'string' ? { error } : {}),
    ...(typeof nvmlInitV2 === 'boolean' ? { nvmlInitV2 } : {}),
  };
}

let cached: NativeAddon | undefined;

/**
 * Load the native addon once (later calls return the same object).
 * @throws BackendError when `build/Release/gpulet_nvml.node` is missing or fails to load, saying to run
 *   `npm install` (or `npm rebuild`), which builds it with node-gyp.
 */
export function loadAddon(): NativeAddon {
  cached ??= loadAddonFrom(addonPath());
  return cached;
}

/**
 * Load the addon from an explicit `.node` file, uncached (tests, or a relocated build).
 * @throws BackendError as {@link loadAddon}.
 */
export function loadAddonFrom(file: string): NativeAddon {
  if (!existsSync(file)) {
    throw new BackendError(
      `gpulet native addon not built: ${file} is missing. Run \`npm install\` (or \`npm rebuild\`) in the ` +
        `repository to build it with node-gyp (needs g++, make and python3).`,
      { library: file },
    );
  }
  let raw: unknown;
  try {
    raw = createRequire(import.meta.url)(file);
  } catch (err) {
    throw new BackendError(
      `gpulet native addon ${file} failed to load: ${errorMessage(err)}. Run \`npm rebuild\` to rebuild it ` +
        `for this Node.js (${process.version}).`,
      { library: file, cause: err },
    );
  }
  if (
    !isRecord(raw) ||
    typeof raw['addonVersion'] !== 'string' ||
    typeof raw['probeLibrary'] !== 'function' ||
    typeof raw['setErrorClass'] !== 'function' ||
    typeof raw['open'] !== 'function'
  ) {
    throw new BackendError(
      `gpulet native addon ${file} lacks addonVersion/probeLibrary/setErrorClass/open: run \`npm rebuild\``,
      { library: file },
    );
  }
  const probe = raw['probeLibrary'] as (p: string) => unknown;
  const open = raw['open'] as (p: string) => unknown;
  // The one JS error class of NVML return codes, handed to C++ once per load (per environment).
  (raw['setErrorClass'] as (ctor: typeof NvmlError) => void)(NvmlError);
  return {
    addonVersion: raw['addonVersion'],
    probeLibrary: (libraryPath: string) => checkProbeResult(probe(libraryPath), libraryPath),
    open: (libraryPath: string) => checkOpenResult(open(libraryPath), libraryPath),
  };
}

function checkOpenResult(raw: unknown, libraryPath: string): OpenResult {
  if (isRecord(raw) && raw['ok'] === true && isRecord(raw['session'])) {
    return { ok: true, session: wrapSession(raw['session'], libraryPath) };
  }
  if (isRecord(raw) && raw['ok'] === false && typeof raw['error'] === 'string') {
    const missing = raw['missingSymbol'];
    return { ok: false, error: raw['error'], ...(typeof missing === 'string' ? { missingSymbol: missing } : {}) };
  }
  throw new BackendError(`native addon returned a malformed open() result for ${libraryPath}: run \`npm rebuild\``, {
    library: libraryPath,
  });
}
