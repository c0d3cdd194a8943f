/**
 * Child process of the in-process agent benchmarks (bench/agent.ts): the embedded development API server
 * (dev/embedded.ts `startEmbeddedApi`) alone in its own process, so that the work it does for the agent (each
 * prepare's claim GET, the server-side apply of the claim's `status.devices` after each prepare and unprepare)
 * does not run on the agent's event loop, as on a real node where the API server is another machine.
 * Ops (bench/scale-ipc.ts): `start` `{ stateDir, nodeName }` → `{ url, kubeconfigPath, kubeconfig }`; `exit`.
 */
import { startEmbeddedApi, type EmbeddedApi } from '../dev/embedded.js';
import { silentLogger } from '../src/log.js';
import { dnsSubdomainSchema } from '../src/model/names.js';
import { serveParent } from './scale-ipc.js';

let api: EmbeddedApi | undefined;

serveParent(
  {
    start: async (arg: unknown) => {
      const { stateDir, nodeName } = arg as { stateDir: string; nodeName: string };
      api = await startEmbeddedApi({ stateDir, nodeName: dnsSubdomainSchema.parse(nodeName), embeddedApiPort: 0 }, silentLogger());
      return { url: api.url, kubeconfigPath: api.kubeconfigPath, kubeconfig: api.kubeconfig() };
    },
  },
  async () => {
    await api?.close();
  },
);
