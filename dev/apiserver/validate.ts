/**
 * Minimal object validation (pure), as apimachinery `pkg/api/validation` words it: names are DNS subdomains
 * (RFC 1123, ≤ 253 chars) or DNS labels (≤ 63 chars); label keys/values follow `IsQualifiedName`/`IsValidLabelValue`.
 */
import type { StatusCause } from './status.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Whether `s` is an RFC 1123 DNS label (lower-case alphanumerics and '-', ≤ 63 chars). */
export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

/** Whether `s` is an RFC 1123 DNS subdomain (dot-separated labels, ≤ 253 chars). */
export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN.test(s);
}

/** Whether `key` is a valid label key: optional DNS-subdomain prefix + '/' + name (≤ 63, alphanumeric ends). */
export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

/** Whether `v` is a valid label value ('' or ≤ 63 chars with alphanumeric ends). */
export function isLabelValue(v: string): boolean {
  return v === '' || (v.length <= 63 && LABEL_NAME.test(v));
}

/** Field causes for an object's metadata (`name`, `labels`, `annotations` types); empty when valid. */
export function validateMetadata(meta: Record<string, unknown>, nameIsLabel: boolean): StatusCause[] {
  const causes: StatusCause[] = [];
  const name = meta['name'];
  if (typeof name !== 'string' || name === '') {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' });
  } else if (nameIsLabel ? !isDnsLabel(name) : !isDnsSubdomain(name)) {
    const what = nameIsLabel ? 'RFC 1123 label' : 'RFC 1123 subdomain';
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: "${name}": a lowercase ${what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      field: 'metadata.name',
    });
  }
  const labels = meta['labels'];
  if (labels !== undefined && labels !== null) {
    if (typeof labels !== 'object' || Array.isArray(labels)) {
      causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: labels must be a map of strings', field: 'metadata.labels' });
    } else {
      for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
        if (!isLabelKey(k)) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": not a valid label key`, field: 'metadata.labels' });
        if (typeof v !== 'string' || !isLabelValue(v)) {
          causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(v)}: not a valid label value`, field: `metadata.labels` });
        }
      }
    }
  }
  const annotations = meta['annotations'];
  if (annotations !== undefined && annotations !== null) {
    const ok = typeof annotations === 'object' && !Array.isArray(annotations) && Object.values(annotations).every((v) => typeof v === 'string');
    if (!ok) causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: annotations must be a map of strings', field: 'metadata.annotations' });
  }
  return causes;
}
