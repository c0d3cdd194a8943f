/**
 * `--wait-for-driver`: for nodes whose NVIDIA driver is installed after the agent starts (e.g. by the GPU
 * Operator's driver container). Instead of failing fast, backend start-up is retried with capped exponential
 * backoff; each failure is logged saying what is missing (the BackendError's message names the library and the
 * NVML error) and reported to `onWaiting`, which the composition root shows on `/readyz`. Nothing registers
 * with the kubelet until the devices are known.
 */
import { BackendError, StartupAbortedError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, type BackoffOptions } from '../util/backoff.js';
import type { GpuBackend } from './types.js';

export { StartupAbortedError } from '../errors.js';

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Retry on BackendError instead of failing fast. */
  readonly wait: boolean;
  readonly logger: Logger;
  /** Retry bounds; default first retry within 1 s, then at most every 30 s. */
  readonly backoff?: BackoffOptions;
  /** Told why we are still waiting, after every failed attempt. */
  readonly onWaiting?: (reason: string) => void;
  /** Aborts the wait (rejects with {@link StartupAbortedError}). */
  readonly signal?: AbortSignal;
  /** Injectable random source for the jitter (tests). */
  readonly random?: () => number;
}

/** Default retry bounds while waiting for the driver, ms. */
export const WAIT_FOR_DRIVER_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 30_000 };

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new StartupAbortedError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new StartupAbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Create and init a backend. Without `wait`, the first error propagates (fail fast). With `wait`, a
 * BackendError (library missing, driver not loaded, ...) is retried with backoff until it succeeds or the
 * signal aborts; any other error propagates.
 * @param create makes a fresh backend per attempt (a failed init leaves nothing behind to reuse)
 * @throws BackendError (fail fast), StartupAbortedError, or whatever `create`/`init` throws otherwise
 */
export async function initBackend(create: () => GpuBackend, opts: InitBackendOptions): Promise<GpuBackend> {
  const backoff = new Backoff(opts.backoff ?? WAIT_FOR_DRIVER_BACKOFF, opts.random);
  for (;;) {
    if (opts.signal?.aborted) throw new StartupAbortedError();
    let backend: GpuBackend | undefined;
    try {
      backend = create();
      await backend.init();
      if (backoff.failures > 0) opts.logger.info({ attempts: backoff.failures + 1 }, 'GPU backend is up: the driver is there now');
      return backend;
    } catch (err: unknown) {
      await backend?.shutdown().catch(() => undefined);
      if (!opts.wait || !(err instanceof BackendError)) throw err;
      const delay = backoff.next();
      opts.logger.warn(
        { attempt: backoff.failures, retryInMs: delay, nvmlCode: err.nvmlCode, library: err.library },
        `waiting for the GPU driver (--wait-for-driver): ${err.message}`,
      );
      opts.onWaiting?.(err.message);
      await sleep(delay, opts.signal);
    }
  }
}
