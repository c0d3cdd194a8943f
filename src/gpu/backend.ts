/**
 * Backend selection: the one place that maps `--backend` to a `GpuBackend`.
 */
import type { Config } from '../config.js';
import { BackendError } from '../errors.js';
import type { Logger } from '../log.js';
import { createMockBackend } from './mock/index.js';
import type { GpuBackend } from './types.js';

/**
 * Create (but do not init) the configured backend.
 * @throws BackendError when the backend is not available in this build. Never falls back to the mock.
 */
export function createBackend(config: Pick<Config, 'backend' | 'mockMachine' | 'nodeName' | 'nvmlLibrary'>, logger: Logger): GpuBackend {
  switch (config.backend) {
    case 'mock':
      logger.info({ machine: config.mockMachine }, 'using the mock GPU backend');
      return createMockBackend({ machine: config.mockMachine, nodeName: config.nodeName });
    case 'nvml':
      throw new BackendError(
        `--backend=nvml: the NVML backend (library ${config.nvmlLibrary}) is not part of this build yet; ` +
          'it arrives with the NVML binding (issue #3). Use --backend=mock to run on simulated GPUs.',
        { library: config.nvmlLibrary },
      );
  }
}
