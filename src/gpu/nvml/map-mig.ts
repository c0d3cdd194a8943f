/**
 * Pure mapping of NVML's MIG answers to gpulet's terms: a GPU's GPU-instance profiles with their possible
 * placements (for dynamic MIG), and NVML return codes of the MIG management calls to {@link MigErrorCode}
 * with a message that says what failed and what to do.
 *
 * Sources: nvml.h 11.8 (Debian libnvidia-ml-dev) — `nvmlGpuInstanceProfileInfo_v2_t`,
 * `nvmlDeviceGetGpuInstancePossiblePlacements_v2`, and the return codes documented on
 * `nvmlDeviceCreateGpuInstanceWithPlacement`, `nvmlGpuInstanceCreateComputeInstance`, `nvmlGpuInstanceDestroy`,
 * `nvmlComputeInstanceDestroy` and `nvmlDeviceSetMigMode` (every one "Requires privileged user" / "root user").
 */
import { BackendError, type MigErrorCode } from '../../errors.js';
import type { MigProfileSpec } from '../types.js';
import { migProfileName } from './map-inventory.js';
import type { NvmlGpuFacts } from './native-types.js';
import { NvmlError } from './nvml-error.js';

/** One GPU-instance profile as NVML reports it (`name` without `MIG `, as go-nvlib derives it from v1). */
export type NvmlMigProfile = MigProfileSpec;

/**
 * The GPU's profiles with possible placements, from `nvmlDeviceGetGpuInstanceProfileInfoV` and
 * `nvmlDeviceGetGpuInstancePossiblePlacements_v2` (read while MIG mode is on). A profile without placements, or
 * whose placements differ in size, is left out and named in `problems`.
 * @param gpuMemoryBytes the GPU's framebuffer (to derive a name when only the v1 profile call exists)
 */
export function mapMigProfiles(g: NvmlGpuFacts, gpuMemoryBytes: number, problems: string[]): NvmlMigProfile[] {
  const out: NvmlMigProfile[] = [];
  for (const p of g.migProfiles ?? []) {
    const placements = p.placements ?? [];
    const size = placements[0]?.size;
    if (size === undefined || placements.some((pl) => pl.size !== size)) {
      problems.push(
        `GPU ${g.index} (${g.uuid ?? 'no UUID'}) MIG profile ${p.id}: nvmlDeviceGetGpuInstancePossiblePlacements_v2 gave ` +
          (size === undefined ? 'no placements' : 'placements of different sizes') + '; the profile is not offered',
      );
      continue;
    }
    out.push({
      name: migProfileName(p, gpuMemoryBytes),
      id: p.id,
      maxCount: p.instanceCount ?? 0,
      computeSlices: p.sliceCount,
      multiprocessors: p.multiprocessorCount,
      memoryMiB: p.memorySizeMB,
      copyEngines: p.copyEngineCount,
      decoders: p.decoderCount,
      encoders: p.encoderCount,
      jpegEngines: p.jpegCount,
      ofaEngines: p.ofaCount,
      placementStarts: placements.map((pl) => pl.start).sort((a, b) => a - b),
      placementSize: size,
    });
  }
  return out;
}

/** `nvmlReturn_t` → {@link MigErrorCode}. NVML_ERROR_FUNCTION_NOT_FOUND (13: a library without the call) is NOT_SUPPORTED. */
const CODES: Readonly<Record<number, MigErrorCode>> = {
  2: 'INVALID_ARGUMENT',
  3: 'NOT_SUPPORTED',
  4: 'NO_PERMISSION',
  6: 'NOT_FOUND',
  13: 'NOT_SUPPORTED',
  16: 'RESET_REQUIRED',
  19: 'IN_USE',
  23: 'INSUFFICIENT_RESOURCES',
};

/** What to do, per code (nvml.h's documented causes). */
const ADVICE: Readonly<Record<MigErrorCode, string>> = {
  INSUFFICIENT_RESOURCES:
    "the placement's memory slices are taken, the profile's instance limit is reached or the GPU's compute slices are used up: compare `nvidia-smi mig -lgi` with the published counters",
  IN_USE: 'processes still run on the instance (or GPU instances exist while MIG mode changes): stop them and retry',
  NOT_SUPPORTED: 'MIG mode is off on this GPU, or the GPU, driver or library has no MIG (or this call): enable MIG mode (--mig-enable) or publish the GPU whole',
  NO_PERMISSION: 'MIG management needs root or CAP_SYS_ADMIN (nvml.h: "Requires privileged user"): run gpulet privileged or with CAP_SYS_ADMIN',
  INVALID_ARGUMENT: 'the profile ID or placement is not one of this GPU\'s (`nvidia-smi mig -lgip` / `-lgipp`)',
  NOT_FOUND: 'no such GPU or instance',
  RESET_REQUIRED: 'the new MIG mode is pending until a GPU reset: reset the GPU (`nvidia-smi -r`) or reboot the VM',
  UNKNOWN: 'see the NVML error',
};

/** {@link MigErrorCode} of an NVML return code. */
export function migErrorCodeOf(nvmlCode: number): MigErrorCode {
  return CODES[nvmlCode] ?? 'UNKNOWN';
}

/**
 * The {@link BackendError} of a failed MIG call: `<what> on GPU <uuid> failed: <NVML name> from <function>
 * (<NVML text>): <advice>`, with `migCode`, `nvmlCode` and `nvmlName`. An {@link NvmlError} carrying
 * `rollbackError` (the GI could not be destroyed again) says so. A BackendError with a `migCode` passes through.
 */
export function migError(what: string, gpuUuid: string, err: unknown, library: string): BackendError {
  if (err instanceof BackendError && err.migCode !== undefined) return err;
  if (!(err instanceof NvmlError)) {
    const text = err instanceof Error ? err.message : String(err);
    return new BackendError(`${what} on GPU ${gpuUuid} failed: ${text}`, { library, migCode: 'UNKNOWN', cause: err });
  }
  const migCode = migErrorCodeOf(err.code);
  const rollback = (err as NvmlError & { rollbackError?: unknown }).rollbackError;
  const rollbackText =
    rollback instanceof NvmlError
      ? `; destroying the half-made GPU instance failed too (${rollback.name} from ${rollback.nvmlFunction}): it may be left on the GPU, destroy it with \`nvidia-smi mig -dgi\``
      : err.nvmlFunction !== 'nvmlDeviceCreateGpuInstanceWithPlacement' && what.startsWith('creating')
        ? '; the GPU instance was destroyed again'
        : '';
  return new BackendError(
    `${what} on GPU ${gpuUuid} failed: ${err.name} from ${err.nvmlFunction} (${err.message})${rollbackText}: ${ADVICE[migCode]}`,
    { library, migCode, nvmlCode: err.code, nvmlName: err.name, cause: err },
  );
}
