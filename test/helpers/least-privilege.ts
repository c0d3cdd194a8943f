/**
 * Least-privilege rules for the agent's DaemonSet and NetworkPolicy (issue 9 item 7), pure functions over the
 * manifests and the agent's own configuration, used on daemonset/ (test/deploy/least-privilege.test.ts) and on
 * the rendered Helm chart (test/deploy/helm.test.ts).
 */
import path from 'node:path';
import type { V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';

/** A NetworkPolicy as YAML has it (client-node's model renames `from` to `_from`). */
export interface NetworkPolicy {
  metadata?: { namespace?: string };
  spec?: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: Array<{
      from?: Array<{ ipBlock?: { cidr: string }; namespaceSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } }>;
      ports?: Array<{ port?: string | number }>;
    }>;
  };
}

/** Host paths that hold credentials, secrets, other workloads' data or the runtime's control sockets. */
const SENSITIVE = [
  '/etc/shadow', '/etc/kubernetes', '/root', '/home', '/var/lib/kubelet/pki', '/var/lib/kubelet/pods',
  '/var/lib/kubelet/kubeconfig', '/var/lib/kubelet/plugins/kubernetes.io', '/var/run/secrets', '/run/secrets',
  '/var/run/containerd', '/run/containerd', '/var/run/crio', '/var/run/docker.sock', '/var/lib/etcd', '/dev', '/proc', '/sys',
];

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/** hostPath volumes that expose `/` or a sensitive path (the volume is that path or one of its ancestors). */
export function exposedHostPaths(pod: V1PodSpec): string[] {
  return (pod.volumes ?? []).flatMap((v) => {
    const p = v.hostPath?.path;
    if (p === undefined) return [];
    const normal = path.posix.normalize(p);
    const hit = normal === '/' ? '/' : SENSITIVE.find((s) => within(s, normal));
    return hit === undefined ? [] : [`volume ${v.name}: hostPath ${p} exposes ${hit}`];
  });
}

/** The directories the agent writes, from its configuration (what the DaemonSet's environment sets). */
function writtenDirs(pod: V1PodSpec): string[] {
  const container = pod.containers[0]!;
  const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef?.fieldPath === 'metadata.uid' ? '0f7c5e3a-2b1d-4c9e-8a6f-1d2e3f4a5b6c' : 'gpu-node-1')]));
  const c = loadConfig([], env, '/');
  return [c.stateDir, c.pluginRegistryDir, path.posix.join(c.pluginsDir, c.driverName), c.cdiDir];
}

/** Writable mounts that are not a directory the agent writes, and written directories without a writable mount. */
export function writableMountProblems(pod: V1PodSpec): string[] {
  const mounts = pod.containers[0]!.volumeMounts ?? [];
  const written = writtenDirs(pod);
  const writable = mounts.filter((m) => m.readOnly !== true);
  return [
    ...writable.filter((m) => !written.includes(m.mountPath)).map((m) => `mount ${m.name} at ${m.mountPath} is writable, but the agent writes nothing there`),
    ...written.filter((d) => !writable.some((m) => within(d, m.mountPath))).map((d) => `the agent writes ${d}, which no writable mount provides`),
  ];
}

/** Why `policy` does not confine ingress of the DaemonSet's pods to the metrics port from labelled namespaces. */
export function networkPolicyProblems(np: NetworkPolicy, daemonSet: V1DaemonSet): string[] {
  const out: string[] = [];
  const labels = daemonSet.spec?.template.metadata?.labels ?? {};
  const selector = np.spec?.podSelector.matchLabels ?? {};
  if (Object.keys(selector).length === 0 || Object.entries(selector).some(([k, v]) => labels[k] !== v)) out.push("podSelector does not select the agent's pods");
  if (np.metadata?.namespace !== daemonSet.metadata?.namespace) out.push('not in the namespace of the DaemonSet');
  if (!(np.spec?.policyTypes ?? []).includes('Ingress')) out.push('does not restrict ingress');
  for (const rule of np.spec?.ingress ?? []) {
    const ports = (rule.ports ?? []).map((p) => String(p.port));
    if (ports.length === 0 || ports.some((p) => p !== 'metrics' && p !== '9400')) out.push(`an ingress rule admits ports other than metrics: ${ports.join(',') || 'all'}`);
    const from = rule.from ?? [];
    if (from.length === 0 || from.some((f) => f.ipBlock?.cidr === '0.0.0.0/0' || (f.namespaceSelector !== undefined && Object.keys(f.namespaceSelector.matchLabels ?? {}).length === 0 && (f.namespaceSelector.matchExpressions ?? []).length === 0))) {
      out.push('an ingress rule admits every source');
    }
  }
  return out;
}
