/**
 * A logger that keeps what it is told: a test observes a state the code under test announces in its log
 * ("unprepared a claim ...", "state lock held; waiting") instead of sleeping and hoping it was reached.
 */
import { pino, type LevelWithSilent } from 'pino';
import type { Logger } from '../../src/log.js';
import { waitFor, type WaitForOptions } from './wait.js';

/** One log record as pino wrote it (`msg`, numeric `level`, bindings such as `component`, and fields). */
export interface LogRecord {
  readonly msg?: string;
  readonly level: number;
  readonly [key: string]: unknown;
}

/** A logger and the records it wrote, in order. */
export interface RecordingLogger {
  readonly logger: Logger;
  readonly records: readonly LogRecord[];
  /** Records whose message contains `text`. */
  withMessage(text: string): LogRecord[];
  /** Wait until at least `count` (default 1) records have a message containing `text`; resolves with them. */
  waitForMessage(text: string, options: Omit<WaitForOptions, 'what'> & { readonly count?: number }): Promise<LogRecord[]>;
}

/** A pino logger at `level` (default debug) writing its JSON lines into memory, synchronously. */
export function recordingLogger(level: LevelWithSilent = 'debug'): RecordingLogger {
  const records: LogRecord[] = [];
  const logger = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  const withMessage = (text: string): LogRecord[] => records.filter((r) => r.msg?.includes(text) === true);
  return {
    logger,
    records,
    withMessage,
    waitForMessage: (text, options) => {
      const count = options.count ?? 1;
      return waitFor(() => {
        const found = withMessage(text);
        return found.length >= count ? found : undefined;
      }, { ...options, what: `${count} log record(s) saying "${text}"` });
    },
  };
}
