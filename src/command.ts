/**
 * The `gpulet` command, shared by its two entry points: src/cli.ts (production: `gpulet`, the container) and
 * dev/start.ts (`npm start`: the same command with the development tools injected). Parse the configuration,
 * start the agent, and stop it on SIGTERM/SIGINT. Exit codes: 0 after a clean shutdown, 1 when the agent could
 * not start (the message says what failed and what to check; no stack trace), 2 on a configuration error
 * (including `--kube-api=embedded` without the embedded API server), 130/143 on a second signal.
 */
import { loadConfig, buildCommand, type Config } from './config.js';
import { ConfigError, GpuletError, StartupAbortedError, errorMessage } from './errors.js';
import { embeddedApiFor, type EmbeddedApiProvider } from './k8s/embedded-api.js';
import { createLogger } from './log.js';
import { startAgent } from './main.js';

/** What an entry point adds to the command. The production one adds nothing. */
export interface CliProviders {
  /** The API server of `--kube-api=embedded` (dev/embedded.ts); without it that mode exits 2. */
  readonly embeddedApi?: EmbeddedApiProvider;
}

/**
 * Run the command on `argv` (the arguments after the program name) until the agent stops.
 * Writes the help to stdout, one-line errors to stderr, the JSON log to stderr.
 * @returns the exit code (see the module doc); never rejects for a start-up or configuration failure
 */
export async function runCli(argv: readonly string[], providers: CliProviders = {}): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(buildCommand().helpInformation());
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig(argv);
    embeddedApiFor(config, providers.embeddedApi);
  } catch (err: unknown) {
    process.stderr.write(`gpulet: configuration error: ${errorMessage(err)}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }
  const logger = createLogger(config.logLevel);
  // A signal during start-up (e.g. while --wait-for-driver waits) cancels it cleanly.
  const starting = new AbortController();
  let startSignal: NodeJS.Signals | undefined;
  const cancelStart = (signal: NodeJS.Signals): void => {
    startSignal = signal;
    starting.abort();
  };
  process.once('SIGTERM', cancelStart);
  process.once('SIGINT', cancelStart);
  let agent;
  try {
    agent = await startAgent(config, logger, {
      signal: starting.signal,
      ...(providers.embeddedApi === undefined ? {} : { embeddedApi: providers.embeddedApi }),
    });
  } catch (err: unknown) {
    if (err instanceof StartupAbortedError) {
      logger.info('start-up cancelled by a signal');
      return 0;
    }
    const code = err instanceof GpuletError ? err.code : 'UNEXPECTED';
    logger.fatal({ code, err: err instanceof GpuletError ? undefined : err }, errorMessage(err));
    process.stderr.write(`gpulet: cannot start: ${errorMessage(err)}\n`);
    return 1;
  }
  process.off('SIGTERM', cancelStart);
  process.off('SIGINT', cancelStart);
  const running = agent;
  return await new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals += 1;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting at once');
        resolve(signal === 'SIGINT' ? 130 : 143);
        return;
      }
      logger.info({ signal }, 'shutting down');
      running.stop().then(
        () => resolve(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // A signal after start-up's last cancellation point (the kubelet plugin registers before the telemetry
    // starts, so calls and signals can arrive while start-up finishes) is a shutdown request like any other.
    if (startSignal !== undefined) onSignal(startSignal);
  });
}

/**
 * The body of an entry point: report unhandled rejections, {@link runCli}, and exit the process with its code
 * (1 when it throws, which would be a bug).
 */
export function runMain(argv: readonly string[], providers: CliProviders = {}): void {
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`gpulet: unhandled rejection (a bug; please report): ${errorMessage(reason)}\n`);
  });
  runCli(argv, providers).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`gpulet: ${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
