/**
 * The Pod Security Standards' controls (kubernetes.io/docs/concepts/security/pod-security-standards, policy
 * version v1.34) as the PodSecurity admission plugin checks a pod spec, for the agent's pod in daemonset/ and
 * in the rendered Helm chart (test/deploy/podsecurity.test.ts, test/deploy/helm.test.ts).
 */
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

/** Capabilities baseline allows adding (PSS "Capabilities", baseline). */
const BASELINE_CAPS = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SAFE_SYSCTLS = new Set(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes']);
const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

function containers(spec: V1PodSpec): V1Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers, ...((spec.ephemeralContainers ?? []) as V1Container[])];
}

/** Names of the baseline controls `spec` breaks. */
export function baselineViolations(spec: V1PodSpec): string[] {
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
export function restrictedViolations(spec: V1PodSpec): string[] {
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
