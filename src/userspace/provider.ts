/**
 * Where a claim's container gets the NVIDIA driver's userspace from (`--driver-userspace`), decided once per
 * driver version — at start-up, and again when the running driver's version (NVML `nvmlSystemGetDriverVersion`)
 * is not the one of the last decision — never per prepare:
 * - `none`: nothing (the claim spec has the device nodes only; the image or another runtime brings the rest);
 * - `toolkit`: the NVIDIA Container Toolkit's generated spec (`toolkit-spec.ts`); each prepared device's CDI IDs
 *   are gpulet's claim device plus the toolkit's device of the same UUID, after checking it is in that spec;
 * - `discover`: gpulet finds the files itself (`host-scan.ts`) and adds them to every claim spec (`edits.ts`);
 * - `auto`: `toolkit` when its spec is there, else `discover`.
 * The toolkit's spec and the discovered files keep `NVIDIA_VISIBLE_DEVICES=void` in the claim spec, as NVIDIA's
 * own generated spec does next to its mounts and hooks (toolkit `pkg/nvcdi` common edits; k8s-dra-driver-gpu
 * `cmd/gpu-kubelet-plugin/cdi.go`): it stops a legacy-mode runtime hook from adding GPUs, not the userspace.
 */
import type { DriverUserspaceMode } from '../config.js';
import { CdiError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { UserspaceEdits } from './edits.js';
import { planUserspaceEdits } from './edits.js';
import { scanDriverRoot } from './host-scan.js';
import { findToolkitSpec, TOOLKIT_SPEC_DIRS, TOOLKIT_SPEC_FILES, toolkitDeviceId, type ToolkitSpec } from './toolkit-spec.js';


/** The decision for one driver version. */
export type DriverUserspace =
  | { readonly source: 'none' }
  | { readonly source: 'discover'; readonly version: string; readonly edits: UserspaceEdits; readonly missing: readonly string[] }
  | { readonly source: 'toolkit'; readonly version: string; readonly spec: ToolkitSpec }
  /** `toolkit` asked for and its spec unusable: every prepare fails with `reason`. */
  | { readonly source: 'unavailable'; readonly version: string; readonly reason: string };

/** Options of {@link UserspaceProvider}. */
export interface UserspaceOptions {
  readonly mode: DriverUserspaceMode;
  /** The driver root as the host sees it (`--nvidia-driver-root`): spec host paths are under it. */
  readonly hostDriverRoot: string;
  /** The driver root where the agent reads it (`--container-driver-root`). */
  readonly containerDriverRoot: string;
  /** Dirs searched for the toolkit's spec, in order (gpulet's `--cdi-dir`, then {@link TOOLKIT_SPEC_DIRS}). */
  readonly toolkitSpecDirs: readonly string[];
  /** Host path of `nvidia-cdi-hook` (`--nvidia-cdi-hook-path`); found under the driver root when unset. */
  readonly cdiHookPath?: string;
  /** `process.arch` of the node's libraries (default: the agent's). */
  readonly arch?: string;
  readonly logger: Logger;
}

/** A driver version as NVML reports it (`nvmlSystemGetDriverVersion`), e.g. `535.261.03`, `580.95.05`. */
const DRIVER_VERSION = /^\d{1,6}(\.\d{1,6}){1,3}$/;

/** What the claim steps (src/state/claim-ops.ts) need: the current edits and the extra CDI IDs of a device. */
export interface UserspacePort {
  /** Decide again when `driverVersion` is not the version of the last decision. Never rejects. */
  refresh(driverVersion: string): Promise<void>;
  /** Edits every claim spec gets (discover), or undefined. */
  edits(): UserspaceEdits | undefined;
  /**
   * CDI IDs to answer besides gpulet's own for a device (toolkit: `nvidia.com/gpu=<uuid>`), none otherwise.
   * @throws CdiError naming the toolkit's spec file and the UUID when the device is not in it, or why there is
   *   no usable spec.
   */
  cdiIdsFor(deviceUuid: string): readonly string[];
}

/** The dirs to search for the toolkit's spec: `cdiDir` first, then the runtimes' defaults, without repeats. */
export function toolkitSpecDirs(cdiDir: string): string[] {
  return [...new Set([cdiDir, ...TOOLKIT_SPEC_DIRS])];
}

/**
 * Decide for one driver version (see file doc).
 * @returns the decision; `unavailable` when `toolkit` was asked for and its spec is missing or unusable.
 */
export async function decideUserspace(options: UserspaceOptions, version: string): Promise<DriverUserspace> {
  const log = options.logger;
  if (options.mode === 'none') return { source: 'none' };
  if (options.mode === 'toolkit' || options.mode === 'auto') {
    let spec: ToolkitSpec | undefined;
    let problem: string | undefined;
    try {
      spec = await findToolkitSpec(options.toolkitSpecDirs);
    } catch (err) {
      problem = errorMessage(err);
    }
    if (spec !== undefined) return { source: 'toolkit', version, spec };
    const reason = problem ?? (
      `no NVIDIA Container Toolkit CDI spec (${TOOLKIT_SPEC_FILES.join(' or ')}) in ${options.toolkitSpecDirs.join(', ')}; ` +
      'generate it on the node with `nvidia-ctk cdi generate --device-name-strategy=uuid --output=/var/run/cdi/nvidia.yaml`, ' +
      'or use --driver-userspace=discover'
    );
    if (options.mode === 'toolkit') return { source: 'unavailable', version, reason };
    if (problem !== undefined) log.warn({ reason }, 'driver userspace: the toolkit spec is unusable; discovering the driver files instead');
  }
  if (!DRIVER_VERSION.test(version)) {
    // The version names files and dirs (`libcuda.so.<version>`, `nvidia/<version>/`): only digits and dots.
    log.warn({ driverVersion: version }, 'driver userspace: the driver version is not <digits>.<digits>[…]; nothing discovered');
    return { source: 'discover', version, edits: { mounts: [], hooks: [] }, missing: [`the driver version (NVML answered ${JSON.stringify(version)})`] };
  }
  const scan = await scanDriverRoot({
    containerDriverRoot: options.containerDriverRoot,
    hostDriverRoot: options.hostDriverRoot,
    version,
    ...(options.arch === undefined ? {} : { arch: options.arch }),
    ...(options.cdiHookPath === undefined ? {} : { cdiHookPath: options.cdiHookPath }),
  });
  if (scan.ldCacheProblem !== undefined) log.info({ problem: scan.ldCacheProblem }, 'driver userspace: ld cache not used; searching the library dirs');
  return { source: 'discover', version, edits: planUserspaceEdits(scan.files, options.hostDriverRoot), missing: scan.missing };
}

/** Keeps the decision of the running driver version (see file doc). */
export class UserspaceProvider implements UserspacePort {
  private decision: DriverUserspace = { source: 'none' };
  private version: string | undefined;
  private pending: Promise<void> | undefined;
  /** Decide again at the next refresh even for the same version: the decision was unavailable, or a device
   * was not in the toolkit's spec (the kubelet's retry then reads a regenerated spec). */
  private stale = false;

  constructor(private readonly options: UserspaceOptions) {}

  /** The current decision (`none` before the first {@link refresh}). */
  current(): DriverUserspace {
    return this.decision;
  }

  refresh(driverVersion: string): Promise<void> {
    if (this.options.mode === 'none' || (driverVersion === this.version && !this.stale)) return this.pending ?? Promise.resolve();
    const run = (this.pending ?? Promise.resolve()).then(async () => {
      if (driverVersion === this.version && !this.stale) return;
      this.stale = false;
      try {
        this.decision = await decideUserspace(this.options, driverVersion);
      } catch (err) {
        this.decision = { source: 'unavailable', version: driverVersion, reason: `cannot find the driver userspace: ${errorMessage(err)}` };
      }
      this.version = driverVersion;
      if (this.decision.source === 'unavailable') this.stale = true;
      this.log(this.decision);
    });
    this.pending = run;
    return run;
  }

  edits(): UserspaceEdits | undefined {
    return this.decision.source === 'discover' ? this.decision.edits : undefined;
  }

  cdiIdsFor(deviceUuid: string): readonly string[] {
    const d = this.decision;
    if (d.source === 'unavailable') throw new CdiError(`--driver-userspace=${this.options.mode}: ${d.reason}`);
    if (d.source !== 'toolkit') return [];
    if (!d.spec.deviceNames.has(deviceUuid)) {
      this.stale = true;
      throw new CdiError(
        `device ${deviceUuid} is not in the NVIDIA Container Toolkit's CDI spec ${d.spec.path} (its devices must be named by UUID: ` +
          'regenerate it with `nvidia-ctk cdi generate --device-name-strategy=uuid`, e.g. after a MIG change)',
      );
    }
    return [toolkitDeviceId(deviceUuid)];
  }

  private log(d: DriverUserspace): void {
    const log = this.options.logger;
    switch (d.source) {
      case 'none':
        return;
      case 'toolkit':
        log.info({ spec: d.spec.path, devices: d.spec.deviceNames.size, driverVersion: d.version }, 'driver userspace: the NVIDIA Container Toolkit spec');
        return;
      case 'discover':
        log.info(
          { driverVersion: d.version, mounts: d.edits.mounts.length, hooks: d.edits.hooks.length, missing: d.missing },
          'driver userspace: discovered in the driver root',
        );
        if (!d.edits.mounts.some((m) => /\/libcuda\.so\.[^/]*$/.test(m.containerPath))) {
          log.warn({ driverVersion: d.version, root: this.options.containerDriverRoot }, `driver userspace: no libcuda.so.${d.version} found; CUDA programs will not start (check --container-driver-root)`);
        }
        return;
      case 'unavailable':
        log.error({ reason: d.reason }, 'driver userspace unavailable: every prepare fails until it is fixed');
        return;
    }
  }
}
