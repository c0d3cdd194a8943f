/**
 * `npm run demo -- --cluster [dir]`: the demo on the upstream Kubernetes cluster of `npm run cluster`
 * (test/upstream/, default dir `.gpulet/cluster`) instead of the simulated scheduler and kubelet. It reads the
 * cluster's `cluster.json` (kubeconfig, each node's plugin registry and plugins dirs), runs gpulet (mock
 * dgx-h100, a temp state dir) as the first node's DRA driver, and shows, step by step: the node's plugin
 * watcher registering gpulet, the ResourceSlices, the example pod of daemonset/examples/ with its claim
 * template, the REAL kube-scheduler's allocation of the claim, the node agent's prepare through gpulet (the
 * pod's `gpulet.dev/cdi-devices` annotation, written by the node agent on the kubelet's DRA manager, and the
 * CDI spec), /metrics attributed to the pod, and the unprepare when the pod is deleted. What it creates
 * (the example pod and template) it deletes; the DeviceClasses stay.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiException, CoreV1Api, KubernetesObjectApi, ResourceV1Api, VersionApi, KubeConfig, type KubernetesObject, type V1Pod,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startAgent, type Agent } from '../src/main.js';
import { done, indent, printMetrics, printSlices, step } from './demo-print.js';

/** Where `npm run cluster` writes its files (scripts/cluster.sh: `--dir .gpulet/cluster`). */
export const DEFAULT_CLUSTER_DIR = '.gpulet/cluster';
/** The node agent's annotation: container name → CDI device IDs (test/upstream/internal/node/pods.go CDIAnnotation). */
const CDI_ANNOTATION = 'gpulet.dev/cdi-devices';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NAMESPACE = 'default';
/** Bounds on each wait, to end a demo whose cluster is broken, not a claim about speed. */
const WAIT_MS = 120_000;

/** The cluster's ready line, as `cluster.json` keeps it (test/upstream/internal/cluster/cluster.go ReadyLine). */
const ClusterJson = z.object({
  ready: z.literal(true),
  version: z.string().max(64),
  server: z.string().max(256),
  kubeconfig: z.string().min(1).max(4096),
  nodes: z.array(z.object({
    name: z.string().min(1).max(63),
    registryDir: z.string().min(1).max(4096),
    pluginsDir: z.string().min(1).max(4096),
  })).min(1).max(64),
});
type ClusterJson = z.infer<typeof ClusterJson>;

/** Read and check `<dir>/cluster.json`; the error says how to get a cluster. */
function readCluster(dir: string): ClusterJson {
  const file = path.join(dir, 'cluster.json');
  let text: string;
  try {
    if (fs.statSync(file).size > 1 << 20) throw new Error(`${file} is over 1 MiB`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`no cluster at ${dir} (${err instanceof Error ? err.message : String(err)}): start one with \`npm run cluster\` (or pass --cluster <its dir>)`, { cause: err });
  }
  const parsed = ClusterJson.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${file} is not the ready line of test/upstream's cluster: ${parsed.error.message}`);
  return parsed.data;
}

/** Poll `condition` every 100 ms until it returns a value; throws naming `what` after {@link WAIT_MS}. */
async function until<T>(what: string, condition: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`gave up after ${WAIT_MS} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The Kubernetes objects of a manifest file of the repository. */
function manifest(rel: string): KubernetesObject[] {
  return parseAllDocuments(fs.readFileSync(path.join(REPO, rel), 'utf8')).map((d) => d.toJS() as KubernetesObject);
}

const is404 = (err: unknown): boolean => err instanceof ApiException && err.code === 404;
const is409 = (err: unknown): boolean => err instanceof ApiException && err.code === 409;

/** Run the demo on the cluster whose files are in `dir`. */
export async function clusterDemo(dir: string): Promise<void> {
  const cluster = readCluster(dir);
  const node = cluster.nodes[0]!;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-demo-'));
  const config = loadConfig([
    '--kube-api', 'kubeconfig', '--kubeconfig', cluster.kubeconfig, '--node-name', node.name,
    '--plugin-registry-dir', node.registryDir, '--plugins-dir', node.pluginsDir, '--state-dir', stateDir,
    '--metrics-address', '127.0.0.1:0', '--sample-interval', '200',
    '--log-level', process.env['GPULET_LOG_LEVEL'] ?? 'warn',
  ]);

  step(`start gpulet as ${node.name}'s DRA driver (mock dgx-h100) on the upstream cluster of ${dir}`);
  // The demo's own client (client-node); the agent reads the same kubeconfig through src/k8s/kubeconfig.ts.
  const adminKc = new KubeConfig();
  adminKc.loadFromFile(cluster.kubeconfig);
  let agent: Agent | undefined;
  const created: KubernetesObject[] = [];
  try {
    agent = await startAgent(config, createLogger(config.logLevel));
    const kc = adminKc;
    const version = await kc.makeApiClient(VersionApi).getCode().catch((err: unknown) => {
      throw new Error(`the cluster of ${dir} does not answer at ${cluster.server}: is \`npm run cluster\` running? (${err instanceof Error ? err.message : String(err)})`, { cause: err });
    });
    console.log(indent(`API server  ${cluster.server} (Kubernetes ${version.gitVersion})\nstate dir   ${stateDir}\nmetrics     ${agent.telemetry.url}`));

    step(`${node.name}'s kubelet plugin watcher: ${node.registryDir}, GetInfo, NotifyRegistrationStatus`);
    const plugin = agent.plugin;
    await until('the node to register gpulet', () => Promise.resolve(plugin.registration().registered === true ? true : undefined));
    console.log(indent(`registered ${config.driverName}: endpoint ${plugin.draSocket}`));

    step(`ResourceSlices published for ${node.name} (kubectl get resourceslices)`);
    await agent.publisher.whenSynced();
    await printSlices(kc, node.name);

    step('kubectl apply -f daemonset/06-deviceclasses.yaml -f daemonset/examples/gpu-claim-template.yaml -f daemonset/examples/pod-with-gpu.yaml');
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (const obj of manifest('daemonset/06-deviceclasses.yaml')) {
      try {
        await objects.create(obj);
        console.log(indent(`deviceclass ${obj.metadata?.name ?? ''} created`));
      } catch (err) {
        if (!is409(err)) throw err;
        console.log(indent(`deviceclass ${obj.metadata?.name ?? ''} unchanged`));
      }
    }
    const examples = [...manifest('daemonset/examples/gpu-claim-template.yaml'), ...manifest('daemonset/examples/pod-with-gpu.yaml')];
    for (const obj of examples) {
      const namespaced = { ...obj, metadata: { ...obj.metadata, namespace: NAMESPACE } };
      try {
        await objects.create(namespaced);
      } catch (err) {
        if (is409(err)) throw new Error(`${obj.kind} ${NAMESPACE}/${obj.metadata?.name ?? ''} already exists: delete it first (the demo makes its own)`, { cause: err });
        throw err;
      }
      created.push(namespaced);
      console.log(indent(`${obj.kind?.toLowerCase() ?? ''} ${NAMESPACE}/${obj.metadata?.name ?? ''} created`));
    }
    const podName = (examples.find((o) => o.kind === 'Pod') as V1Pod).metadata!.name!;

    step('kube-scheduler: the DynamicResources plugin allocates the claim from the ResourceSlices');
    const core = kc.makeApiClient(CoreV1Api);
    const resource = kc.makeApiClient(ResourceV1Api);
    const scheduled = await until(`pod ${podName} to be scheduled`, async () => {
      const p = await core.readNamespacedPod({ namespace: NAMESPACE, name: podName });
      return p.spec?.nodeName ? p : undefined;
    });
    const claimName = scheduled.status?.resourceClaimStatuses?.[0]?.resourceClaimName;
    if (claimName === undefined) throw new Error(`pod ${podName} is scheduled but names no claim`);
    const claim = await until(`claim ${claimName} to be allocated`, async () => {
      const c = await resource.readNamespacedResourceClaim({ namespace: NAMESPACE, name: claimName });
      return c.status?.allocation ? c : undefined;
    });
    const uid = claim.metadata?.uid ?? '';
    const condition = scheduled.status?.conditions?.find((c) => c.type === 'PodScheduled');
    console.log(indent(`pod ${NAMESPACE}/${podName} → node ${scheduled.spec!.nodeName!} (PodScheduled ${condition?.status ?? '?'})`));
    console.log(indent(`claim ${NAMESPACE}/${claimName} uid ${uid}, reserved for ${(claim.status?.reservedFor ?? []).map((r) => `${r.resource}/${r.name}`).join(', ')}`));
    const results = claim.status?.allocation?.devices?.results ?? [];
    for (const r of results) console.log(indent(`allocated: request ${r.request} → driver ${r.driver} pool ${r.pool} device ${r.device}`));
    const published = (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${node.name},spec.driver=${config.driverName}` })).items.flatMap((s) => s.spec.devices ?? []);
    const uuids = results.map((r) => published.find((d) => d.name === r.device)?.attributes?.['uuid']?.string ?? '').filter((u) => u !== '');

    step(`${node.name}'s node agent (the kubelet's DRA manager): NodePrepareResources through gpulet`);
    const running = await until(`pod ${podName} to run`, async () => {
      const p = await core.readNamespacedPod({ namespace: NAMESPACE, name: podName });
      return p.status?.phase === 'Running' && p.metadata?.annotations?.[CDI_ANNOTATION] ? p : undefined;
    });
    console.log(indent(`pod ${NAMESPACE}/${podName} Running; annotation ${CDI_ANNOTATION} (what the container runtime gets):`));
    console.log(indent(`  ${running.metadata!.annotations![CDI_ANNOTATION]!}`));
    const specFile = path.join(config.cdiDir, `k8s.${config.driverName}-claim_${uid}.json`);
    console.log(indent(`CDI spec ${specFile}:`));
    console.log(indent(fs.readFileSync(specFile, 'utf8')));

    step(`GET /metrics: the claim's device, attributed to pod ${podName}`);
    const metricsUrl = agent.telemetry.url;
    await until('a sample attributed to the pod', async () => {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      return text.includes(`k8s_pod_name="${podName}"`) ? true : undefined;
    });
    await printMetrics(metricsUrl, uuids);

    step(`kubectl delete pod ${podName}: the node agent unprepares the claim through gpulet`);
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: podName });
    await until(`pod ${podName} to be gone`, async () => {
      try {
        await core.readNamespacedPod({ namespace: NAMESPACE, name: podName });
        return undefined;
      } catch (err) {
        if (is404(err)) return true;
        throw err;
      }
    });
    console.log(indent(`pod gone; CDI spec present after unprepare: ${fs.existsSync(specFile)}`));

    done(`The cluster keeps running: kubectl --kubeconfig ${cluster.kubeconfig} get resourceslices,deviceclasses`);
  } finally {
    if (agent !== undefined) {
      const objects = KubernetesObjectApi.makeApiClient(adminKc);
      for (const obj of created.reverse()) await objects.delete(obj).catch(() => undefined);
      await agent.stop();
    }
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}
