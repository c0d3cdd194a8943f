/**
 * The DaemonSet as a platform engineer relies on it, checked against the agent itself:
 * - its environment is parsed by the agent's real configuration loader (src/config.ts) into the node paths,
 *   backend and API mode a cluster needs, and names no variable the agent does not read;
 * - every directory and file those settings name is on a volume mount, host paths where the kubelet or
 *   the container runtime must see the same path, writable where the agent writes;
 * - NODE_NAME and POD_UID come from the downward API; probes and the Service reach the metrics port the
 *   agent listens on;
 * - the security posture (daemonset/README.md, "Security"): not privileged, no privilege escalation, every
 *   capability dropped and none added, seccomp RuntimeDefault, read-only root filesystem, GPU devices from
 *   the NVIDIA Container Toolkit (runtimeClassName nvidia, all GPUs, the NVML-only `utility` capability),
 *   the API token mounted only into this pod, projected, bound and expiring; the Pod Security Standards
 *   level it needs is evaluated in security-podsecurity.test.ts;
 * - scheduling: a GPU node as NVIDIA's GPU Feature Discovery labels it and GKE / the GPU Operator taint it
 *   gets an agent; a node without GPUs does not;
 * - kustomization.yaml installs exactly the numbered files (and `kubectl kustomize` builds it, when kubectl
 *   is installed).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { V1Container, V1DaemonSet, V1ServiceAccount, V1EnvVar, V1NodeSelectorRequirement, V1PodSpec, V1Service, V1Toleration, V1VolumeMount } from '@kubernetes/client-node';
import { buildCommand, loadConfig, type Config } from '../../src/config.js';
import { DAEMONSET_DIR, findOne, installDocs, yamlFiles } from '../helpers/manifests.js';

const install = installDocs();
const ds = findOne<V1DaemonSet>(install, 'DaemonSet');
const pod: V1PodSpec = ds.spec!.template.spec!;
const container: V1Container = pod.containers[0]!;
const env: V1EnvVar[] = container.env ?? [];
const namespace = findOne<{ metadata: { name: string; labels: Record<string, string> } }>(install, 'Namespace');
const service = findOne<V1Service>(install, 'Service');
const serviceAccount = findOne<V1ServiceAccount>(install, 'ServiceAccount');
/** Environment variables the NVIDIA Container Toolkit reads from a container (its documentation). */
const NVIDIA_TOOLKIT_ENV = ['NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'NVIDIA_MIG_MONITOR_DEVICES'];

/** The container's environment as the agent would see it on node `gpu-node-1`, with downward-API values. */
function resolvedEnv(): Record<string, string> {
  const downward: Record<string, string> = { 'spec.nodeName': 'gpu-node-1', 'metadata.uid': '0f7c5e3a-2b1d-4c9e-8a6f-1d2e3f4a5b6c' };
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '']));
}

/** The mount that contains container path `p` (longest mountPath prefix). */
function mountFor(p: string): V1VolumeMount | undefined {
  return (container.volumeMounts ?? [])
    .filter((m) => p === m.mountPath || p.startsWith(m.mountPath.endsWith('/') ? m.mountPath : `${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

function volume(name: string) {
  return (pod.volumes ?? []).find((v) => v.name === name);
}

describe('DaemonSet environment = the agent configuration contract (src/config.ts)', () => {
  const config: Config = loadConfig([], resolvedEnv(), '/');

  it('names only variables the agent reads (and the NVIDIA Container Toolkit ones its runtime class reads)', () => {
    const known = new Set(buildCommand().options.map((o) => o.envVar).filter((v): v is string => v !== undefined));
    known.add('OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
    if (pod.runtimeClassName === 'nvidia') for (const v of NVIDIA_TOOLKIT_ENV) known.add(v);
    expect(env.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
  });

  it('takes NODE_NAME and POD_UID from the downward API', () => {
    const byName = new Map(env.map((e) => [e.name, e]));
    expect(byName.get('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(byName.get('POD_UID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.uid');
    expect(config.nodeName).toBe('gpu-node-1');
    expect(config.podUid).toBe('0f7c5e3a-2b1d-4c9e-8a6f-1d2e3f4a5b6c');
  });

  it('configures a real node: NVML backend, in-cluster API, the kubelet and CDI directories', () => {
    expect(config.backend).toBe('nvml');
    expect(config.kubeApi).toBe('in-cluster');
    expect(config.devRoot).toBeUndefined();
    expect(config.pluginRegistryDir).toBe('/var/lib/kubelet/plugins_registry');
    expect(config.pluginsDir).toBe('/var/lib/kubelet/plugins');
    expect(config.cdiDir).toBe('/var/run/cdi');
    expect(path.isAbsolute(config.nvmlLibrary)).toBe(true);
  });

  it.each([
    ['plugin registry', (c: Config) => c.pluginRegistryDir],
    ["the driver's plugin", (c: Config) => path.join(c.pluginsDir, c.driverName)],
    ['CDI', (c: Config) => c.cdiDir],
  ])('%s directory is the same host path, writable (the kubelet / runtime read what the agent writes there)', (_n, pick) => {
    const dir = pick(config);
    const m = mountFor(dir);
    expect(m, dir).toBeDefined();
    expect(m!.readOnly ?? false).toBe(false);
    const hostPath = volume(m!.name)?.hostPath?.path;
    expect(hostPath && path.join(hostPath, path.relative(m!.mountPath, dir))).toBe(dir);
  });

  it('keeps the checkpoint on a writable host directory that survives pod restarts', () => {
    const m = mountFor(path.dirname(config.checkpointPath));
    expect(m).toBeDefined();
    expect(m!.readOnly ?? false).toBe(false);
    expect(volume(m!.name)?.hostPath?.type).toBe('DirectoryOrCreate');
  });

  it("reads the kubelet's pod-resources socket through a read-only mount of the kubelet's directory at the same path", () => {
    expect(config.podResourcesSocket).toBe('/var/lib/kubelet/pod-resources/kubelet.sock');
    const m = mountFor(config.podResourcesSocket!);
    expect(m?.readOnly).toBe(true);
    expect(m?.mountPath).toBe('/var/lib/kubelet/pod-resources');
    expect(volume(m!.name)?.hostPath).toEqual({ path: '/var/lib/kubelet/pod-resources', type: 'Directory' });
  });

  it('loads NVML from the read-only host driver mount', () => {
    const m = mountFor(config.nvmlLibrary);
    expect(m?.readOnly).toBe(true);
    expect(volume(m!.name)?.hostPath).toBeDefined();
  });

  it('listens for metrics on the container port named metrics, which probes and the Service use', () => {
    const port = container.ports?.find((p) => p.name === 'metrics');
    expect(port?.containerPort).toBe(config.metricsAddress.port);
    expect(config.metricsAddress.host).toBe('0.0.0.0');
    const probes = { startup: container.startupProbe, liveness: container.livenessProbe, readiness: container.readinessProbe };
    expect(Object.fromEntries(Object.entries(probes).map(([k, p]) => [k, `${String(p?.httpGet?.port)}${p?.httpGet?.path ?? ''}`]))).toEqual({
      startup: 'metrics/healthz',
      liveness: 'metrics/healthz',
      readiness: 'metrics/readyz',
    });
    expect(service.spec?.ports?.[0]?.targetPort).toBe('metrics');
    expect(service.spec?.ports?.[0]?.port).toBe(port?.containerPort);
  });

  it('has only the image read-only: every directory the agent writes is a mount', () => {
    expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
    for (const dir of [config.stateDir, config.pluginRegistryDir, path.join(config.pluginsDir, config.driverName), config.cdiDir]) {
      expect(mountFor(dir)?.readOnly ?? false, dir).toBe(false);
    }
  });
});

describe('DaemonSet security posture', () => {
  const sc = container.securityContext ?? {};

  it('is not privileged, cannot gain privileges, and runs under the runtime\'s default seccomp profile', () => {
    expect(sc.privileged).toBe(false);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.seccompProfile ?? pod.securityContext?.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(sc.procMount ?? 'Default').toBe('Default');
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.hostPID ?? false).toBe(false);
    expect(pod.hostIPC ?? false).toBe(false);
    expect((container.ports ?? []).filter((p) => p.hostPort !== undefined)).toEqual([]);
    expect(pod.initContainers ?? []).toEqual([]);
    expect(pod.containers).toHaveLength(1);
  });

  it('drops every capability and adds none (root only as the owner of root-owned node directories)', () => {
    expect(sc.capabilities?.drop).toEqual(['ALL']);
    expect(sc.capabilities?.add ?? []).toEqual([]);
    expect(sc.runAsUser).toBe(0);
  });

  it('gets the GPUs from the NVIDIA Container Toolkit: runtime class nvidia, all GPUs, NVML only (no CUDA)', () => {
    expect(pod.runtimeClassName).toBe('nvidia');
    const byName = new Map(env.map((e) => [e.name, e.value]));
    expect(byName.get('NVIDIA_VISIBLE_DEVICES')).toBe('all');
    // "utility: required for using nvidia-smi and NVML" (NVIDIA Container Toolkit, driver capabilities).
    expect(byName.get('NVIDIA_DRIVER_CAPABILITIES')).toBe('utility');
    // The toolkit refuses MIG monitor/config devices for a container without CAP_SYS_ADMIN.
    expect(byName.has('NVIDIA_MIG_MONITOR_DEVICES') || byName.has('NVIDIA_MIG_CONFIG_DEVICES')).toBe(false);
    // No host /dev mount: device nodes come from the runtime, never from a hostPath.
    expect((pod.volumes ?? []).filter((v) => v.hostPath?.path === '/dev' || v.hostPath?.path.startsWith('/dev/'))).toEqual([]);
  });

  it('mounts the API token only into this pod: projected, pod-bound, expiring, read-only, at the in-cluster path', () => {
    expect(serviceAccount.automountServiceAccountToken).toBe(false);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(serviceAccount.metadata?.name);
    const tokenVolumes = (pod.volumes ?? []).filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken));
    expect(tokenVolumes).toHaveLength(1);
    const vol = tokenVolumes[0]!;
    const sources = vol.projected!.sources!;
    const token = sources.find((s) => s.serviceAccountToken)!.serviceAccountToken!;
    // No audience: the API server's own, so the token works against it and nowhere else.
    expect(token.audience).toBeUndefined();
    expect(token.path).toBe('token');
    // At least 10 minutes (the API minimum), at most the kubelet's default 1 h (+7 min); the client
    // (@kubernetes/client-node FileAuth) re-reads the file every 60 s, the kubelet renews at 80 %.
    expect(token.expirationSeconds).toBeGreaterThanOrEqual(600);
    expect(token.expirationSeconds).toBeLessThanOrEqual(3607);
    expect(sources.find((s) => s.configMap)?.configMap).toMatchObject({ name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
    expect(sources.find((s) => s.downwardAPI)?.downwardAPI?.items).toEqual([{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }]);
    expect(vol.projected!.defaultMode).toBe(0o440); // read-only, and not for others
    const mount = (container.volumeMounts ?? []).find((m) => m.name === vol.name);
    // Where @kubernetes/client-node's loadFromCluster() reads token, ca.crt and namespace.
    expect(mount).toMatchObject({ mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true });
  });

  it('lives in a namespace whose Pod Security level admits its pods', () => {
    expect(ds.metadata?.namespace).toBe(namespace.metadata.name);
    expect(namespace.metadata.labels['pod-security.kubernetes.io/enforce']).toBeDefined();
  });

  it('rolls out with a surge pod and no gap (both pods serve; sockets carry the pod UID)', () => {
    expect(ds.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(env.find((e) => e.name === 'POD_UID')).toBeDefined();
  });

  it("has a Service selecting exactly the DaemonSet's pods", () => {
    const labels = ds.spec!.template.metadata!.labels!;
    expect(Object.entries(service.spec!.selector!).every(([k, v]) => labels[k] === v)).toBe(true);
    expect(Object.entries(ds.spec!.selector.matchLabels!).every(([k, v]) => labels[k] === v)).toBe(true);
  });
});

// ---------- scheduling: node affinity and tolerations, with Kubernetes' matching rules ----------

function requirementMatches(r: V1NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const v = labels[r.key];
  switch (r.operator) {
    case 'In': return v !== undefined && (r.values ?? []).includes(v);
    case 'NotIn': return v === undefined || !(r.values ?? []).includes(v);
    case 'Exists': return v !== undefined;
    case 'DoesNotExist': return v === undefined;
    default: throw new Error(`operator ${r.operator} not handled by this test`);
  }
}

/** Toleration/taint matching as in k8s.io/api core/v1 Toleration.ToleratesTaint. */
function tolerates(t: V1Toleration, taint: { key: string; value?: string; effect: string }): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  if ((t.operator ?? 'Equal') === 'Exists') return true;
  return (t.value ?? '') === (taint.value ?? '');
}

function schedulable(labels: Record<string, string>, taints: Array<{ key: string; value?: string; effect: string }>): boolean {
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  const affinityOk = terms.length === 0 || terms.some((t) => (t.matchExpressions ?? []).every((r) => requirementMatches(r, labels)));
  const selectorOk = Object.entries(pod.nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
  const taintsOk = taints.filter((t) => t.effect !== 'PreferNoSchedule').every((taint) => (pod.tolerations ?? []).some((t) => tolerates(t, taint)));
  return affinityOk && selectorOk && taintsOk;
}

describe('DaemonSet scheduling', () => {
  const gpuNode = { 'kubernetes.io/os': 'linux', 'nvidia.com/gpu.present': 'true' };

  it('runs on a GPU node labelled by GPU Feature Discovery and tainted like GKE / the GPU Operator do', () => {
    expect(schedulable(gpuNode, [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }])).toBe(true);
    expect(schedulable(gpuNode, [{ key: 'CriticalAddonsOnly', value: 'true', effect: 'NoSchedule' }])).toBe(true);
  });

  it('stays off nodes without the GPU label', () => {
    expect(schedulable({ 'kubernetes.io/os': 'linux' }, [])).toBe(false);
    expect(schedulable({ 'kubernetes.io/os': 'linux', 'nvidia.com/gpu.present': 'false' }, [])).toBe(false);
  });

  it('does not tolerate unrelated NoSchedule taints (documented opt-in in the manifest)', () => {
    expect(schedulable(gpuNode, [{ key: 'sku', value: 'gpu', effect: 'NoSchedule' }])).toBe(false);
  });
});

describe('kustomization.yaml', () => {
  const kustomization = parseYaml(readFileSync(path.join(DAEMONSET_DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[]; images?: Array<{ name: string }> };

  it('installs exactly the numbered manifests, in order', () => {
    const numbered = yamlFiles(DAEMONSET_DIR).map((f) => path.basename(f)).filter((f) => /^\d\d-/.test(f));
    expect(kustomization.resources).toEqual(numbered);
  });

  it("overrides the DaemonSet's image by name", () => {
    expect(kustomization.images?.map((i) => i.name)).toEqual([container.image!.split(':')[0]]);
  });

  const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
  it.skipIf(kubectl === undefined)('builds with kubectl kustomize into the same objects', () => {
    const out = execFileSync(kubectl!, ['kustomize', DAEMONSET_DIR], { encoding: 'utf8', timeout: 60_000 });
    const built = parseAllDocuments(out).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
    const key = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;
    expect(built.map(key).sort()).toEqual(install.map((d) => key(d.obj)).sort());
  });
});
