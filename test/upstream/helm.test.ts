/**
 * The Helm chart deployments/helm/gpulet installed by the real helm into the real kube-apiserver of
 * test/upstream/ (Kubernetes 1.37), as the README's "Helm" section does it: daemonset/00-namespace.yaml first,
 * then `helm install` into it. The API server accepts every object (its own validation, not a schema copy:
 * the admission policy's CEL compiles, the DeviceClass keeps spec.extendedResourceName), stores them as the
 * chart rendered them, `helm upgrade` to other values (driver userspace auto on a GPU Operator root, another
 * driver name and extended resource name, no NetworkPolicy) changes exactly those objects, and
 * `helm uninstall` removes every object it created. The real PodSecurity admission (the namespace warns at
 * baseline) names hostPath volumes as the only baseline control the agent's pod breaks, naming exactly the
 * volumes rendered (the default's driver userspace mounts on the host root, the upgrade's under the GPU
 * Operator root).
 *
 * Skipped with a notice only where Go is absent (neither the cluster nor helm can be built then).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppsV1Api, KubernetesObjectApi, NetworkingV1Api, ResourceV1Api, type KubeConfig, type V1DaemonSet } from '@kubernetes/client-node';
import { CHART_DIR, HELM_BUILD_TIMEOUT_MS, RELEASE_NAMESPACE, ensureHelm, helm, helmUnavailable, renderChart } from '../helpers/helm.js';
import { REPO_ROOT, findOne, installDocs, type K8sObject } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';

const unavailable = clusterUnavailable() ?? helmUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/helm.test.ts: ${unavailable}`);

/**
 * The test cluster's kube-apiserver is built from the Go modules without the release's version stamp, so its
 * /version says v0.0.0-master, which the chart's `kubeVersion: >=1.34.0-0` refuses. The test installs a copy
 * of the chart without that line (everything else as is); test/deploy/helm.test.ts checks the constraint.
 */
function chartWithoutKubeVersion(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulet-chart-'));
  cpSync(CHART_DIR, dir, { recursive: true });
  const chartYaml = path.join(dir, 'Chart.yaml');
  const text = readFileSync(chartYaml, 'utf8');
  const without = text.replace(/^kubeVersion: .*\n/m, '');
  if (without === text) throw new Error(`${path.relative(REPO_ROOT, CHART_DIR)}/Chart.yaml has no kubeVersion line`);
  writeFileSync(chartYaml, without);
  return dir;
}
/** The DaemonSet's hostPath volumes with driver userspace auto (the default, and the upgrade's on another root). */
const DRIVER_USERSPACE_VOLUMES = [
  'plugins-registry', 'plugin-dir', 'cdi', 'state', 'driver-libraries', 'driver-ld-cache', 'driver-binaries', 'driver-firmware',
  'driver-persistenced', 'driver-fabricmanager', 'driver-mps', 'toolkit-cdi-0', 'pod-gpu-resources',
];
const UPGRADE = {
  driverUserspace: 'auto',
  nvidiaDriverRoot: '/run/nvidia/driver',
  driverName: 'gpu.example.com',
  extendedResourceName: 'nvidia.com/gpu',
  networkPolicy: { enabled: false },
};

describe.skipIf(unavailable !== undefined)('helm install of the chart into the real kube-apiserver (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let admin: KubeConfig;
  let CHART: string;
  const helmAt = (args: readonly string[], values?: Record<string, unknown>) =>
    helm([...args, '--kubeconfig', cluster.kubeconfig, '--namespace', RELEASE_NAMESPACE], values);

  beforeAll(async () => {
    await Promise.all([buildCluster(), ensureHelm()]);
    CHART = chartWithoutKubeVersion();
    cluster = await startCluster({ nodes: ['node-a'] });
    admin = cluster.admin;
    await KubernetesObjectApi.makeApiClient(admin).create(findOne<K8sObject>(installDocs(), 'Namespace'));
  }, BUILD_TIMEOUT_MS + HELM_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
    if (CHART !== undefined) rmSync(CHART, { recursive: true, force: true });
  });

  it('installs with default values: the API server stores every object the chart renders, as rendered', async () => {
    const res = await helmAt(['install', 'gpulet', CHART]);
    expect(res.ok, res.stderr).toBe(true);
    expect(warnings(res.stderr)).toEqual([hostPathWarning(DRIVER_USERSPACE_VOLUMES)]);
    const objects = KubernetesObjectApi.makeApiClient(admin);
    for (const { obj } of await renderChart()) {
      const stored = await objects.read({ apiVersion: obj.apiVersion, kind: obj.kind, metadata: { name: obj.metadata.name, ...(obj.metadata.namespace === undefined ? {} : { namespace: obj.metadata.namespace }) } });
      expect(stored.metadata?.labels, `${obj.kind}/${obj.metadata.name}`).toEqual(obj.metadata.labels);
      // Every field the chart sets is stored with its value (the server adds defaults, never drops ours).
      // (client-node's models rename the field `from` to `_from`: undone here.)
      const wire = JSON.parse(JSON.stringify(stored).replaceAll('"_from":', '"from":')) as unknown;
      expect(wire, `${obj.kind}/${obj.metadata.name}`).toMatchObject(withoutMetadata(obj));
    }
    const gpuClass = await admin.makeApiClient(ResourceV1Api).readDeviceClass({ name: 'gpu.gpulet.dev' });
    expect(gpuClass.spec.extendedResourceName).toBe('gpulet.dev/gpu');
  });

  it('upgrades to driver userspace auto, another driver and extended resource name, without a NetworkPolicy', async () => {
    const res = await helmAt(['upgrade', 'gpulet', CHART], UPGRADE);
    expect(res.ok, res.stderr).toBe(true);
    expect(warnings(res.stderr)).toEqual([
      hostPathWarning(DRIVER_USERSPACE_VOLUMES),
    ]);
    const resource = admin.makeApiClient(ResourceV1Api);
    const names = (await resource.listDeviceClass()).items.map((c) => c.metadata?.name).sort();
    expect(names).toEqual(['gpu.example.com', 'mig.example.com']);
    expect((await resource.readDeviceClass({ name: 'gpu.example.com' })).spec.extendedResourceName).toBe('nvidia.com/gpu');
    const policies = await admin.makeApiClient(NetworkingV1Api).listNamespacedNetworkPolicy({ namespace: RELEASE_NAMESPACE });
    expect(policies.items).toEqual([]);
    const ds: V1DaemonSet = await admin.makeApiClient(AppsV1Api).readNamespacedDaemonSet({ name: 'gpulet', namespace: RELEASE_NAMESPACE });
    const rendered = findOne<V1DaemonSet>(await renderChart(UPGRADE), 'DaemonSet');
    const hostPaths = (d: V1DaemonSet) => (d.spec?.template.spec?.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : [])).sort();
    expect(hostPaths(ds)).toEqual(hostPaths(rendered));
    expect(hostPaths(ds)).toContain('/run/nvidia/driver/etc/ld.so.cache');
    expect(hostPaths(ds)).toContain('/var/lib/kubelet/plugins/gpu.example.com');
  });

  it('uninstalls every object it created (the namespace, not the chart\'s, stays)', async () => {
    const res = await helmAt(['uninstall', 'gpulet']);
    expect(res.ok).toBe(true);
    const resource = admin.makeApiClient(ResourceV1Api);
    expect((await resource.listDeviceClass()).items).toEqual([]);
    const apps = admin.makeApiClient(AppsV1Api);
    expect((await apps.listNamespacedDaemonSet({ namespace: RELEASE_NAMESPACE })).items).toEqual([]);
  });
});

/** The API server's warnings helm printed (client-go's warning handler logs them), without the log prefix. */
function warnings(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '').map((l) => /"Warning: (.*)"$/.exec(l)?.[1]?.replaceAll('\\"', '"') ?? l);
}

/**
 * The warning of the real PodSecurity admission for the namespace's `warn: baseline` (daemonset/00-namespace.yaml):
 * the agent's pod breaks only the hostPath control of baseline, and names exactly these volumes.
 */
function hostPathWarning(volumes: readonly string[]): string {
  return `would violate PodSecurity "baseline:v1.34": hostPath volumes (volumes ${volumes.map((v) => `"${v}"`).join(', ')})`;
}

/** The object less metadata (which the server extends with uid, resourceVersion, managedFields, ...). */
function withoutMetadata(obj: K8sObject): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => k !== 'metadata'));
}
