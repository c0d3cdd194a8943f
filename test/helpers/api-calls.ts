/**
 * The Kubernetes API calls the agent makes, found by scanning src/: every request of src/k8s/rest.ts
 * (`kubeRequest(conn, { method, path })`: the verb from the HTTP method and whether the path names an object,
 * the group and resource from the path literal), every `@kubernetes/client-node` API method called (checked
 * against the real ResourceV1Api/CoreV1Api/... prototypes, so only real API methods count),
 * the authorization checks the API server adds to some of them, and watch/informer paths. Used by the RBAC tests: every call is granted, every grant is called.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { REPO_ROOT } from './repo.js';

const VERB_OF: Array<[RegExp, string]> = [
  [/^read/, 'get'], [/^list/, 'list'], [/^create/, 'create'], [/^replace/, 'update'],
  [/^patch/, 'patch'], [/^deleteCollection/, 'deletecollection'], [/^delete/, 'delete'],
];

/** client-node API classes the agent may use, with the API group they serve. */
const API_CLASSES: Array<[string, object]> = [
  ['resource.k8s.io', k8s.ResourceV1Api.prototype],
  ['', k8s.CoreV1Api.prototype],
  ['events.k8s.io', k8s.EventsV1Api.prototype],
  ['coordination.k8s.io', k8s.CoordinationV1Api.prototype],
];

/**
 * Plural resource of a client-node method, e.g. `readNamespacedResourceClaim` → `resourceclaims`, and for the
 * status subresource's methods `patchNamespacedResourceClaimStatus` → `resourceclaims/status`.
 */
function resourceOf(method: string): string | undefined {
  const m = /^(?:read|list|create|replace|patch|deleteCollection|delete)(?:Namespaced)?([A-Z][A-Za-z]*?)(Status)?(ForAllNamespaces)?$/.exec(method);
  if (!m) return undefined;
  const kind = m[1]!.toLowerCase();
  const plural = kind.endsWith('s') ? `${kind}es` : kind.endsWith('y') ? `${kind.slice(0, -1)}ies` : `${kind}s`;
  return m[2] === undefined ? plural : `${plural}/status`;
}

/**
 * Authorization checks the API server makes on top of a call's own verb and resource. A write of a
 * ResourceClaim's status that changes `status.devices` is also authorized per driver on the synthetic
 * subresource `resourceclaims/driver`, with the verb `associated-node:<verb>` when the ServiceAccount's token
 * names the node the claim is allocated on (k8s.io/kubernetes v1.37.2 pkg/registry/resource/utils.go
 * `AuthorizedForDeviceStatus`, feature DRAResourceClaimGranularStatusAuthorization); gpulet's only status
 * write is of its devices' entries on claims allocated on its node (src/dra/claim-status/).
 */
function impliedChecks(verb: string, key: string): string[] {
  return key === 'resource.k8s.io/resourceclaims/status' ? [`associated-node:${verb} resource.k8s.io/resourceclaims/driver`] : [];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/**
 * `<verb> <group>/<resource>` of one rest.ts request: `GET` of a named object = get, of a collection = list;
 * POST create, PUT update, PATCH patch, DELETE delete (of a collection: deletecollection). Undefined when the
 * path is not `/api/<v>/...` or `/apis/<group>/<v>/...`.
 */
export function restCall(method: string, p: string): string | undefined {
  const m = /^\/(?:api|apis\/([a-z0-9.-]+))\/v[0-9a-z]+(?:\/namespaces(?:\$\{[^}]*\}|\/[^/]+))?\/([a-z]+)(\$\{[^}]*\}|\/[^/$]+)?(?:\/([a-z]+))?$/.exec(p);
  if (m === null) return undefined;
  const named = m[3] !== undefined;
  const verb = { GET: named ? 'get' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: named ? 'delete' : 'deletecollection' }[method];
  if (verb === undefined) return undefined;
  return `${verb} ${m[1] ?? ''}/${m[2]!}${m[4] === undefined ? '' : `/${m[4]}`}`;
}

/** `<verb> <group>/<resource>` → files, for every rest.ts request and client-node API method called in src/, and watch paths. */
export function callsInSrc(): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  const add = (key: string, file: string) => calls.set(key, [...(calls.get(key) ?? []), path.relative(REPO_ROOT, file)]);
  for (const file of tsFiles(path.join(REPO_ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\.([a-z][A-Za-z]+)\s*\(/g)) {
      const method = m[1]!;
      for (const [group, proto] of API_CLASSES) {
        if (typeof (proto as Record<string, unknown>)[method] !== 'function') continue;
        const verb = VERB_OF.find(([re]) => re.test(method))?.[1];
        const resource = resourceOf(method);
        if (!verb || !resource) continue;
        add(`${verb} ${group}/${resource}`, file);
        for (const implied of impliedChecks(verb, `${group}/${resource}`)) add(implied, file);
      }
    }
    // src/k8s/rest.ts requests: `kubeRequest<T>(conn, { method: 'GET', path: `/apis/<group>/<v>/...` ... })`.
    for (const m of text.matchAll(/kubeRequest\b[\s\S]{0,200}?method:\s*'([A-Z]+)'[\s\S]{0,120}?path:\s*[`'](\/[^`']*)[`']/g)) {
      const call = restCall(m[1]!, m[2]!);
      if (call === undefined) throw new Error(`${path.relative(REPO_ROOT, file)}: cannot read the API call of ${m[0].slice(0, 200)}`);
      add(call, file);
      const [verb, key] = call.split(' ') as [string, string];
      for (const implied of impliedChecks(verb, key)) add(implied, file);
    }
    // Watches and informers take a path: '/apis/<group>/<version>/[namespaces/x/]<resource>'.
    if (/\bWatch\b|makeInformer/.test(text)) {
      for (const m of text.matchAll(/['"`]\/(?:api|apis\/([a-z0-9.-]+))\/v[0-9a-z]+\/(?:namespaces\/[^/'"`]+\/)?([a-z]+)/g)) {
        add(`watch ${m[1] ?? ''}/${m[2]!}`, file);
        if (/makeInformer/.test(text)) add(`list ${m[1] ?? ''}/${m[2]!}`, file);
      }
    }
  }
  return calls;
}

