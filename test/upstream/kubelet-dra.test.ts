/**
 * gpulet as the DRA driver of a node whose claims the kubelet's own DRA manager prepares (issue 10, item 1):
 * on the upstream cluster of test/upstream/, gpulet (the whole agent, mock dgx-h100) registers through the
 * node agent's plugin watcher; a pod from daemonset/examples/ gets a claim from its template (the
 * resourceclaim controller), a device from the scheduler, and its claim prepared through gpulet by
 * `pkg/kubelet/cm/dra` — the CDI device IDs the container runtime would get land on the pod as
 * `gpulet.dev/cdi-devices`, and the device's health from gpulet's health stream in the pod's status. Deleting
 * the pod unprepares the claim through gpulet (its CDI spec is removed) and the claim goes with the pod.
 *
 * Skipped with a notice only where Go is absent.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubernetesObjectApi, ResourceV1Api, type V1Pod } from '@kubernetes/client-node';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { EXAMPLES_DIR, findOne, installDocs, loadDocs } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { startGpulet } from '../helpers/upstream-pods.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/kubelet-dra.test.ts: ${unavailable}`);

const NODE = 'node-a';
const CDI_ANNOTATION = 'gpulet.dev/cdi-devices';

describe.skipIf(unavailable !== undefined)("gpulet's claims prepared by the kubelet's DRA manager (test/upstream cluster)", () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;
  let core: CoreV1Api;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    core = cluster.admin.makeApiClient(CoreV1Api);
    const node = cluster.nodes.find((n) => n.name === NODE)!;
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-node-a-'));
    // The README's `npm start -- --kube-api=kubeconfig ...` command, in process.
    agent = await startGpulet(cluster.kubeconfig, node, stateDir, silentLogger());
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    await objects.create(findOne(installDocs(), 'DeviceClass', 'gpu.gpulet.dev'));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  it('runs the example pod with its GPU prepared through gpulet, the CDI IDs on the pod, and deletes it unprepared', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    const examples = [...loadDocs(path.join(EXAMPLES_DIR, 'gpu-claim-template.yaml')), ...loadDocs(path.join(EXAMPLES_DIR, 'pod-with-gpu.yaml'))];
    for (const { obj } of examples) await objects.create({ ...obj, metadata: { ...obj.metadata, namespace: 'default' } });
    const podName = findOne<V1Pod>(examples, 'Pod').metadata!.name!;

    const running = await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: 'default', name: podName });
        return p.status?.phase === 'Running' ? p : undefined;
      },
      { what: 'the pod to run', timeoutMs: 60_000 },
    );
    expect(running.spec?.nodeName).toBe(NODE);

    // The claim the resourceclaim controller made from the template, allocated by the scheduler to gpulet's pool.
    const claimName = running.status?.resourceClaimStatuses?.find((s) => s.name === 'gpu')?.resourceClaimName;
    expect(claimName).toBeDefined();
    const claim = await cluster.admin.makeApiClient(ResourceV1Api).readNamespacedResourceClaim({ namespace: 'default', name: claimName! });
    const result = claim.status?.allocation?.devices?.results?.[0];
    expect(result).toMatchObject({ driver: 'gpu.gpulet.dev', pool: NODE, request: 'gpu' });
    const uid = claim.metadata!.uid!;

    // What the kubelet would hand the runtime for container "main": gpulet's CDI device for that claim and device.
    const annotation = running.metadata?.annotations?.[CDI_ANNOTATION];
    expect(JSON.parse(annotation ?? 'null')).toEqual({ main: [`k8s.gpu.gpulet.dev/claim=${uid}-${result!.device}`] });
    const spec = path.join(stateDir, 'cdi', `k8s.gpu.gpulet.dev-claim_${uid}.json`);
    expect(existsSync(spec)).toBe(true);
    // The device's health, from gpulet's DRAResourceHealth stream through the manager (KEP-4680); posted with
    // the Running status, or just after it when the stream's first message arrives after the prepare.
    const health = await waitFor(
      async () => (await core.readNamespacedPod({ namespace: 'default', name: podName })).status?.containerStatuses?.[0]?.allocatedResourcesStatus,
      { what: "the device's health in the pod's status" },
    );
    expect(health).toEqual([
      { name: 'claim:gpu', resources: [{ resourceID: `k8s.gpu.gpulet.dev/claim=${uid}-${result!.device}`, health: 'Healthy', message: 'ok' }] },
    ]);

    await core.deleteNamespacedPod({ namespace: 'default', name: podName });
    await waitFor(
      async () => {
        try {
          await core.readNamespacedPod({ namespace: 'default', name: podName });
          return false;
        } catch (err) {
          return err instanceof ApiException && err.code === 404;
        }
      },
      { what: 'the pod to be gone', timeoutMs: 60_000 },
    );
    expect(existsSync(spec)).toBe(false);
    await waitFor(
      async () => {
        try {
          await cluster.admin.makeApiClient(ResourceV1Api).readNamespacedResourceClaim({ namespace: 'default', name: claimName! });
          return false;
        } catch (err) {
          return err instanceof ApiException && err.code === 404;
        }
      },
      { what: 'the claim to go with its pod', timeoutMs: 60_000 },
    );
  });
});
