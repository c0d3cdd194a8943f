/**
 * Discovery documents (pure): `/version`, legacy `/api` (`APIVersions`), `/apis` (`APIGroupList`),
 * `/apis/<group>` (`APIGroup`) and per-version `APIResourceList`s (with `<plural>/status` entries), as the real
 * API server serves them (apimachinery `pkg/apis/meta/v1` discovery types). kubectl 1.32 asks for aggregated
 * discovery first and falls back to these when the answer is plain `application/json`.
 */
import { RESOURCES, servedGroups, apiVersionOf } from './resources.js';
import { omit } from './patch.js';

/** Kubernetes version this server claims (the OpenAPI it serves is from 1.35). */
export const SERVER_VERSION = {
  major: '1',
  minor: '35',
  gitVersion: 'v1.35.0-gpulet-embedded',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-12-17T00:00:00Z',
  goVersion: 'go1.25.5',
  compiler: 'gc',
  platform: 'linux/amd64',
} as const;

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** `GET /api`. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(name: string, versions: readonly string[]): Record<string, unknown> {
  const gvs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { kind: 'APIGroup', apiVersion: 'v1', name, versions: gvs, preferredVersion: gvs[0] };
}

/** `GET /apis`. */
export function apiGroupList(): Record<string, unknown> {
  const groups = [...servedGroups()].map(([name, versions]) => omit(apiGroup(name, versions), ['kind', 'apiVersion']));
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

/** `GET /apis/<group>`, or undefined when the group is not served. */
export function apiGroupDoc(group: string): Record<string, unknown> | undefined {
  const versions = servedGroups().get(group);
  return versions ? apiGroup(group, versions) : undefined;
}

/** `GET /api/v1` or `GET /apis/<group>/<version>`, or undefined when not served. */
export function apiResourceList(group: string, version: string): Record<string, unknown> | undefined {
  const defs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (defs.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const r of defs) {
    const entry: Record<string, unknown> = {
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
    };
    if (r.shortNames.length > 0) entry['shortNames'] = r.shortNames;
    // Pods are in the `all` category upstream (`kubectl get all`).
    if (r.group === '' && r.plural === 'pods') entry['categories'] = ['all'];
    resources.push(entry);
    if (r.statusSubresource) {
      resources.push({ name: `${r.plural}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
    }
  }
  resources.sort((a, b) => String(a['name']).localeCompare(String(b['name'])));
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
}
