/**
 * The seam for `--kube-api=embedded`: an API server the agent starts in its own process. It is a development
 * tool (dev/embedded.ts implements {@link EmbeddedApiProvider}; `npm start`, the demo, tests and benchmarks
 * inject it), never part of the agent: the production command (src/cli.ts) has no provider, so
 * `--kube-api=embedded` is a configuration error there. Nothing in src/ imports dev/ (eslint.config.js).
 */
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';

/** A running embedded API server with its kubeconfig written to disk. */
export interface EmbeddedApi {
  /** Base URL, e.g. `https://127.0.0.1:41234`. */
  readonly url: string;
  /** Where its kubeconfig was written (`<stateDir>/kubeconfig`, mode 0600), for kubectl. */
  readonly kubeconfigPath: string;
  /** The kubeconfig YAML, for the agent's own client. */
  kubeconfig(): string;
  /** Stop serving. Idempotent. */
  close(): Promise<void>;
}

/** Starts an {@link EmbeddedApi}: what `startAgent`/`runCli` are given for `--kube-api=embedded`. */
export interface EmbeddedApiProvider {
  /**
   * Start an API server on `config.embeddedApiPort` (0 = a free port) that knows the node `config.nodeName`,
   * and write its kubeconfig under `config.stateDir`.
   * @throws Error when it cannot listen or write the kubeconfig
   */
  start(config: Pick<Config, 'stateDir' | 'nodeName' | 'embeddedApiPort'>, logger: Logger): Promise<EmbeddedApi>;
}

/** Why `--kube-api=embedded` is refused without a provider (one line, says what to do). */
export const EMBEDDED_API_UNAVAILABLE =
  '--kube-api=embedded: the embedded API server is a development tool, not part of the gpulet command; ' +
  'run it with `npm start`, or use --kube-api=in-cluster (in a pod) or --kube-api=kubeconfig --kubeconfig <path>';

/**
 * The provider `config` needs: `provider` for `--kube-api=embedded`, undefined for the other modes.
 * @throws ConfigError ({@link EMBEDDED_API_UNAVAILABLE}) when `config.kubeApi` is `embedded` and `provider`
 *   is undefined
 */
export function embeddedApiFor(
  config: Pick<Config, 'kubeApi'>,
  provider: EmbeddedApiProvider | undefined,
): EmbeddedApiProvider | undefined {
  if (config.kubeApi !== 'embedded') return undefined;
  if (provider === undefined) throw new ConfigError(EMBEDDED_API_UNAVAILABLE);
  return provider;
}
