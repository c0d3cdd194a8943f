/**
 * Request-body decoding (pure): JSON by default, YAML for `application/yaml` and `application/apply-patch+yaml`.
 * Throws `StatusError` 400 BadRequest for an empty, unparsable or non-object body, 415 for protobuf/CBOR.
 */
import { parse as parseYaml } from 'yaml';
import type { KubeObject } from './types.js';
import type { Json } from './patch.js';
import { StatusError, badRequest } from './status.js';

/** Decode a body as JSON (or YAML when the content type says so). */
export function decodeBody(body: Buffer, contentType: string | undefined): Json {
  const ct = (contentType ?? 'application/json').toLowerCase();
  if (ct.includes('protobuf') || ct.includes('cbor')) {
    throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`);
  }
  const text = body.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty');
  try {
    return (ct.includes('yaml') ? parseYaml(text) : JSON.parse(text)) as Json;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw badRequest(`the body of the request could not be decoded: ${why}`);
  }
}

/** Decode a body that must be an object with a `metadata` map (created when absent). */
export function decodeObject(body: Buffer, contentType: string | undefined): KubeObject {
  const v = decodeBody(body, contentType);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('the request body must be a JSON object');
  const meta = v['metadata'] ?? {};
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw badRequest('metadata must be an object');
  return { ...v, apiVersion: typeof v['apiVersion'] === 'string' ? v['apiVersion'] : '', kind: typeof v['kind'] === 'string' ? v['kind'] : '', metadata: meta };
}
