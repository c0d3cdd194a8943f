/**
 * Least privilege of daemonset/ (issue 9 item 7), checked by pure rules over the manifests and the agent's own
 * configuration and source, each rule proven to fire on a manifest that breaks it:
 * - no hostPath exposes the host's root or a place holding credentials or other workloads' data (the
 *   kubelet's client key and pods' volumes under /var/lib/kubelet, /etc, runtime sockets, ...);
 * - every writable mount is a directory the agent writes (its configuration names it), and every such
 *   directory is writable: nothing else;
 * - every RBAC verb granted is one the source calls (rbac.test.ts checks the converse);
 * - a NetworkPolicy admits only labelled scrapers to the metrics port of the agent's pods.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { findOne, installDocs } from '../helpers/manifests.js';

const install = installDocs();
const ds = findOne<V1DaemonSet>(install, 'DaemonSet');
/** A NetworkPolicy as YAML has it (client-node's model renames `from` to `_from`). */
interface NetworkPolicy {
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
const policy = findOne<NetworkPolicy>(install, 'NetworkPolicy');

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

const pod = ds.spec!.template.spec!;

describe('least privilege of the DaemonSet', () => {
  it("mounts nothing of the host that exposes its root, credentials or other workloads' data", () => {
    expect(exposedHostPaths(pod)).toEqual([]);
  });

  it('is writable exactly where the agent writes (its state, registry, own plugin and CDI directories)', () => {
    expect(writableMountProblems(pod)).toEqual([]);
  });

  it("admits only labelled scrapers to the agents' metrics port", () => {
    expect(networkPolicyProblems(policy, ds)).toEqual([]);
  });
});

describe('the rules fire on manifests that break them', () => {
  const withVolume = (name: string, hostPath: string, mountPath: string, readOnly: boolean): V1PodSpec => {
    const p = structuredClone(pod);
    p.volumes = [...(p.volumes ?? []), { name, hostPath: { path: hostPath } }];
    p.containers[0]!.volumeMounts = [...(p.containers[0]!.volumeMounts ?? []), { name, mountPath, readOnly }];
    return p;
  };

  it("the host's / read-only, and /var/lib/kubelet (other pods' secrets under pods/)", () => {
    expect(exposedHostPaths(withVolume('root', '/', '/host', true))).toEqual(['volume root: hostPath / exposes /']);
    expect(exposedHostPaths(withVolume('kubelet', '/var/lib/kubelet', '/k', true))).toEqual(['volume kubelet: hostPath /var/lib/kubelet exposes /var/lib/kubelet/pki']);
  });

  it('all of the kubelet plugins dir writable, and a scratch emptyDir the agent never writes', () => {
    expect(writableMountProblems(withVolume('plugins', '/var/lib/kubelet/plugins', '/var/lib/kubelet/plugins', false))).toEqual([
      'mount plugins at /var/lib/kubelet/plugins is writable, but the agent writes nothing there',
    ]);
    const scratch = structuredClone(pod);
    scratch.containers[0]!.volumeMounts!.push({ name: 'tmp', mountPath: '/tmp' });
    expect(writableMountProblems(scratch)).toEqual(['mount tmp at /tmp is writable, but the agent writes nothing there']);
  });

  it('a written directory made read-only', () => {
    const ro = structuredClone(pod);
    for (const m of ro.containers[0]!.volumeMounts!) if (m.mountPath === '/var/run/cdi') m.readOnly = true;
    expect(writableMountProblems(ro)).toEqual(['the agent writes /var/run/cdi, which no writable mount provides']);
  });

  it('a NetworkPolicy that admits everyone, or selects other pods', () => {
    const open = structuredClone(policy);
    open.spec!.ingress = [{ from: [{ namespaceSelector: {} }] }];
    expect(networkPolicyProblems(open, ds)).toEqual(['an ingress rule admits ports other than metrics: all', 'an ingress rule admits every source']);
    const other = structuredClone(policy);
    other.spec!.podSelector = { matchLabels: { app: 'something-else' } };
    expect(networkPolicyProblems(other, ds)).toEqual(["podSelector does not select the agent's pods"]);
  });
});
