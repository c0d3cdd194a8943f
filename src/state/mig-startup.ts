/**
 * Dynamic MIG at agent start-up, after claim recovery: `--mig-enable` and the log lines that say how each dynamic
 * GPU is published (README "Dynamic MIG"). Called once by src/main.ts.
 */
import { errorMessage } from '../errors.js';
import type { GpuBackend } from '../gpu/types.js';
import type { Logger } from '../log.js';
import { gpuDeviceName } from '../model/devices.js';
import { togglesMigModeWithoutReset } from '../model/mig-placements.js';

/**
 * Dynamic MIG GPUs at start-up (after claim recovery): `--mig-enable` (below), then one line per GPU whose
 * publishing differs from the rest: MIG mode off (published as a full GPU), or an Ampere GPU in MIG mode (its
 * full GPU `gpu-<minor>` is not published: leaving MIG mode needs a GPU reset there, so prepare could not hand it
 * out — as NVIDIA's driver, `supportsMIGModeToggle`). GPUs in `held` (their full GPU is a prepared claim's,
 * with MIG mode off) are left as they are. Never throws.
 */
export async function startDynamicMigModes(backend: GpuBackend, dynamicGpus: readonly string[], held: ReadonlySet<string>, migEnable: boolean, logger: Logger): Promise<void> {
  const mine = dynamicGpus.filter((uuid) => !held.has(uuid));
  if (migEnable) await enableMig(backend, mine, logger);
  for (const gpu of backend.inventory().gpus) {
    if (!mine.includes(gpu.uuid)) continue;
    if (!gpu.migEnabled) {
      logger.warn({ uuid: gpu.uuid, index: gpu.index }, 'dynamic MIG: MIG mode is off on this GPU; publishing it as a full GPU (start with --mig-enable to turn MIG mode on)');
    } else if (!togglesMigModeWithoutReset(gpu.architecture)) {
      logger.info(
        { uuid: gpu.uuid, index: gpu.index, architecture: gpu.architecture },
        `dynamic MIG: not publishing the full GPU ${gpuDeviceName(gpu)}: leaving MIG mode needs a GPU reset on this ${gpu.architecture} GPU; its MIG placements are published`,
      );
    }
  }
}

/**
 * `--mig-enable`: turn MIG mode on for the dynamic GPUs that have it off (`nvmlDeviceSetMigMode`). Hopper and
 * newer switch at once; an A100-class GPU keeps the change pending until a GPU reset, which gpulet never does
 * itself: it logs an error saying so, and the GPU stays published as a full GPU. Never throws (each GPU's
 * failure is logged with NVML's reason).
 */
async function enableMig(backend: GpuBackend, dynamicGpus: readonly string[], logger: Logger): Promise<void> {
  for (const gpu of backend.inventory().gpus) {
    if (!dynamicGpus.includes(gpu.uuid) || gpu.migEnabled) continue;
    const log = logger.child({ uuid: gpu.uuid, index: gpu.index, product: gpu.productName });
    if (backend.mig === undefined) {
      log.error('--mig-enable: this GPU backend cannot set MIG mode; the GPU is published as a full GPU');
      continue;
    }
    try {
      const mode = await backend.mig.setMigMode(gpu.uuid, true);
      if (mode.resetRequired || !mode.current) {
        log.error(
          { current: mode.current, pending: mode.pending },
          '--mig-enable: MIG mode is pending until a GPU reset (A100 class: nvidia-smi -r -i <index> with no processes on the GPU, or a reboot; ' +
            'cloud VMs often cannot reset a GPU); until then the GPU is published as a full GPU',
        );
      } else {
        log.info('--mig-enable: MIG mode turned on');
      }
    } catch (err) {
      log.error({ err: errorMessage(err) }, '--mig-enable: cannot turn MIG mode on; the GPU is published as a full GPU');
    }
  }
}
