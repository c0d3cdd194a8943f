/**
 * Whole GPUs asked for as an extended resource (KEP-5004, issue 10 item 3), on the upstream cluster of
 * test/upstream/: with daemonset/06-deviceclasses.yaml (DeviceClass gpu.gpulet.dev, extendedResourceName
 * gpulet.dev/gpu) and gpulet as node-a's DRA driver, the example pod of
 * daemonset/examples/pod-with-extended-resource.yaml — `resources.limits: {gpulet.dev/gpu: 1}`, no claim — is
 * scheduled by the real kube-scheduler, which creates the pod's claim (annotated
 * resource.kubernetes.io/extended-resource-claim, owned by the pod), allocates one of gpulet's GPUs in it
 * and records it in pod.status.extendedResourceClaimStatus; the kubelet's DRA manager (the node agent)
 * prepares it through gpulet, and the CDI device ID reaches the container (`gpulet.dev/cdi-devices`).
 * The node does not advertise gpulet.dev/gpu in Node.status.allocatable: that is what makes the scheduler
 * use DRA for the name there (kube-scheduler dynamicresources `filterExtendedResources`). A pod asking for
 * more GPUs than the node has stays Pending, Unschedulable. Deleting the pod unprepares the claim. With the
 * DeviceClass as the README's kustomize overlay builds it, a pod asking for `nvidia.com/gpu` (what pods ask
 * NVIDIA's device plugin for) gets one of gpulet's GPUs the same way.
 *
 * Skipped with a notice only where Go is absent.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubernetesObjectApi, ResourceV1Api, type V1DeviceClass, type V1Pod } from '@kubernetes/client-node';
import { allocatableDevices } from '../../src/model/devices.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { EXAMPLES_DIR, findOne, installDocs, loadDocs } from '../helpers/manifests.js';
import { buildReadmeOverlay, KUBECTL } from '../helpers/readme-overlay.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { startGpulet } from '../helpers/upstream-pods.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/extended-resource.test.ts: ${unavailable}`);

const NODE = 'node-a';
const DRIVER = 'gpu.gpulet.dev';
const CDI_ANNOTATION = 'gpulet.dev/cdi-devices';
/** resourceapi.ExtendedResourceClaimAnnotation (k8s.io/api resource/v1). */
const EXTENDED_RESOURCE_CLAIM_ANNOTATION = 'resource.kubernetes.io/extended-resource-claim';

describe.skipIf(unavailable !== undefined)('GPUs as an extended resource backed by gpulet (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;
  let core: CoreV1Api;
  let resource: ResourceV1Api;
  const deviceClass = findOne<{ spec: { extendedResourceName?: string } }>(installDocs(), 'DeviceClass', DRIVER);
  const example = findOne<V1Pod>(loadDocs(path.join(EXAMPLES_DIR, 'pod-with-extended-resource.yaml')), 'Pod');

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    core = cluster.admin.makeApiClient(CoreV1Api);
    resource = cluster.admin.makeApiClient(ResourceV1Api);
    const node = cluster.nodes.find((n) => n.name === NODE)!;
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-extres-'));
    agent = await startGpulet(cluster.kubeconfig, node, stateDir, silentLogger());
    await KubernetesObjectApi.makeApiClient(cluster.admin).create(findOne(installDocs(), 'DeviceClass', DRIVER));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  const readPod = (name: string) => core.readNamespacedPod({ namespace: 'default', name });

  it('the DeviceClass maps gpulet.dev/gpu, the example asks for it, and the node does not advertise it', async () => {
    expect(deviceClass.spec.extendedResourceName).toBe('gpulet.dev/gpu');
    expect(example.spec?.resourceClaims).toBeUndefined();
    expect(example.spec?.containers[0]?.resources?.limits).toEqual({ 'gpulet.dev/gpu': 1 });
    // The API server keeps the field (DRAExtendedResource on).
    expect((await resource.readDeviceClass({ name: DRIVER })).spec.extendedResourceName).toBe('gpulet.dev/gpu');
    const n = await core.readNode({ name: NODE });
    expect(Object.keys(n.status?.allocatable ?? {})).not.toContain('gpulet.dev/gpu');
  });

  it('runs the example pod on a GPU the scheduler allocated from gpulet in a claim of its own, prepared through gpulet', async () => {
    const created = await core.createNamespacedPod({ namespace: 'default', body: { ...example, metadata: { ...example.metadata, namespace: 'default' } } });
    const name = created.metadata!.name!;
    const running = await waitFor(async () => {
      const p = await readPod(name);
      return p.status?.phase === 'Running' ? p : undefined;
    }, { what: 'the extended-resource pod to run', timeoutMs: 60_000 });
    expect(running.spec?.nodeName).toBe(NODE);

    // The scheduler's claim: named in the pod's status, owned by the pod, annotated, with one of gpulet's GPUs.
    const status = running.status?.extendedResourceClaimStatus;
    expect(status?.requestMappings).toEqual([{ containerName: 'main', resourceName: 'gpulet.dev/gpu', requestName: expect.any(String) }]);
    const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: status!.resourceClaimName });
    expect(claim.metadata?.annotations?.[EXTENDED_RESOURCE_CLAIM_ANNOTATION]).toBe('true');
    expect(claim.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', name, uid: running.metadata!.uid, controller: true })]);
    const results = claim.status?.allocation?.devices?.results ?? [];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ driver: DRIVER, pool: NODE, request: status!.requestMappings[0]!.requestName });
    const gpus = allocatableDevices(buildMockInventory(machineSpecByName('dgx-h100'), NODE)).filter((d) => d.kind === 'gpu').map((d) => d.name);
    expect(gpus).toContain(results[0]!.device);

    // What the kubelet hands the runtime for container "main": gpulet's CDI device for that claim and device.
    const uid = claim.metadata!.uid!;
    expect(JSON.parse(running.metadata?.annotations?.[CDI_ANNOTATION] ?? 'null')).toEqual({ main: [`k8s.gpu.gpulet.dev/claim=${uid}-${results[0]!.device}`] });
    const spec = path.join(stateDir, 'cdi', `k8s.gpu.gpulet.dev-claim_${uid}.json`);
    expect(existsSync(spec)).toBe(true);

    await core.deleteNamespacedPod({ namespace: 'default', name });
    await waitFor(async () => {
      try {
        await readPod(name);
        return false;
      } catch (err) {
        return err instanceof ApiException && err.code === 404;
      }
    }, { what: 'the pod to be gone', timeoutMs: 60_000 });
    expect(existsSync(spec)).toBe(false);
  });

  it.skipIf(KUBECTL === undefined)("with the README's overlay, pods asking for nvidia.com/gpu get gpulet's GPUs", async () => {
    // The DeviceClass as the README's kustomize overlay builds it, applied over the installed one.
    const overlaid = buildReadmeOverlay(KUBECTL!).find((o) => o.kind === 'DeviceClass' && o.metadata.name === DRIVER) as unknown as V1DeviceClass;
    const current = await resource.readDeviceClass({ name: DRIVER });
    await resource.replaceDeviceClass({ name: DRIVER, body: { ...overlaid, metadata: { ...overlaid.metadata, resourceVersion: current.metadata!.resourceVersion! } } });
    const container = example.spec!.containers[0]!;
    await core.createNamespacedPod({
      namespace: 'default',
      body: { ...example, metadata: { name: 'nvidia-gpu', namespace: 'default' }, spec: { ...example.spec!, containers: [{ ...container, resources: { limits: { 'nvidia.com/gpu': '1' } } }] } },
    });
    const running = await waitFor(async () => {
      const p = await readPod('nvidia-gpu');
      return p.status?.phase === 'Running' ? p : undefined;
    }, { what: 'the nvidia.com/gpu pod to run', timeoutMs: 60_000 });
    expect(running.status?.extendedResourceClaimStatus?.requestMappings).toEqual([{ containerName: 'main', resourceName: 'nvidia.com/gpu', requestName: expect.any(String) }]);
    const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: running.status!.extendedResourceClaimStatus!.resourceClaimName });
    expect(claim.status?.allocation?.devices?.results?.[0]).toMatchObject({ driver: DRIVER, pool: NODE });
    expect(JSON.parse(running.metadata?.annotations?.[CDI_ANNOTATION] ?? 'null')).toEqual({ main: [`k8s.gpu.gpulet.dev/claim=${claim.metadata!.uid!}-${claim.status!.allocation!.devices!.results![0]!.device}`] });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'nvidia-gpu' });
  });

  it('leaves a pod asking for more GPUs than the node has Pending, Unschedulable', async () => {
    const gpus = allocatableDevices(buildMockInventory(machineSpecByName('dgx-h100'), NODE)).filter((d) => d.kind === 'gpu').length;
    const container = example.spec!.containers[0]!;
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        ...example,
        metadata: { name: 'too-many-gpus', namespace: 'default' },
        spec: { ...example.spec!, containers: [{ ...container, resources: { limits: { 'gpulet.dev/gpu': String(gpus + 1) } } }] },
      },
    });
    const pending = await waitFor(async () => {
      const p = await readPod('too-many-gpus');
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable') ? p : undefined;
    }, { what: 'the scheduler to find no node', timeoutMs: 60_000 });
    expect(pending.spec?.nodeName).toBeUndefined();
    expect(pending.status?.extendedResourceClaimStatus).toBeUndefined();
  });
});
