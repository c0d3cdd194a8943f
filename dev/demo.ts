/**
 * `npm run demo`: the whole flow on a mock 8-GPU node, played as the scheduler and the kubelet would, with
 * each step printed. Runs in a temp dir with free ports, so it never collides with a running `npm start`.
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
import { embeddedApiProvider } from './embedded.js';
import { KubeletSimulator } from './kubelet/simulator.js';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let stepNo = 0;
function step(title: string): void {
  stepNo += 1;
  console.log(`\n${bold(`── ${stepNo}. ${title}`)}`);
}
const indent = (text: string) => text.replace(/^/gm, '   ');

async function main(): Promise<void> {
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
    const api = agent.kubeConfig.makeApiClient(ResourceV1Api);
    const slices = await api.listResourceSlice({ fieldSelector: `spec.nodeName=${config.nodeName}` });
    for (const s of slices.items) {
      console.log(indent(`${s.metadata?.name ?? ''}  pool ${s.spec.pool.name} generation ${s.spec.pool.generation}, ${s.spec.devices?.length ?? 0} devices`));
      for (const d of s.spec.devices ?? []) {
        const a = d.attributes ?? {};
        const type = a['type']?.string ?? '';
        const what = type === 'mig' ? a['profile']?.string ?? '' : a['productName']?.string ?? '';
        console.log(indent(`  ${d.name.padEnd(24)} ${type.padEnd(4)} ${what.padEnd(22)} memory ${String(d.capacity?.['memory']?.value ?? '')}`));
      }
    }

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
    const text = await (await fetch(`${agent.telemetry.url}/metrics`)).text();
    const inventory = agent.backend.inventory();
    const uuids = inventory.gpus.slice(0, 2).map((g) => g.uuid);
    const lines = text.split('\n').filter((l) => !l.startsWith('#') && uuids.some((u) => l.includes(u)) &&
      /^(hw_gpu_utilization\{.*general|hw_gpu_memory_usage|hw_power|hw_temperature\{.*hw_sensor_location="gpu")/.test(l));
    // One line per series, with the labels that tell whose GPU it is (the full label set is on /metrics).
    const label = (l: string, k: string) => new RegExp(`${k}="([^"]*)"`).exec(l)?.[1] ?? '';
    for (const l of lines) {
      const name = l.slice(0, l.indexOf('{'));
      console.log(indent(`${name.padEnd(20)} ${label(l, 'gpulet_dra_device_name').padEnd(6)} pod=${label(l, 'k8s_pod_name')} ` +
        `claim=${label(l, 'gpulet_claim_namespace')}/${label(l, 'gpulet_claim_name')}  ${l.slice(l.lastIndexOf(' ') + 1)}`));
    }
    console.log(indent(`(${text.split('\n').filter((l) => l && !l.startsWith('#')).length} series in all)`));

    step('kubelet: NodeUnprepareResources');
    console.log(indent(JSON.stringify(await kubelet.unprepare([ref]), null, 2)));
    console.log(indent(`CDI spec present after unprepare: ${fs.existsSync(path.join(config.cdiDir, specFile ?? 'x'))}`));

    console.log(`\n${bold('done.')} Try it yourself: npm start, then kubectl --kubeconfig .gpulet/kubeconfig get resourceslices`);
  } finally {
    await kubelet.stop();
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('demo failed:', err);
    process.exit(1);
  },
);
