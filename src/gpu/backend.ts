/**
 * Backend selection: the one place that maps `--backend` to a `GpuBackend`.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { createMockBackend } from './mock/index.js';
import { createNvmlBackend } from './nvml/index.js';
import type { GpuBackend } from './types.js';

/**
 * Create (but do not init) the configured backend.
 * Never falls back to the mock: an NVML start-up failure surfaces from `init()` as a BackendError.
 */
export function createBackend(
  config: Pick<Config, 'backend' | 'mockMachine' | 'nodeName' | 'nvmlLibrary' | 'sysfsRoot'> & Partial<Pick<Config, 'mockMigStateFile'>>,
  logger: Logger,
): GpuBackend {
  switch (config.backend) {
    case 'mock':
      logger.info({ machine: config.mockMachine }, 'using the mock GPU backend');
      return createMockBackend({
        machine: config.mockMachine,
        nodeName: config.nodeName,
        ...(config.mockMigStateFile === undefined ? {} : { migStateFile: config.mockMigStateFile }),
      });
    case 'nvml':
      logger.info({ library: config.nvmlLibrary }, 'using the NVML GPU backend');
      return createNvmlBackend({ library: config.nvmlLibrary, sysfsRoot: config.sysfsRoot, logger });
  }
}
