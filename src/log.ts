/**
 * The one structured logger, injected everywhere (never imported as a global by library code).
 * Fixed keys: `claimUid`, `claim` (namespace/name), `device` (device name), `uuid` (GPU/MIG UUID), `err`.
 *
 * Identifiers in a log line are bounded: a value under one of the identifier keys longer than
 * {@link MAX_LOGGED_ID} characters is cut, with its length noted, wherever it is logged (a call's fields or a
 * child logger's bindings). An identifier can arrive from outside before it is checked (a gRPC request with a
 * 3 MB claim UID is answered with an error naming it); the log line about it must not be 3 MB.
 */
import { pino, type DestinationStream, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/** A pino logger. Children carry a `component` key. */
export type Logger = PinoLogger;

/** Log levels accepted by `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Longest identifier written to a log line, in characters. */
export const MAX_LOGGED_ID = 128;

/** Keys whose values are identifiers that may come from outside. */
const IDENTIFIER_KEYS = ['claimUid', 'claim', 'device', 'uuid', 'pod', 'namespace', 'name'] as const;

/** `value` cut to {@link MAX_LOGGED_ID} characters with its length noted, when it is a longer string. */
export function boundedId(value: unknown): unknown {
  if (typeof value !== 'string' || value.length <= MAX_LOGGED_ID) return value;
  return `${value.slice(0, MAX_LOGGED_ID)}… (${value.length} characters)`;
}

/**
 * Create the root logger writing JSON lines to stderr (stdout stays free for the CLI and demo).
 * @param level one of {@link LOG_LEVELS}
 * @param destination where lines go (tests); default stderr
 */
export function createLogger(level: LevelWithSilent = 'info', destination: DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      level,
      base: { service: 'gpulet' },
      // pino applies serializers to a call's fields and to a child logger's bindings alike.
      serializers: Object.fromEntries(IDENTIFIER_KEYS.map((key) => [key, boundedId])),
    },
    destination,
  );
}

/** A logger that drops everything: for tests and benchmarks. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
