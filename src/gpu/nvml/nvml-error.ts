/**
 * The one JS error class of NVML return codes. It is defined here, in TypeScript, and handed to the native
 * addon once at load (`setErrorClass`), as better-sqlite3 does with `SqliteError`: every non-success
 * `nvmlReturn_t` the addon reports is an instance of this class.
 */

/**
 * An NVML call returned something other than `NVML_SUCCESS`.
 * - `code`: the `nvmlReturn_t` value, e.g. 15.
 * - `name`: its symbolic name from nvml.h, e.g. `NVML_ERROR_GPU_IS_LOST` (`NVML_ERROR_UNKNOWN_CODE_<n>` for a
 *   code this build does not know).
 * - `nvmlFunction`: the NVML function that returned it, e.g. `nvmlDeviceGetPowerUsage`.
 * - `message`: `nvmlErrorString(code)` when the library provides it, e.g. `GPU is lost`.
 */
export class NvmlError extends Error {
  /** `nvmlReturn_t` value. */
  readonly code: number;
  /** The NVML function that returned {@link code}. */
  readonly nvmlFunction: string;

  constructor(message: string, code: number, name: string, nvmlFunction: string) {
    super(message);
    this.code = code;
    this.name = name;
    this.nvmlFunction = nvmlFunction;
  }
}

/** `nvmlReturn_t` values gpulet's TypeScript acts on (nvml.h). */
export const NVML_RETURN = {
  SUCCESS: 0,
  ERROR_UNINITIALIZED: 1,
  ERROR_INVALID_ARGUMENT: 2,
  ERROR_NOT_SUPPORTED: 3,
  ERROR_NO_PERMISSION: 4,
  ERROR_NOT_FOUND: 6,
  ERROR_DRIVER_NOT_LOADED: 9,
  ERROR_TIMEOUT: 10,
  ERROR_LIBRARY_NOT_FOUND: 12,
  ERROR_FUNCTION_NOT_FOUND: 13,
  ERROR_GPU_IS_LOST: 15,
  ERROR_RESET_REQUIRED: 16,
  ERROR_LIB_RM_VERSION_MISMATCH: 18,
  ERROR_UNKNOWN: 999,
} as const;

/** Whether `err` is an {@link NvmlError} with return code `code`. */
export function isNvmlCode(err: unknown, code: number): err is NvmlError {
  return err instanceof NvmlError && err.code === code;
}
