/**
 * The `container` label of gpulet's DCGM_FI_* series, from the kubelet's pod-resources API v1 (issue 13 item 2),
 * against the real server: the node agent of test/upstream/ serves k8s.io/kubernetes
 * pkg/kubelet/apis/podresources/server_v1.go (`NewV1PodResourcesServer`) with the kubelet's
 * DynamicResourcesProvider on its own DRA manager (internal/node/podresources.go). A pod with two containers
 * and a sidecar (restartable init container) using one claim, an init container using it (not listed by the
 * kubelet) and a container that does not, runs through the kubelet's DRA manager; gpulet's `/metrics` then has one
 * series per using container on the claim's device, and none once the pod is gone. gpulet has no RBAC for pods:
 * the names come from the kubelet's socket only.
 *
 * Skipped with a notice only where Go is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesObjectApi, type V1Pod } from '@kubernetes/client-node';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { findOne, installDocs } from '../helpers/manifests.js';
import { parsePrometheusText, type PromSample } from '../helpers/promtext.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { claimTemplate, createAll, deletePods, DRIVER, startGpulet, waitRunning } from '../helpers/upstream-pods.js';
import { waitFor } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/pod-resources.test.ts: ${unavailable}`);

const NODE = 'node-a';
const POD = 'trainer';

describe.skipIf(unavailable !== undefined)("the container label from the kubelet's pod-resources API (test/upstream cluster)", () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    const node = cluster.nodes.find((n) => n.name === NODE)!;
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-podres-'));
    agent = await startGpulet(cluster.kubeconfig, node, stateDir, silentLogger(), [
      '--metrics-cache-ttl', '0', '--sample-interval', '250', '--pod-resources-socket', node.podResourcesSocket,
    ]);
    await KubernetesObjectApi.makeApiClient(cluster.admin).create(findOne(installDocs(), 'DeviceClass', DRIVER));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  /** The DCGM_FI_DEV_FB_USED series of `pod`. */
  async function fbUsedOf(pod: string): Promise<PromSample[]> {
    const res = await fetch(`${agent!.telemetry.url}/metrics`);
    expect(res.status).toBe(200);
    return parsePrometheusText(await res.text()).samples.filter((s) => s.name === 'DCGM_FI_DEV_FB_USED' && s.labels['pod'] === pod);
  }

  it("writes one series per container that uses the claim, on the claim's device, and none once the pod is gone", async () => {
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: POD, namespace: 'default' },
      spec: {
        restartPolicy: 'Never',
        resourceClaims: [{ name: 'gpu', resourceClaimTemplateName: 'one-gpu' }],
        // A sidecar (restartable init container): server_v1.go lists those, and only those, of the init containers.
        initContainers: [
          { name: 'init', image: 'debian:bookworm-slim', resources: { claims: [{ name: 'gpu' }] } },
          { name: 'native-sidecar', image: 'debian:bookworm-slim', restartPolicy: 'Always', resources: { claims: [{ name: 'gpu' }] } },
        ],
        containers: [
          { name: 'main', image: 'debian:bookworm-slim', resources: { claims: [{ name: 'gpu' }] } },
          { name: 'sidecar', image: 'debian:bookworm-slim', resources: { claims: [{ name: 'gpu' }] } },
          { name: 'logs', image: 'debian:bookworm-slim' },
        ],
      },
    };
    await createAll(cluster.admin, [claimTemplate('one-gpu', { deviceClassName: DRIVER }), pod]);
    const running = await waitRunning(cluster.admin, POD);
    const claimName = running.claim.metadata!.name!;

    const series = await waitFor(
      async () => {
        const s = await fbUsedOf(POD);
        return s.some((x) => x.labels['container'] !== undefined) ? s : undefined;
      },
      { what: 'DCGM_FI_DEV_FB_USED of the pod with container labels', timeoutMs: 30_000 },
    );
    // Exactly the listed containers whose resources.claims name the claim, in the kubelet's order; all on the
    // allocated device.
    expect(series.map((s) => s.labels['container'])).toEqual(['native-sidecar', 'main', 'sidecar']);
    for (const s of series) {
      expect(s.labels).toMatchObject({
        namespace: 'default', pod: POD, dra_claim_name: claimName, dra_claim_namespace: 'default',
        dra_driver_name: DRIVER, dra_pool_name: running.device.pool, dra_device_name: running.device.device,
      });
    }

    await deletePods(cluster.admin, [POD]);
    await waitFor(async () => (await fbUsedOf(POD)).length === 0, { what: "the pod's series to go", timeoutMs: 30_000 });
    // Nothing of any pod keeps a container label.
    const res = await fetch(`${agent!.telemetry.url}/metrics`);
    expect(parsePrometheusText(await res.text()).samples.filter((s) => s.name.startsWith('DCGM_FI_') && s.labels['container'] !== undefined)).toEqual([]);
  });
});
