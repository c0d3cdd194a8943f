/**
 * Minimal object validation (pure), as apimachinery `pkg/api/validation` words it: names are DNS subdomains
 * (RFC 1123, ≤ 253 chars) or DNS labels (≤ 63 chars); label keys/values follow `IsQualifiedName`/`IsValidLabelValue`.
 * The rules themselves are gpulet's one module for names, src/model/names.ts; this file only words the
 * failures as the API server's `Status` causes.
 */
import { isDnsLabel, isDnsSubdomain, labelNameProblem, labelValueProblem } from '../../src/model/names.js';
import type { StatusCause } from './status.js';

/** Whether `key` is a valid label key: optional DNS-subdomain prefix + '/' + name (≤ 63, alphanumeric ends). */
function isLabelKey(key: string): boolean {
  return labelNameProblem(key) === undefined;
}

/** Whether `v` is a valid label value ('' or ≤ 63 chars with alphanumeric ends). */
function isLabelValue(v: string): boolean {
  return labelValueProblem(v) === undefined;
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
