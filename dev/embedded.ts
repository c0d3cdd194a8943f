/**
 * The embedded development cluster that `npm start` runs against: the in-process API server with the node
 * object and gpulet's DeviceClasses, and a kubeconfig at `<stateDir>/kubeconfig` for kubectl and
 * @kubernetes/client-node. A development tool, never used with `--kube-api=in-cluster|kubeconfig`, never part
 * of the agent: it reaches the agent only injected, as {@link embeddedApiProvider} (dev/start.ts, the demo,
 * tests, benchmarks), through the seam src/k8s/embedded-api.ts declares.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import type { Config } from '../src/config.js';
import type { EmbeddedApi, EmbeddedApiProvider } from '../src/k8s/embedded-api.js';
import type { Logger } from '../src/log.js';
import { startApiServer } from './apiserver/server.js';
import type { KubeObject } from './apiserver/types.js';

export type { EmbeddedApi } from '../src/k8s/embedded-api.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** DeviceClasses shipped in daemonset/, so claims in the dev cluster can name them as in a real one. */
function deviceClasses(): KubeObject[] {
  const dir = path.join(repoRoot, 'daemonset');
  if (!fs.existsSync(dir)) return [];
  const out: KubeObject[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8'))) {
      const obj: unknown = doc.toJS();
      if (obj && typeof obj === 'object' && (obj as { kind?: unknown }).kind === 'DeviceClass') out.push(obj as KubeObject);
    }
  }
  return out;
}

/**
 * Start the embedded API server for `config` (port `config.embeddedApiPort`, node `config.nodeName`) and write
 * `<stateDir>/kubeconfig` (mode 0600).
 */
export async function startEmbeddedApi(
  config: Pick<Config, 'stateDir' | 'nodeName' | 'embeddedApiPort'>,
  logger: Logger,
): Promise<EmbeddedApi> {
  fs.mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const kubeconfigPath = path.join(config.stateDir, 'kubeconfig');
  const server = await startApiServer({ port: config.embeddedApiPort, kubeconfigPath, nodes: [config.nodeName] });
  for (const dc of deviceClasses()) {
    try {
      server.create(dc);
    } catch (err: unknown) {
      logger.warn({ err, name: dc.metadata.name }, 'cannot load DeviceClass into the embedded API server');
    }
  }
  return { url: server.url, kubeconfigPath, kubeconfig: () => server.kubeconfig(), close: () => server.close() };
}

/** {@link startEmbeddedApi} as the agent takes it: `startAgent(config, logger, { embeddedApi })`, `runCli`. */
export const embeddedApiProvider: EmbeddedApiProvider = { start: startEmbeddedApi };

/**
 * A @kubernetes/client-node `KubeConfig` for an agent's embedded API server, for tools and tests that want
 * client-node's generated APIs (the agent itself talks to the API server through src/k8s/rest.ts).
 * @throws Error when the agent runs without an embedded API server
 */
export function clientKubeConfig(agent: { readonly apiServer: { readonly kubeconfigPath: string } | undefined }): KubeConfig {
  if (agent.apiServer === undefined) throw new Error('the agent has no embedded API server (--kube-api=embedded)');
  const kc = new KubeConfig();
  kc.loadFromFile(agent.apiServer.kubeconfigPath);
  return kc;
}
