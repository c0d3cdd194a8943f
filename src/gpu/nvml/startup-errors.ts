/**
 * Start-up errors of the NVML backend as {@link BackendError}s that say what failed, with which library, and
 * what to check. One line each (the CLI prints `gpulet: cannot start: <message>`), no stack trace needed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BackendError } from '../../errors.js';
import { NvmlError } from './nvml-error.js';

/** Last words of every start-up message: the way to run without a GPU. */
const MOCK_HINT = ' (or use --backend=mock to run on simulated GPUs)';

const DRIVER_HINT =
  'check that the NVIDIA driver is installed on this node, that --nvml-library (GPULET_NVML_LIBRARY) names ' +
  'its libnvidia-ml.so.1 (e.g. /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1), and that the DaemonSet mounts ' +
  "the host's driver root into the container";

/**
 * The file a library path or soname resolved to in this process: the first mapping in `/proc/self/maps`
 * whose file name starts with the soname's base name (e.g. `libnvidia-ml.so`), else `library` itself.
 */
export function resolvedLibraryPath(library: string): string {
  const base = path.basename(library).replace(/\.so(\.\d+)*$/, '.so');
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const file = line.slice(line.indexOf('/'));
      if (line.includes('/') && path.basename(file).startsWith(base)) return file.trim();
    }
  } catch {
    // no procfs: keep the name as given
  }
  return library;
}

/** dlopen() failed: the library is missing or unloadable. */
export function libraryNotFound(library: string, dlerror: string): BackendError {
  return new BackendError(
    `NVML library not found: dlopen("${library}") failed: ${dlerror}; ${DRIVER_HINT}${MOCK_HINT}`,
    { library },
  );
}

/** The library opened but lacks a symbol gpulet cannot do without. */
export function missingSymbol(library: string, symbol: string): BackendError {
  return new BackendError(
    `NVML library ${library} lacks the required symbol ${symbol}: it is not libnvidia-ml or is too old ` +
      `(gpulet needs an R450 or newer driver); ${DRIVER_HINT}${MOCK_HINT}`,
    { library },
  );
}

/** What to check for an `nvmlInit_v2` failure code. */
function initHint(code: number): string {
  switch (code) {
    case 9:
      return 'the NVIDIA kernel driver is not loaded on this node; check `lsmod | grep nvidia`, `nvidia-smi` and ' +
        '`dmesg | grep -i nvrm` on the host, and that the driver (or the GPU operator driver container) is running';
    case 18:
      return 'the library and the loaded kernel driver are different versions; mount the libnvidia-ml.so.1 of the ' +
        'running driver (the DaemonSet driver-root mount), or reboot the node after a driver upgrade';
    case 4:
      return 'no permission to open /dev/nvidia*; run the agent privileged (as the DaemonSet does) or as root';
    case 12:
      return DRIVER_HINT;
    default:
      return 'check `nvidia-smi` on the node and the driver logs (`dmesg | grep -i nvrm`)';
  }
}

/** `nvmlInit_v2` (or a call right after it) failed. */
export function initFailed(library: string, err: unknown): BackendError {
  const resolved = resolvedLibraryPath(library);
  const from = resolved === library ? library : `${library} (${resolved})`;
  if (err instanceof NvmlError) {
    return new BackendError(
      `NVML: ${err.message} (code ${err.code}, ${err.name} from ${err.nvmlFunction}) from ${from}: ${initHint(err.code)}${MOCK_HINT}`,
      { nvmlCode: err.code, nvmlName: err.name, library: resolved, cause: err },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new BackendError(`NVML backend could not start with ${from}: ${message}${MOCK_HINT}`, { library: resolved, cause: err });
}
