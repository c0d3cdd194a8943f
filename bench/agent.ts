/**
 * The whole agent in this process, as `gpulet` runs it (startAgent: mock dgx-h100, the embedded development API
 * server, kubelet plugin on real unix sockets, telemetry on 127.0.0.1:0), plus a KubeletSimulator registered
 * with it. Shared by the prepare and footprint benchmarks. Everything lives in one temp dir removed by `close()`.
 * The API server runs in a child process (bench/api-child.ts), started before the clock of the start-up figure:
 * on a node it is another machine, and in this process its work for every prepare (the claim GET, the status
 * apply) ran on the agent's event loop and counted in the agent's latency.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startAgent, type Agent } from '../src/main.js';
import type { EmbeddedApiProvider } from '../src/k8s/embedded-api.js';
import { KubeletSimulator } from '../dev/kubelet/simulator.js';
import { forkChild, type ChildHandle } from './scale-ipc.js';

/** A running agent with a registered kubelet simulator. */
export interface BenchAgent {
  readonly agent: Agent;
  readonly config: Config;
  readonly kubelet: KubeletSimulator;
  /** The temp dir holding state, sockets, CDI specs and the kubeconfig. */
  readonly dir: string;
  /** ms from calling startAgent to it resolving (servers up, plugin registered). */
  readonly startMs: number;
  /** ms from calling startAgent to the first ResourceSlices being written (publisher in sync). */
  readonly slicesMs: number;
  /** Stop the simulator and the agent, remove the temp dir. Idempotent; never rejects. */
  close(): Promise<void>;
}

/**
 * Start the agent and the kubelet simulator; waits for registration and for the slices to be published.
 * @param sampleIntervalMs GPU sampling interval of the agent (1000 = 1 Hz)
 * @param extraArgs more CLI arguments (later flags win), e.g. `--mock-machine h100-80gb --mig-mode dynamic`
 * @throws whatever startAgent throws, or Error when the plugin does not register within 10 s
 */
export async function startBenchAgent(sampleIntervalMs: number, extraArgs: readonly string[] = []): Promise<BenchAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-'));
  const config = loadConfig(
    ['--node-name', 'bench-node', '--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--sample-interval', String(sampleIntervalMs), '--log-level', 'silent', ...extraArgs],
    {},
    dir,
  );
  let agent: Agent | undefined;
  let kubelet: KubeletSimulator | undefined;
  let apiChild: ChildHandle | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await kubelet?.stop().catch(() => undefined);
      await agent?.stop().catch(() => undefined);
      await apiChild?.close().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    })();
    return closing;
  };
  try {
    const child = await forkChild(new URL('./api-child.ts', import.meta.url), [], 'bench API server', 512);
    apiChild = child;
    const api = await child.call<{ url: string; kubeconfigPath: string; kubeconfig: string }>('start', { stateDir: config.stateDir, nodeName: config.nodeName });
    // The agent's "embedded" API server is the child's, already running (started before the clock).
    const embeddedApi: EmbeddedApiProvider = {
      start: () => Promise.resolve({ url: api.url, kubeconfigPath: api.kubeconfigPath, kubeconfig: () => api.kubeconfig, close: () => Promise.resolve() }),
    };
    const t0 = performance.now();
    agent = await startAgent(config, silentLogger(), { embeddedApi });
    const startMs = performance.now() - t0;
    await agent.publisher.whenSynced();
    const slicesMs = performance.now() - t0;
    kubelet = new KubeletSimulator({ registryDir: config.pluginRegistryDir });
    await kubelet.start();
    await kubelet.waitForPlugin(config.driverName, 10_000);
    return { agent, config, kubelet, dir, startMs, slicesMs, close };
  } catch (err) {
    await close();
    throw err;
  }
}
