/**
 * OpenAPI v3 documents kubectl fetches (`/openapi/v3` index, then each group-version's `serverRelativeURL`).
 * `resource.k8s.io/v1` is the official Kubernetes 1.35 document (copied to `openapi/resource.k8s.io-v1.json`);
 * core `v1` is a minimal generated document: enough for kubectl's `fieldValidation` support check
 * (a PATCH operation per kind carrying `x-kubernetes-group-version-kind` (an object on operations, a list on
 * schemas, as upstream) and a `fieldValidation` query parameter),
 * with permissive schemas. It lists no strategic-merge-patch body, so kubectl computes strategic patches for
 * core kinds from its compiled-in types.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RESOURCES } from './resources.js';

const RESOURCE_DOC_PATH = fileURLToPath(new URL('./openapi/resource.k8s.io-v1.json', import.meta.url));

/** One served OpenAPI v3 document: its bytes and a content hash for `?hash=`. */
export interface OpenApiDoc {
  readonly body: Buffer;
  readonly hash: string;
}

function doc(body: Buffer): OpenApiDoc {
  return { body, hash: createHash('sha512').update(body).digest('hex').slice(0, 128).toUpperCase() };
}

function coreDocument(): Record<string, unknown> {
  const schemas: Record<string, unknown> = {};
  const paths: Record<string, unknown> = {};
  const param = (name: string): Record<string, unknown> => ({ in: 'query', name, schema: { type: 'string', uniqueItems: true } });
  for (const r of RESOURCES.filter((d) => d.group === '')) {
    const gvk = [{ group: '', version: 'v1', kind: r.kind }];
    const ref = `io.k8s.api.core.v1.${r.kind}`;
    schemas[ref] = {
      type: 'object',
      description: `${r.kind} (minimal schema served by the gpulet embedded API server).`,
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
      },
      'x-kubernetes-group-version-kind': gvk,
    };
    const base = r.namespaced ? `/api/v1/namespaces/{namespace}/${r.plural}` : `/api/v1/${r.plural}`;
    const op = (verb: string): Record<string, unknown> => ({
      operationId: `${verb}CoreV1${r.kind}`,
      parameters: [param('dryRun'), param('fieldManager'), param('fieldValidation')],
      responses: { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } } },
      'x-kubernetes-action': verb === 'patch' ? 'patch' : verb === 'replace' ? 'put' : 'post',
      'x-kubernetes-group-version-kind': gvk[0],
    });
    paths[base] = { post: op('create') };
    paths[`${base}/{name}`] = { put: op('replace'), patch: op('patch') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.35.0' }, paths, components: { schemas } };
}

/** Documents by index key (`apis/resource.k8s.io/v1`, `api/v1`). Reads the bundled file once. */
export function loadOpenApiDocs(): Map<string, OpenApiDoc> {
  return new Map([
    ['apis/resource.k8s.io/v1', doc(readFileSync(RESOURCE_DOC_PATH))],
    ['api/v1', doc(Buffer.from(JSON.stringify(coreDocument())))],
  ]);
}

/** `GET /openapi/v3`: `{paths: {<key>: {serverRelativeURL: "/openapi/v3/<key>?hash=<HASH>"}}}`. */
export function openApiIndex(docs: ReadonlyMap<string, OpenApiDoc>): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [key, d] of docs) paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${d.hash}` };
  return { paths };
}
