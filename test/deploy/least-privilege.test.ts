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
import { describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { exposedHostPaths, networkPolicyProblems, writableMountProblems, type NetworkPolicy } from '../helpers/least-privilege.js';
import { findOne, installDocs } from '../helpers/manifests.js';

const install = installDocs();
const ds = findOne<V1DaemonSet>(install, 'DaemonSet');
const policy = findOne<NetworkPolicy>(install, 'NetworkPolicy');

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
