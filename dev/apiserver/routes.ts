/**
 * URL → REST target (pure). Accepts the Kubernetes path forms:
 * `/api/v1[/watch][/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]` and the same under `/apis/{group}/{version}`.
 * `/api/v1/namespaces/{name}[/status]` is the namespaces resource itself.
 */
import { RESOURCES, findByPlural, type ResourceDef } from './resources.js';

/** A request aimed at a resource collection or object. */
export interface ResourceRoute {
  readonly def: ResourceDef;
  /** Namespace from the path (namespaced resources; absent = all namespaces). */
  readonly namespace?: string;
  /** Object name (absent = the collection). */
  readonly name?: string;
  /** Subresource (`status`); other names are rejected by the handler. */
  readonly subresource?: string;
  /** Legacy `/watch/` path prefix. */
  readonly watchPath: boolean;
}

/** Outcome of routing: a resource, an unknown resource under a served group-version, or not a resource path. */
export type RouteResult = { kind: 'resource'; route: ResourceRoute } | { kind: 'unknown'; what: string } | { kind: 'none' };

/** Route a decoded path (no query). */
export function routeResource(path: string): RouteResult {
  let segs: string[];
  try {
    segs = path.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    return { kind: 'unknown', what: path };
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1] ?? '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1] ?? '';
    version = segs[2] ?? '';
    rest = segs.slice(3);
  } else {
    return { kind: 'none' };
  }
  if (!RESOURCES.some((r) => r.group === group && r.version === version)) return { kind: 'none' };
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const inner = findByPlural(group, version, rest[2] ?? '');
    if (inner?.namespaced) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
  }
  const [plural, name, subresource, ...extra] = rest;
  const def = findByPlural(group, version, plural ?? '');
  if (!def || extra.length > 0 || (namespace !== undefined && !def.namespaced)) {
    return { kind: 'unknown', what: path };
  }
  const route: ResourceRoute = {
    def,
    watchPath,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(subresource !== undefined ? { subresource } : {}),
  };
  return { kind: 'resource', route };
}
