/**
 * The one structured logger, injected everywhere (never imported as a global by library code).
 * Fixed keys: `claimUid`, `claim` (namespace/name), `device` (device name), `uuid` (GPU/MIG UUID), `err`.
 */
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/** A pino logger. Children carry a `component` key. */
export type Logger = PinoLogger;

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Create the root logger writing JSON lines to stderr (stdout stays free for the CLI and demo).
 * @param level one of {@link LOG_LEVELS}
 */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { service: 'gpulet' } }, pino.destination(2));
}

/** A logger that drops everything: for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
