/**
 * The one place where names and identifiers are checked. Every name that enters gpulet from outside (a flag
 * or variable, a gRPC request, an API object, a checkpoint) is checked here once, where it enters, and is
 * carried afterwards as a branded type, so code further in never checks it again and cannot be handed an
 * unchecked string by mistake.
 *
 * Rules, as Kubernetes words them (k8s.io/apimachinery `pkg/util/validation`: `IsDNS1123Label`,
 * `IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`, `IsCIdentifier`; resource.k8s.io/v1
 * validation for driver and pool names, kubernetes `pkg/apis/resource/validation`):
 * - DNS label: ≤ 63 characters of `[a-z0-9-]`, starting and ending alphanumeric (namespaces, device names).
 * - DNS subdomain: ≤ 253 characters, dot-separated DNS labels (object names, node names).
 * - Driver name: a DNS subdomain of ≤ 63 characters (`DriverNameMaxLength`). Kubernetes checks
 *   `IsDNS1123Subdomain(strings.ToLower(name))`, so the API server would take upper case; gpulet requires the
 *   lower-case form because the name is part of socket paths, CDI spec file names and the CDI vendor.
 * - Pool name: ≤ 253 characters, `/`-separated DNS subdomains (`PoolNameMaxLength`). gpulet's pool is its
 *   node's name: {@link poolNameOf}.
 * - Object UID: Kubernetes leaves `metadata.uid` an opaque string, but every UID the API server issues is a
 *   lower-case RFC 4122 UUID (`k8s.io/apimachinery/pkg/util/uuid.NewUUID`). gpulet requires that form for
 *   claim and pod UIDs, because both become parts of file names (CDI spec files and CDI device names,
 *   socket names): one rule, so a UID the gRPC layer accepts is one the state layer can store.
 * - Device attribute and capacity names (resource.k8s.io `QualifiedName`): a C identifier of ≤ 32 characters
 *   (`DeviceMaxIDLength`), optionally prefixed by a DNS subdomain of ≤ 63 characters (`DeviceMaxDomainLength`)
 *   and `/`.
 * - C identifier, label name (`IsQualifiedName`) and label value (`IsValidLabelValue`): as apimachinery.
 *
 * Pure, no I/O.
 */
import { z } from 'zod';

/** Maximum length of a DNS label. */
export const MAX_DNS_LABEL_LENGTH = 63;
/** Maximum length of a DNS subdomain. */
export const MAX_DNS_SUBDOMAIN_LENGTH = 253;
/** Maximum length of a driver name (resource.k8s.io `DriverNameMaxLength`). */
export const MAX_DRIVER_NAME_LENGTH = 63;
/** Maximum length of a pool name (resource.k8s.io `PoolNameMaxLength`). */
export const MAX_POOL_NAME_LENGTH = 253;
/** Maximum length of a label value and of the name part of a label key. */
export const MAX_LABEL_VALUE_LENGTH = 63;
/** Maximum length of the C-identifier part of a device attribute or capacity name (resource.k8s.io `DeviceMaxIDLength`). */
export const MAX_DEVICE_ID_LENGTH = 32;
/** Maximum length of the domain of a device attribute or capacity name (resource.k8s.io `DeviceMaxDomainLength`). */
export const MAX_DEVICE_DOMAIN_LENGTH = 63;

/** The driver name gpulet uses unless configured otherwise. */
export const DEFAULT_DRIVER_NAME = 'gpu.gpulet.dev' as DriverName;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Why `s` is not a DNS label (≤ 63 characters), or undefined. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > MAX_DNS_LABEL_LENGTH) return `must be at most ${MAX_DNS_LABEL_LENGTH} characters (is ${s.length})`;
  if (!DNS_LABEL.test(s)) return 'must be a DNS label (lower-case alphanumerics and "-", starting and ending alphanumeric)';
  return undefined;
}

/** Why `s` is not a DNS subdomain of at most `max` characters (default 253), or undefined. */
export function dnsSubdomainProblem(s: string, max = MAX_DNS_SUBDOMAIN_LENGTH): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > max) return `must be at most ${max} characters (is ${s.length})`;
  for (const label of s.split('.')) {
    if (!DNS_LABEL.test(label)) return 'must be a DNS subdomain (dot-separated DNS labels of lower-case alphanumerics and "-")';
  }
  return undefined;
}

/** Why `s` is not a driver name (DNS subdomain ≤ 63 characters), or undefined. */
export function driverNameProblem(s: string): string | undefined {
  return dnsSubdomainProblem(s, MAX_DRIVER_NAME_LENGTH);
}

/** Why `s` is not a pool name (≤ 253 characters, `/`-separated DNS subdomains), or undefined. */
export function poolNameProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > MAX_POOL_NAME_LENGTH) return `must be at most ${MAX_POOL_NAME_LENGTH} characters (is ${s.length})`;
  for (const part of s.split('/')) {
    const p = dnsSubdomainProblem(part);
    if (p !== undefined) return `must be "/"-separated DNS subdomains: ${JSON.stringify(part.slice(0, 64))} ${p}`;
  }
  return undefined;
}

/** Why `s` is not an object UID as the API server issues it (a lower-case UUID), or undefined. */
export function objectUidProblem(s: string): string | undefined {
  if (!UUID.test(s)) return 'must be a lower-case UUID (8-4-4-4-12 hex digits) as the API server issues it';
  return undefined;
}

/** Why `s` is not a C identifier of at most `max` characters, or undefined. */
export function cIdentifierProblem(s: string, max: number): string | undefined {
  if (s.length > max) return `must be at most ${max} characters (is ${s.length})`;
  if (!C_IDENTIFIER.test(s)) return 'must be a C identifier';
  return undefined;
}

/** Why `s` is not a label value (≤ 63 characters, alphanumerics and `-_.`, alphanumeric ends; may be empty), or undefined. */
export function labelValueProblem(s: string): string | undefined {
  if (s.length > MAX_LABEL_VALUE_LENGTH) return `must be at most ${MAX_LABEL_VALUE_LENGTH} characters (is ${s.length})`;
  if (!LABEL_VALUE.test(s)) return 'must be a label value';
  return undefined;
}

/** Why `s` is not a label name (`[prefix/]name`, prefix a DNS subdomain, name a non-empty label value), or undefined. */
export function labelNameProblem(s: string): string | undefined {
  const slash = s.lastIndexOf('/');
  const name = slash < 0 ? s : s.slice(slash + 1);
  if (slash >= 0) {
    const p = dnsSubdomainProblem(s.slice(0, slash));
    if (p !== undefined) return `prefix ${p}`;
  }
  if (name === '') return 'name must not be empty';
  return labelValueProblem(name);
}

/**
 * Why `key` is not a device attribute or capacity name, or undefined: a C identifier of at most 32 characters,
 * optionally prefixed by `<DNS subdomain ≤ 63>/` (resource.k8s.io/v1 `QualifiedName`, `validateQualifiedName`).
 */
export function deviceQualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const id = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    const domainProblem = dnsSubdomainProblem(key.slice(0, slash), MAX_DEVICE_DOMAIN_LENGTH);
    if (domainProblem !== undefined) return `domain ${domainProblem}`;
  }
  const idProblem = cIdentifierProblem(id, MAX_DEVICE_ID_LENGTH);
  return idProblem === undefined ? undefined : `identifier ${idProblem}`;
}

/** True when `s` is a DNS label. */
export const isDnsLabel = (s: string): s is DnsLabel => dnsLabelProblem(s) === undefined;
/** True when `s` is a DNS subdomain. */
export const isDnsSubdomain = (s: string): s is DnsSubdomain => dnsSubdomainProblem(s) === undefined;
/** True when `s` is a driver name. */
export const isDriverName = (s: string): s is DriverName => driverNameProblem(s) === undefined;
/** True when `s` is a pool name. */
export const isPoolName = (s: string): s is PoolName => poolNameProblem(s) === undefined;
/** True when `s` is an object UID (lower-case UUID). */
export const isObjectUid = (s: string): s is ObjectUid => objectUidProblem(s) === undefined;

/** A zod refinement from a `...Problem` function, so the rule and its message are this module's. */
function rule(problem: (s: string) => string | undefined) {
  return (s: string, ctx: z.RefinementCtx): void => {
    const p = problem(s);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  };
}

/** zod schema of a {@link DnsLabel}: where structured input (configuration, checkpoint, API objects) enters. */
export const dnsLabelSchema = z.string().superRefine(rule(dnsLabelProblem)).brand<'DnsLabel'>();
/** zod schema of a {@link DnsSubdomain}. */
export const dnsSubdomainSchema = z.string().superRefine(rule((s) => dnsSubdomainProblem(s))).brand<'DnsSubdomain'>();
/** zod schema of a {@link DriverName}. */
export const driverNameSchema = z.string().superRefine(rule(driverNameProblem)).brand<'DriverName'>();
/** zod schema of a {@link PoolName}. */
export const poolNameSchema = z.string().superRefine(rule(poolNameProblem)).brand<'PoolName'>();
/** zod schema of an {@link ObjectUid}. */
export const objectUidSchema = z.string().superRefine(rule(objectUidProblem)).brand<'ObjectUid'>();

/** An RFC 1123 DNS label (≤ 63 characters): namespaces, device names. */
export type DnsLabel = z.infer<typeof dnsLabelSchema>;
/** An RFC 1123 DNS subdomain (≤ 253 characters): object names, node names. */
export type DnsSubdomain = z.infer<typeof dnsSubdomainSchema>;
/** A DRA driver name: DNS subdomain of ≤ 63 characters, e.g. `gpu.gpulet.dev`. */
export type DriverName = z.infer<typeof driverNameSchema>;
/** A ResourceSlice pool name: ≤ 253 characters, `/`-separated DNS subdomains. */
export type PoolName = z.infer<typeof poolNameSchema>;
/** A Kubernetes object UID as the API server issues it: a lower-case RFC 4122 UUID. */
export type ObjectUid = z.infer<typeof objectUidSchema>;

/**
 * The pool gpulet publishes its devices in: the node's name (one node-local pool per node, as NVIDIA's DRA
 * driver does). The one place that decides it; every component takes the result. A DNS subdomain is a valid
 * pool name (one `/`-separated part, ≤ 253 characters), so this cannot fail.
 */
export function poolNameOf(nodeName: DnsSubdomain): PoolName {
  return nodeName as string as PoolName;
}
