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
import type { V1Container, V1DaemonSet, V1PodSpec } from '@kubernetes/client-node';
import { findOne, installDocs } from '../helpers/manifests.js';

const install = installDocs();
const ds = findOne<V1DaemonSet>(install, 'DaemonSet');
const namespace = findOne<{ metadata: { name: string; labels: Record<string, string> } }>(install, 'Namespace');

/** Capabilities baseline allows adding (PSS "Capabilities", baseline). */
const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes']);
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

function containers(spec: V1PodSpec): V1Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers, ...((spec.ephemeralContainers ?? []) as V1Container[])];
}

/** Names of the baseline controls `spec` breaks. */
function baselineViolations(spec: V1PodSpec): string[] {
  const out = new Set<string>();
  const cs = containers(spec);
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.add('host namespaces');
  if (cs.some((c) => c.securityContext?.privileged)) out.add('privileged');
  if (cs.some((c) => (c.securityContext?.capabilities?.add ?? []).some((a) => !BASELINE_CAPS.has(a)))) out.add('capabilities');
  if ((spec.volumes ?? []).some((v) => v.hostPath)) out.add('hostPath volumes');
  if (cs.some((c) => (c.ports ?? []).some((p) => (p.hostPort ?? 0) !== 0))) out.add('host ports');
  const seLinux = [spec.securityContext?.seLinuxOptions, ...cs.map((c) => c.securityContext?.seLinuxOptions)];
  if (seLinux.some((o) => o && (!SELINUX_TYPES.has(o.type ?? '') || o.user || o.role))) out.add('SELinux');
  if (cs.some((c) => (c.securityContext?.procMount ?? 'Default') !== 'Default')) out.add('/proc mount type');
  const seccomp = [spec.securityContext?.seccompProfile, ...cs.map((c) => c.securityContext?.seccompProfile)];
  if (seccomp.some((p) => p?.type === 'Unconfined')) out.add('seccomp');
  const apparmor = [spec.securityContext?.appArmorProfile, ...cs.map((c) => c.securityContext?.appArmorProfile)];
  if (apparmor.some((p) => p?.type === 'Unconfined')) out.add('AppArmor');
  if ((spec.securityContext?.sysctls ?? []).some((s) => !SAFE_SYSCTLS.has(s.name))) out.add('sysctls');
  if (spec.securityContext?.windowsOptions?.hostProcess || cs.some((c) => c.securityContext?.windowsOptions?.hostProcess)) out.add('HostProcess');
  return [...out].sort();
}

/** Names of the restricted controls `spec` breaks (baseline's included). */
function restrictedViolations(spec: V1PodSpec): string[] {
  const out = new Set(baselineViolations(spec));
  const cs = containers(spec);
  if ((spec.volumes ?? []).some((v) => !RESTRICTED_VOLUMES.some((t) => (v as unknown as Record<string, unknown>)[t] !== undefined))) out.add('volume types');
  if (cs.some((c) => c.securityContext?.allowPrivilegeEscalation !== false)) out.add('privilege escalation');
  if (cs.some((c) => (c.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot) !== true)) out.add('running as non-root');
  if ([spec.securityContext?.runAsUser, ...cs.map((c) => c.securityContext?.runAsUser)].some((u) => u === 0)) out.add('running as non-root user');
  if (cs.some((c) => !['RuntimeDefault', 'Localhost'].includes(c.securityContext?.seccompProfile?.type ?? spec.securityContext?.seccompProfile?.type ?? ''))) out.add('seccomp');
  if (cs.some((c) => !(c.securityContext?.capabilities?.drop ?? []).includes('ALL') || (c.securityContext?.capabilities?.add ?? []).some((a) => a !== 'NET_BIND_SERVICE'))) out.add('capabilities');
  return [...out].sort();
}

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
