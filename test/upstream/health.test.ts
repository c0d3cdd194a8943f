/**
 * Device health through the real Kubernetes 1.37 components (issue 10, item 3): gpulet (the whole agent, mock
 * dgx-h100, `--device-taint-effect=NoExecute`) on the upstream cluster of test/upstream/, its claims prepared
 * by the kubelet's own DRA manager (the node agent, `pkg/kubelet/cm/dra`).
 *
 * - The manager negotiates `v1.DRAResourceHealth` (it prefers v1: pkg/kubelet/cm/dra/plugin/dra_plugin.go
 *   healthServicesSupportedByKubelet): gpulet's server-side counter sees v1 streams only.
 * - An XID injected on a PREPARED device reaches the manager's health cache: the pod's
 *   `status.containerStatuses[].allocatedResourcesStatus` says Unhealthy (posted by the node agent), and
 *   Healthy again once the GPU is reset (src/gpu/health.ts: `gpu-recovered`); its taint leaves the slice.
 * - The taint `gpu.gpulet.dev/xid=<xid>:NoExecute` makes the REAL kube-controller-manager's
 *   device-taint-eviction controller evict a pod whose claim does not tolerate it (event
 *   DeviceTaintManagerEviction, pkg/controller/devicetainteviction), while a pod whose claim tolerates
 *   `gpu.gpulet.dev/xid` keeps running on its faulty device.
 *
 * Skipped with a notice only where Go is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubernetesObjectApi, ResourceV1Api, type V1Pod } from '@kubernetes/client-node';
import type { MockBackend } from '../../src/gpu/mock/index.js';
import type { GpuBackend } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { allocatableDevices } from '../../src/model/devices.js';
import { findOne, installDocs } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { startGpulet } from '../helpers/upstream-pods.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/health.test.ts: ${unavailable}`);

const NODE = 'node-a';
const NS = 'default';
const DRIVER = 'gpu.gpulet.dev';

/** The mock backend behind the agent (fault injection). */
function mockOf(backend: GpuBackend): MockBackend {
  if (backend.kind !== 'mock' || !('injectHealthEvent' in backend)) throw new Error('the agent does not run the mock backend');
  return backend as MockBackend;
}

/**
 * A ResourceClaimTemplate for one whole GPU, optionally tolerating a NoExecute taint key. The effect must be
 * named: the eviction controller honours only tolerations whose effect is NoExecute (k8s.io/kubernetes v1.37.2
 * pkg/controller/devicetainteviction/device_taint_eviction.go, `toleration.Effect == DeviceTaintEffectNoExecute`),
 * an empty effect does not keep a pod.
 */
function template(name: string, tolerateKey?: string): object {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaimTemplate',
    metadata: { name, namespace: NS },
    spec: {
      spec: {
        devices: {
          requests: [
            {
              name: 'gpu',
              exactly: {
                deviceClassName: DRIVER,
                allocationMode: 'ExactCount',
                count: 1,
                ...(tolerateKey === undefined ? {} : { tolerations: [{ key: tolerateKey, operator: 'Exists', effect: 'NoExecute' }] }),
              },
            },
          ],
        },
      },
    },
  };
}

function pod(name: string, templateName: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: 'Never',
      resourceClaims: [{ name: 'gpu', resourceClaimTemplateName: templateName }],
      containers: [{ name: 'main', image: 'debian:bookworm-slim', command: ['sleep', '3600'], resources: { claims: [{ name: 'gpu' }] } }],
    },
  };
}

describe.skipIf(unavailable !== undefined)('device health and taints through the kubelet DRA manager and the device-taint-eviction controller (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;
  let core: CoreV1Api;
  let resource: ResourceV1Api;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    core = cluster.admin.makeApiClient(CoreV1Api);
    resource = cluster.admin.makeApiClient(ResourceV1Api);
    const node = cluster.nodes.find((n) => n.name === NODE)!;
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-health-'));
    agent = await startGpulet(cluster.kubeconfig, node, stateDir, silentLogger(), ['--device-taint-effect', 'NoExecute']);
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    await objects.create(findOne(installDocs(), 'DeviceClass', DRIVER));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  const readPod = (name: string) => core.readNamespacedPod({ namespace: NS, name });
  const gone = async (name: string): Promise<boolean> => {
    try {
      await readPod(name);
      return false;
    } catch (err) {
      return err instanceof ApiException && err.code === 404;
    }
  };
  /** Start `name` from `templateName`; returns the running pod and its device's name and UUID. */
  async function running(name: string, templateName: string): Promise<{ pod: V1Pod; device: string; uuid: string; resourceID: string }> {
    await KubernetesObjectApi.makeApiClient(cluster.admin).create(pod(name, templateName));
    const p = await waitFor(async () => {
      const got = await readPod(name);
      return got.status?.phase === 'Running' ? got : undefined;
    }, { what: `pod ${name} to run`, timeoutMs: 60_000 });
    const claimName = p.status?.resourceClaimStatuses?.find((s) => s.name === 'gpu')?.resourceClaimName;
    const claim = await resource.readNamespacedResourceClaim({ namespace: NS, name: claimName! });
    const device = claim.status!.allocation!.devices!.results![0]!.device;
    const uuid = allocatableDevices(agent!.backend.inventory()).find((d) => d.name === device)!.uuid;
    return { pod: p, device, uuid, resourceID: `k8s.${DRIVER}/claim=${claim.metadata!.uid!}-${device}` };
  }
  const healthOf = async (name: string) => (await readPod(name)).status?.containerStatuses?.[0]?.allocatedResourcesStatus?.[0]?.resources?.[0];
  const taintsOf = async (device: string) => {
    const slices = (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE}` })).items;
    return slices.flatMap((s) => s.spec.devices ?? []).find((d) => d.name === device)?.taints ?? [];
  };

  it('negotiates v1 health; an XID on a prepared device: Unhealthy and tainted NoExecute, the tolerating pod stays, the other is evicted; a reset heals', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    await objects.create(template('tolerant-gpu', `${DRIVER}/xid`));
    await objects.create(template('plain-gpu'));
    const tolerant = await running('tolerant', 'tolerant-gpu');
    const plain = await running('plain', 'plain-gpu');
    expect(tolerant.device).not.toBe(plain.device);

    // The manager's health stream is v1, never v1alpha1; both pods' devices are Healthy from it.
    for (const p of [tolerant, plain]) {
      await waitFor(async () => (await healthOf(p.pod.metadata!.name!))?.health === 'Healthy', { what: `${p.pod.metadata!.name} Healthy` });
    }
    const streams = agent!.plugin.healthStreamsOpened();
    expect(streams.v1).toBeGreaterThanOrEqual(1);
    expect(streams.v1alpha1).toBe(0);

    // XID 79 (fallen off the bus: fatal) on the tolerating pod's prepared GPU.
    const mock = mockOf(agent!.backend);
    mock.injectHealthEvent({ kind: 'xid', uuid: tolerant.uuid, xid: 79, timestampMs: Date.now(), message: 'XID 79: GPU has fallen off the bus (injected)' });
    const unhealthy = await waitFor(async () => {
      const h = await healthOf('tolerant');
      return h?.health === 'Unhealthy' ? h : undefined;
    }, { what: "Unhealthy in the tolerating pod's allocatedResourcesStatus", timeoutMs: 60_000 });
    expect(unhealthy).toEqual({ resourceID: tolerant.resourceID, health: 'Unhealthy', message: 'failed: XID 79: GPU has fallen off the bus (injected)' });
    const taint = await waitFor(async () => (await taintsOf(tolerant.device)).find((t) => t.key === `${DRIVER}/xid`), { what: 'the xid taint on the slice' });
    expect(taint).toMatchObject({ key: `${DRIVER}/xid`, value: '79', effect: 'NoExecute' });
    expect(taint.timeAdded).toBeInstanceOf(Date);

    // The same on the other pod's GPU: the controller evicts that pod (no toleration) ...
    mock.injectHealthEvent({ kind: 'xid', uuid: plain.uuid, xid: 94, timestampMs: Date.now(), message: 'XID 94: contained ECC error (injected)' });
    await waitFor(() => gone('plain'), { what: 'the device-taint-eviction controller to evict the pod without a toleration', timeoutMs: 90_000 });
    const evictions = async (name: string) =>
      (await core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=${name},reason=DeviceTaintManagerEviction` })).items;
    await waitFor(async () => (await evictions('plain')).some((e) => e.message === 'Marking for deletion'), { what: "the controller's eviction event" });
    // ... and the tolerating pod still runs on its faulty GPU, never marked for deletion.
    const still = await readPod('tolerant');
    expect(still.metadata?.deletionTimestamp).toBeUndefined();
    expect(still.status?.phase).toBe('Running');
    expect(await evictions('tolerant')).toEqual([]);

    // A GPU reset with the same UUID: Healthy again, and the taint leaves the slice.
    mock.resetDevice(tolerant.uuid);
    const healed = await waitFor(async () => {
      const h = await healthOf('tolerant');
      return h?.health === 'Healthy' ? h : undefined;
    }, { what: 'Healthy again after the reset', timeoutMs: 60_000 });
    expect(healed.message).toMatch(/^ok: .*was reset/);
    await waitFor(async () => (await taintsOf(tolerant.device)).length === 0, { what: 'the taint to leave the slice' });
  });
});
