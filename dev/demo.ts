/**
 * `npm run demo`: the whole flow on a mock 8-GPU node, played as the scheduler and the kubelet would, with
 * each step printed. Runs in a temp dir with free ports, so it never collides with a running `npm start`.
 * `npm run demo -- --cluster [dir]` plays it on the upstream cluster of `npm run cluster` instead, with the
 * real scheduler and the node agent on the kubelet's DRA manager (dev/demo-cluster.ts).
 *
 *  1. start gpulet (mock dgx-h100, embedded API server)   5. kubelet: NodePrepareResources
 *  2. kubelet: discover + register the plugin             6. show the CDI spec the runtime will read
 *  3. show the ResourceSlices gpulet published            7. scrape /metrics: the claim's GPUs, attributed
 *  4. user + scheduler: a claim for two GPUs, allocated   8. kubelet: NodeUnprepareResources
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ResourceV1Api, type ResourceV1ResourceClaim } from '@kubernetes/client-node';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startAgent } from '../src/main.js';
import { clusterDemo, DEFAULT_CLUSTER_DIR } from './demo-cluster.js';
import { done, indent, printMetrics, printSlices, step } from './demo-print.js';
import { clientKubeConfig, embeddedApiProvider } from './embedded.js';
import { KubeletSimulator } from './kubelet/simulator.js';

/** The simulated flow: embedded API server, scheduler's allocation written by hand, KubeletSimulator. */
async function simulatedDemo(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-demo-'));
  const config = loadConfig([
    '--node-name', 'demo-node',
    '--state-dir', dir,
    '--metrics-address', '127.0.0.1:0',
    '--sample-interval', '200',
    '--log-level', process.env['GPULET_LOG_LEVEL'] ?? 'warn',
  ]);
  step('start gpulet on a mock dgx-h100 (8 × H100 80GB, GPUs 6 and 7 in MIG mode) with an embedded API server');
  const agent = await startAgent(config, createLogger(config.logLevel), { embeddedApi: embeddedApiProvider });
  const kubelet = new KubeletSimulator({ registryDir: config.pluginRegistryDir });
  try {
    console.log(indent(`state dir   ${dir}\nAPI server  ${agent.apiServer?.url ?? ''}\nmetrics     ${agent.telemetry.url}`));

    step(`kubelet: watch ${path.relative(dir, config.pluginRegistryDir)}/, GetInfo, NotifyRegistrationStatus`);
    await kubelet.start();
    const plugin = await kubelet.waitForPlugin(config.driverName, 10_000);
    console.log(indent(`registered ${plugin.driverName}: endpoint ${path.relative(dir, plugin.endpoint)}, ` +
      `versions [${plugin.supportedVersions.join(', ')}], kubelet chose ${plugin.version}`));

    step('ResourceSlices published for the node (kubectl get resourceslices)');
    await agent.publisher.whenSynced();
    await printSlices(clientKubeConfig(agent), config.nodeName);
    const api = clientKubeConfig(agent).makeApiClient(ResourceV1Api);

    step('user: a ResourceClaim for two GPUs; scheduler: allocate gpu-0 and gpu-1, reserve for pod trainer');
    const podUid = randomUUID();
    const created = await api.createNamespacedResourceClaim({
      namespace: 'default',
      body: {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: 'train' },
        spec: { devices: { requests: [{ name: 'gpus', exactly: { deviceClassName: 'gpu.gpulet.dev', count: 2 } }] } },
      },
    });
    const allocated: ResourceV1ResourceClaim = {
      ...created,
      status: {
        allocation: {
          devices: {
            results: ['gpu-0', 'gpu-1'].map((device) => ({
              request: 'gpus', driver: config.driverName, pool: config.nodeName, device,
            })),
          },
        },
        reservedFor: [{ resource: 'pods', name: 'trainer', uid: podUid }],
      },
    };
    const claim = await api.replaceNamespacedResourceClaimStatus({ namespace: 'default', name: 'train', body: allocated });
    const uid = claim.metadata?.uid ?? '';
    console.log(indent(`claim default/train uid ${uid}: ${claim.status?.allocation?.devices?.results?.map((r) => r.device).join(', ') ?? ''}`));

    step('kubelet: NodePrepareResources');
    const ref = { namespace: 'default', name: 'train', uid };
    const prepared = await kubelet.prepare([ref]);
    console.log(indent(JSON.stringify(prepared, null, 2)));

    step('the CDI spec the container runtime resolves');
    const specFile = fs.readdirSync(config.cdiDir).find((f) => f.includes(uid));
    if (specFile) {
      console.log(indent(`${path.relative(dir, path.join(config.cdiDir, specFile))}:`));
      console.log(indent(fs.readFileSync(path.join(config.cdiDir, specFile), 'utf8')));
    }

    step('GET /metrics: the claim\'s GPUs, attributed to the pod and the claim');
    await new Promise((r) => setTimeout(r, 600));
    await printMetrics(agent.telemetry.url, agent.backend.inventory().gpus.slice(0, 2).map((g) => g.uuid));

    step('kubelet: NodeUnprepareResources');
    console.log(indent(JSON.stringify(await kubelet.unprepare([ref]), null, 2)));
    console.log(indent(`CDI spec present after unprepare: ${fs.existsSync(path.join(config.cdiDir, specFile ?? 'x'))}`));

    done('Try it yourself: npm start, then kubectl --kubeconfig .gpulet/kubeconfig get resourceslices');
  } finally {
    await kubelet.stop();
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `--cluster [dir]` (dir default `.gpulet/cluster`): the upstream-cluster flow; no argument: the simulated one. */
function main(argv: readonly string[]): Promise<void> {
  const i = argv.indexOf('--cluster');
  if (i < 0) {
    if (argv.length > 0) return Promise.reject(new Error(`unknown arguments ${argv.join(' ')} (usage: npm run demo [-- --cluster [dir]])`));
    return simulatedDemo();
  }
  const dir = argv[i + 1];
  return clusterDemo(dir === undefined || dir.startsWith('--') ? DEFAULT_CLUSTER_DIR : dir);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('demo failed:', err);
    process.exit(1);
  },
);
