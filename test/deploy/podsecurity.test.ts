/**
 * The Pod Security level of gpulet-system is the strictest one that admits the agent's pod.
 *
 * The controls below are those of the Pod Security Standards (kubernetes.io/docs/concepts/security/
 * pod-security-standards, policy version v1.34), as the PodSecurity admission plugin checks a pod spec:
 * baseline (host namespaces, privileged, capabilities beyond the default set, hostPath volumes, host ports,
 * AppArmor, SELinux, /proc mount, seccomp, sysctls) and restricted (baseline plus volume types, privilege
 * escalation, running as non-root, non-root user, seccomp required, capabilities drop ALL / add only
 * NET_BIND_SERVICE). The agent's pod must break no control except hostPath (baseline) and the two non-root
 * controls (restricted); the namespace then has to enforce `privileged` and can audit/warn at `baseline`.
 */
import { describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { findOne, installDocs } from '../helpers/manifests.js';
import { baselineViolations, restrictedViolations } from '../helpers/pod-security.js';

const install = installDocs();
const ds = findOne<V1DaemonSet>(install, 'DaemonSet');
const namespace = findOne<{ metadata: { name: string; labels: Record<string, string> } }>(install, 'Namespace');

const pod = ds.spec!.template.spec!;

describe('Pod Security Standards for the agent pod', () => {
  it('breaks no baseline control except hostPath volumes (the kubelet and CDI directories it must write)', () => {
    expect(baselineViolations(pod)).toEqual(['hostPath volumes']);
  });

  it('breaks no restricted control beyond those and running as root (the root-owned directories)', () => {
    expect(restrictedViolations(pod)).toEqual(['hostPath volumes', 'running as non-root', 'running as non-root user', 'volume types']);
  });

  it('so the namespace enforces privileged, the strictest level that admits it, and audits/warns at baseline, version-pinned', () => {
    const labels = namespace.metadata.labels;
    expect(baselineViolations(pod).length).toBeGreaterThan(0); // baseline would reject the pod
    expect(labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    expect(labels['pod-security.kubernetes.io/audit']).toBe('baseline');
    expect(labels['pod-security.kubernetes.io/warn']).toBe('baseline');
    for (const mode of ['enforce', 'audit', 'warn']) expect(labels[`pod-security.kubernetes.io/${mode}-version`]).toMatch(/^v1\.\d+$/);
  });

  it.each([
    ['privileged', { privileged: true }, 'privileged'],
    ['a capability outside the baseline set', { capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } }, 'capabilities'],
    ['seccomp Unconfined', { seccompProfile: { type: 'Unconfined' } }, 'seccomp'],
  ])('the evaluator is not vacuous: %s is a new baseline violation', (_n, securityContext, control) => {
    const c = pod.containers[0]!;
    const bad: V1PodSpec = { ...pod, containers: [{ ...c, securityContext: { ...c.securityContext, ...securityContext } }] };
    expect(baselineViolations(bad)).toContain(control);
    expect(baselineViolations(bad).length).toBeGreaterThan(1);
  });
});
