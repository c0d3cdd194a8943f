/**
 * REST verbs on resources (no sockets): list/get (optionally as `Table`), create, replace, patch, delete,
 * deletecollection, the `status` subresource, server-side apply (list-maps by key, apply.ts) and `?dryRun=All`. Returns the HTTP status and body; throws `StatusError`.
 * Semantics follow the real API server's generic handlers (`apiserver/pkg/endpoints/handlers`).
 */
import type { KubeObject } from './types.js';
import type { ObjectStore } from './store.js';
import type { ResourceRoute } from './routes.js';
import { apiVersionOf, type ResourceDef } from './resources.js';
import { decodeBody, decodeObject } from './body.js';
import { mergePatch, jsonPatch, strategicMergePatch, type Json } from './patch.js';
import { applyListMaps } from './apply.js';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { toTable, wantsTable, type IncludeObject } from './table.js';
import { StatusError, badRequest, notFound } from './status.js';
import { paginate, validateListOptions, type Page } from './list-options.js';

/** A decoded REST request. */
export interface RestRequest {
  readonly method: string;
  readonly route: ResourceRoute;
  readonly query: URLSearchParams;
  readonly accept: string | undefined;
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

/** What to answer: HTTP status and a JSON body. */
export interface RestReply {
  readonly status: number;
  readonly body: unknown;
}

/** Object filter from `labelSelector` and `fieldSelector` query parameters (400 on bad syntax). */
export function selectorFilter(def: ResourceDef, query: URLSearchParams): (o: KubeObject) => boolean {
  const labels = parseLabelSelector(query.get('labelSelector') ?? '');
  const fields = parseFieldSelector(query.get('fieldSelector') ?? '', def.fieldSelectors);
  return (o) => matchLabels(labels, o.metadata.labels) && matchFields(fields, o);
}

function includeObject(query: URLSearchParams): IncludeObject {
  const v = query.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

function checkTypeAndPlacement(def: ResourceDef, route: ResourceRoute, obj: KubeObject): void {
  const expected = apiVersionOf(def);
  if (obj.apiVersion !== '' && obj.apiVersion !== expected) {
    throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${expected})`);
  }
  if (obj.kind !== '' && obj.kind !== def.kind) {
    throw badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${def.kind})`);
  }
  if (def.namespaced && route.namespace !== undefined) {
    const given = obj.metadata.namespace;
    if (given !== undefined && given !== '' && given !== route.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    obj.metadata.namespace = route.namespace;
  }
  if (route.name !== undefined) {
    const given = obj.metadata.name;
    if (given !== undefined && given !== '' && given !== route.name) {
      throw badRequest(`the name of the object (${given}) does not match the name on the URL (${route.name})`);
    }
    obj.metadata.name = route.name;
  }
}

function listBody(def: ResourceDef, items: KubeObject[], metadata: Page['metadata']): Record<string, unknown> {
  return { apiVersion: apiVersionOf(def), kind: `${def.kind}List`, metadata, items };
}

function deleteOptions(req: RestRequest): { uid?: string; resourceVersion?: string } {
  if (req.body.toString('utf8').trim() === '') return {};
  const opts = decodeBody(req.body, req.contentType);
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw badRequest('DeleteOptions must be an object');
  const pre = opts['preconditions'];
  if (typeof pre !== 'object' || pre === null || Array.isArray(pre)) return {};
  return {
    ...(typeof pre['uid'] === 'string' ? { uid: pre['uid'] } : {}),
    ...(typeof pre['resourceVersion'] === 'string' ? { resourceVersion: pre['resourceVersion'] } : {}),
  };
}

function applyPatch(current: KubeObject, patch: Buffer, contentType: string): Json {
  const ct = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  const doc = decodeBody(patch, ct);
  const base = current as unknown as Json;
  switch (ct) {
    case 'application/json-patch+json':
      return jsonPatch(base, doc);
    case 'application/merge-patch+json':
      return mergePatch(base, doc);
    case 'application/strategic-merge-patch+json':
    case 'application/apply-patch+yaml':
    case 'application/apply-patch+json':
      return strategicMergePatch(base, doc);
    default:
      throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
  }
}

/**
 * A server-side apply (`application/apply-patch+yaml|json`) onto an existing object: list-maps merged by key
 * with ownership per field manager (apply.ts), the rest as a strategic merge patch. The real server requires
 * `fieldManager` on apply (400 otherwise).
 */
function serverSideApply(current: KubeObject, req: RestRequest, status: boolean): Json {
  const manager = req.query.get('fieldManager');
  if (manager === null || manager === '') throw badRequest('PATCH, application/apply-patch+yaml: fieldManager is required for apply requests');
  const applied = decodeBody(req.body, req.contentType);
  if (typeof applied !== 'object' || applied === null || Array.isArray(applied)) throw badRequest('the applied configuration must be an object');
  const base = current as unknown as { [key: string]: Json };
  const split = applyListMaps(current.kind, base, applied, manager, status ? 'status' : '');
  const merged = strategicMergePatch(base, split.rest);
  if (typeof merged !== 'object' || merged === null || Array.isArray(merged)) throw badRequest('the patch result is not an object');
  split.finish(merged, `${new Date().toISOString().slice(0, 19)}Z`);
  return merged;
}

function patch(store: ObjectStore, req: RestRequest, name: string, status: boolean, dryRun: boolean): RestReply {
  const { def, namespace } = req.route;
  const ct = req.contentType ?? '';
  const current = store.get(def, namespace, name);
  if (!current) {
    if (!status && ct.startsWith('application/apply-patch')) {
      const obj = decodeObject(req.body, ct);
      checkTypeAndPlacement(def, req.route, obj);
      return { status: 201, body: store.create(def, obj, false, dryRun) };
    }
    throw notFound(def.group, def.plural, name);
  }
  const patched = ct.startsWith('application/apply-patch') ? serverSideApply(current, req, status) : applyPatch(current, req.body, ct);
  if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) throw badRequest('the patch result is not an object');
  const meta = patched['metadata'];
  const obj = { ...patched, metadata: typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? meta : {} } as KubeObject;
  obj.metadata.name = name;
  if (def.namespaced && namespace !== undefined) obj.metadata.namespace = namespace;
  if (obj.metadata.uid !== current.metadata.uid) {
    throw new StatusError(409, 'Conflict', `Precondition failed: UID in precondition: ${String(obj.metadata.uid)}, UID in object meta: ${current.metadata.uid ?? ''}`);
  }
  return { status: 200, body: store.update(def, obj, status ? 'status' : undefined, dryRun) };
}

/** Serve one non-watch REST request. */
export function handleRest(store: ObjectStore, req: RestRequest): RestReply {
  const { def, namespace, name, subresource } = req.route;
  if (subresource !== undefined && (subresource !== 'status' || !def.statusSubresource)) {
    throw new StatusError(404, 'NotFound', `the server could not find the requested resource (${def.plural}/${subresource})`);
  }
  const status = subresource === 'status';
  const method = req.method.toUpperCase();
  const dryRunParam = req.query.get('dryRun');
  if (dryRunParam !== null && dryRunParam !== 'All') throw badRequest(`unsupported dryRun value "${dryRunParam}": only "All" is supported`);
  const dryRun = dryRunParam === 'All';
  if (name === undefined) {
    switch (method) {
      case 'GET': {
        validateListOptions(req.query);
        const filter = selectorFilter(def, req.query);
        const filtered = (req.query.get('labelSelector') ?? '') !== '' || (req.query.get('fieldSelector') ?? '') !== '';
        const page = paginate(store.list(def, namespace, filter), req.query, store.resourceVersion, filtered);
        return {
          status: 200,
          body: wantsTable(req.accept) ? toTable(def, page.items, page.metadata, includeObject(req.query)) : listBody(def, page.items, page.metadata),
        };
      }
      case 'POST': {
        const obj = decodeObject(req.body, req.contentType);
        checkTypeAndPlacement(def, req.route, obj);
        if (def.namespaced && (obj.metadata.namespace === undefined || obj.metadata.namespace === '')) {
          throw badRequest(`${def.plural} is namespaced: POST it under /namespaces/{namespace}/`);
        }
        return { status: 201, body: store.create(def, obj, false, dryRun) };
      }
      case 'DELETE': {
        const filter = selectorFilter(def, req.query);
        const deleted = store.list(def, namespace, filter).map((o) => store.delete(def, o.metadata.namespace, o.metadata.name ?? '', {}, dryRun));
        return { status: 200, body: listBody(def, deleted, { resourceVersion: store.resourceVersion }) };
      }
      default:
        throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${def.plural})`);
    }
  }
  switch (method) {
    case 'GET': {
      const obj = store.mustGet(def, namespace, name);
      const meta = { resourceVersion: obj.metadata.resourceVersion ?? '' };
      return { status: 200, body: wantsTable(req.accept) ? toTable(def, [obj], meta, includeObject(req.query)) : obj };
    }
    case 'PUT': {
      const obj = decodeObject(req.body, req.contentType);
      checkTypeAndPlacement(def, req.route, obj);
      return { status: 200, body: store.update(def, obj, status ? 'status' : undefined, dryRun) };
    }
    case 'PATCH':
      return patch(store, req, name, status, dryRun);
    case 'DELETE': {
      if (status) throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (DELETE ${def.plural}/status)`);
      const deleted = store.delete(def, namespace, name, deleteOptions(req), dryRun);
      if (def.group !== '' || def.kind === 'Pod') return { status: 200, body: deleted };
      return {
        status: 200,
        body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: def.plural, uid: deleted.metadata.uid } },
      };
    }
    default:
      throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${def.plural})`);
  }
}
