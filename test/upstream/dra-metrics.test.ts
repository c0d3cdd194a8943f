/**
 * gpulet's DRA operation metrics against the real components (issue 10, item 3): on the upstream cluster of
 * test/upstream/, the kubelet's own DRA manager (`pkg/kubelet/cm/dra`) prepares the claim of the example pod
 * through gpulet and unprepares it when the pod is deleted; gpulet's `/metrics`, parsed by a strict parser of the
 * text format, then shows exactly one successful NodePrepareResources and one NodeUnprepareResources call (and no
 * failed one), both durations observed, nothing in flight, and the prepared claims back to 0. While the pod runs,
 * one claim and one GPU are prepared.
 *
 * Skipped with a notice only where Go is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubernetesObjectApi, type V1Pod } from '@kubernetes/client-node';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { EXAMPLES_DIR, findOne, installDocs, loadDocs } from '../helpers/manifests.js';
import { parsePrometheusText, type PromParse } from '../helpers/promtext.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { startGpulet } from '../helpers/upstream-pods.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/dra-metrics.test.ts: ${unavailable}`);

const NODE = 'node-a';
const DRIVER = 'gpu.gpulet.dev';

describe.skipIf(unavailable !== undefined)("gpulet's DRA metrics after the kubelet's DRA manager prepares and unprepares a claim (test/upstream cluster)", () => {
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
    // The README's `npm start -- --kube-api=kubeconfig ...` command, in process; every scrape renders anew.
    agent = await startGpulet(cluster.kubeconfig, node, stateDir, silentLogger(), ['--metrics-cache-ttl', '0']);
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    await objects.create(findOne(installDocs(), 'DeviceClass', DRIVER));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  async function scrape(): Promise<PromParse> {
    const res = await fetch(`${agent!.telemetry.url}/metrics`);
    expect(res.status).toBe(200);
    return parsePrometheusText(await res.text());
  }

  /** The value of the one sample `name` whose labels include `labels`; undefined when none, an error when several. */
  function value(p: PromParse, name: string, labels: Record<string, string>): number | undefined {
    const found = p.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
    return found[0]?.value;
  }

  const PREP = { driver: DRIVER, operation: 'NodePrepareResources' };
  const UNPREP = { driver: DRIVER, operation: 'NodeUnprepareResources' };

  it('counts one successful NodePrepareResources and one NodeUnprepareResources, durations observed, prepared claims back to 0', async () => {
    const before = await scrape();
    for (const op of [PREP, UNPREP]) {
      for (const result of ['success', 'error']) expect(value(before, 'gpulet_dra_requests_total', { ...op, result })).toBe(0);
    }
    expect(value(before, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(0);

    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    const examples = [...loadDocs(path.join(EXAMPLES_DIR, 'gpu-claim-template.yaml')), ...loadDocs(path.join(EXAMPLES_DIR, 'pod-with-gpu.yaml'))];
    for (const { obj } of examples) await objects.create({ ...obj, metadata: { ...obj.metadata, namespace: 'default' } });
    const podName = findOne<V1Pod>(examples, 'Pod').metadata!.name!;
    await waitFor(
      async () => (await core.readNamespacedPod({ namespace: 'default', name: podName })).status?.phase === 'Running',
      { what: 'the pod to run', timeoutMs: 60_000 },
    );

    // The pod runs only after the manager's NodePrepareResources call was answered without error.
    const running = await scrape();
    expect(value(running, 'gpulet_dra_requests_total', { ...PREP, result: 'success' })).toBe(1);
    expect(value(running, 'gpulet_dra_requests_total', { ...PREP, result: 'error' })).toBe(0);
    expect(value(running, 'gpulet_dra_request_duration_seconds_count', { ...PREP, result: 'success' })).toBe(1);
    expect(value(running, 'gpulet_dra_requests_inflight', PREP)).toBe(0);
    expect(value(running, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(1);
    // The example claim asks for one GPU of class gpu.gpulet.dev (whole GPUs).
    expect(value(running, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'gpu' })).toBe(1);
    expect(value(running, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'mig' })).toBe(0);
    expect(value(running, 'gpulet_dra_requests_total', { ...UNPREP, result: 'success' })).toBe(0);

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

    // The node agent deletes the pod only after the manager's NodeUnprepareResources call succeeded.
    const after = await scrape();
    expect(value(after, 'gpulet_dra_requests_total', { ...PREP, result: 'success' })).toBe(1);
    expect(value(after, 'gpulet_dra_requests_total', { ...PREP, result: 'error' })).toBe(0);
    expect(value(after, 'gpulet_dra_requests_total', { ...UNPREP, result: 'success' })).toBe(1);
    expect(value(after, 'gpulet_dra_requests_total', { ...UNPREP, result: 'error' })).toBe(0);
    for (const op of [PREP, UNPREP]) {
      expect(value(after, 'gpulet_dra_request_duration_seconds_count', { ...op, result: 'success' })).toBe(1);
      const sum = value(after, 'gpulet_dra_request_duration_seconds_sum', { ...op, result: 'success' })!;
      expect(sum).toBeGreaterThan(0);
      expect(sum).toBeLessThan(45); // inside the kubelet's gRPC timeout for these calls
      expect(value(after, 'gpulet_dra_request_duration_seconds_bucket', { ...op, result: 'success', le: '+Inf' })).toBe(1);
      expect(value(after, 'gpulet_dra_requests_inflight', op)).toBe(0);
    }
    expect(after.samples.some((s) => s.name === 'gpulet_dra_claim_errors_total')).toBe(false);
    expect(value(after, 'gpulet_dra_prepared_claims', { driver: DRIVER })).toBe(0);
    expect(value(after, 'gpulet_dra_prepared_devices', { driver: DRIVER, device_type: 'gpu' })).toBe(0);
  });
});
