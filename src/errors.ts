/**
 * Typed errors. Each says what failed, for which device or claim, and what to do.
 * `code` is a stable machine-readable identifier; `message` is for people.
 */

/** Longest outside value (in characters) an error message quotes verbatim. */
export const MAX_QUOTED = 80;

/**
 * JSON-quote a value from outside (a gRPC field, an API object) for an error message, cut to {@link MAX_QUOTED}
 * characters with its length noted. Such messages travel back in the kubelet's answers, which must stay under
 * gRPC's 4 MiB message limit even when a hostile peer sends a megabyte-long name (a 600 KB UID of NULs would
 * become 3.6 MB of `\u0000`, and the kubelet would get RESOURCE_EXHAUSTED instead of the per-claim errors).
 */
export function quoteBounded(value: unknown, max = MAX_QUOTED): string {
  if (typeof value !== 'string' || value.length <= max) return JSON.stringify(value) ?? String(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** Base class: every gpulet error has a stable `code`. */
export class GpuletError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Invalid configuration (a flag, env var or file). Fatal at start-up. */
export class ConfigError extends GpuletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
  }
}

/**
 * A GPU backend failed to start or to read (library missing, NVML error). `nvmlCode`/`nvmlName` are set when
 * NVML returned an error (e.g. 9 / `NVML_ERROR_DRIVER_NOT_LOADED`); `library` names the path tried.
 */
export class BackendError extends GpuletError {
  readonly nvmlCode: number | undefined;
  readonly nvmlName: string | undefined;
  readonly library: string | undefined;
  /** Set by MIG management calls (`GpuBackend.mig`, src/gpu/types.ts): why the call failed. */
  readonly migCode: MigErrorCode | undefined;
  constructor(
    message: string,
    details: { nvmlCode?: number; nvmlName?: string; library?: string; migCode?: MigErrorCode; cause?: unknown } = {},
  ) {
    super('BACKEND', message, { cause: details.cause });
    this.nvmlCode = details.nvmlCode;
    this.nvmlName = details.nvmlName;
    this.library = details.library;
    this.migCode = details.migCode;
  }
}

/** Why a MIG management call failed: NVML's return code by name (`nvmlReturn_t`), or a backend reason. */
export type MigErrorCode =
  | 'INSUFFICIENT_RESOURCES' // NVML_ERROR_INSUFFICIENT_RESOURCES: the placement is taken or does not fit
  | 'IN_USE' // NVML_ERROR_IN_USE: processes run on the instance, or MIG mode cannot change now
  | 'NOT_SUPPORTED' // NVML_ERROR_NOT_SUPPORTED: no MIG on this GPU / driver, or MIG mode off
  | 'NO_PERMISSION' // NVML_ERROR_NO_PERMISSION: needs root / CAP_SYS_ADMIN
  | 'INVALID_ARGUMENT' // NVML_ERROR_INVALID_ARGUMENT: unknown profile or placement
  | 'NOT_FOUND' // NVML_ERROR_NOT_FOUND: no such GPU or instance
  | 'RESET_REQUIRED' // NVML_ERROR_RESET_REQUIRED / a pending mode change that needs a GPU reset
  | 'UNKNOWN';

/** A claim could not be prepared or unprepared. Always names the claim (`namespace/name`, UID). */
export class ClaimError extends GpuletError {
  constructor(
    readonly claim: { namespace: string; name: string; uid: string },
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('CLAIM', `claim ${claim.namespace}/${claim.name} (uid ${claim.uid}): ${reason}`, options);
  }
}

/** The checkpoint file is unreadable, corrupt or of an unknown apiVersion. */
export class CheckpointError extends GpuletError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('CHECKPOINT', `checkpoint ${path}: ${reason}`, options);
  }
}

/** A CDI spec could not be written or removed. */
export class CdiError extends GpuletError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CDI', message, options);
  }
}

/** Talking to the Kubernetes API server failed. `status` is the HTTP status when there was one. */
export class ApiError extends GpuletError {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super('API', message, options);
  }
}

/**
 * A ResourceClaim read from the API server whose metadata (namespace, name, uid) breaks the rules of
 * src/model/claim-ref.ts: gpulet cannot act on it (its UID would name files). The message names the claim as
 * found, the field, the rule and the value.
 */
export class InvalidClaimError extends GpuletError {
  constructor(message: string) {
    super('INVALID_CLAIM', message);
  }
}

/**
 * Start-up was cancelled by a shutdown request (a signal while waiting for the driver, or during the start-up
 * reconciliation of the claims); the command exits 0.
 */
export class StartupAbortedError extends GpuletError {
  constructor() {
    super('ABORTED', 'start-up cancelled by a shutdown request');
  }
}

/** Message of any thrown value, for logs and per-claim errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
