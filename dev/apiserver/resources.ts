/**
 * The resources the embedded API server serves, as data: one entry per REST resource with what discovery
 * (`APIResourceList`), routing, field selectors and validation need. Facts from the Kubernetes 1.35 API
 * (core v1 and `resource.k8s.io/v1` OpenAPI, `pkg/registry/resource/*` field selectors).
 */

/** One REST resource (e.g. `resourceslices` in `resource.k8s.io/v1`). */
export interface ResourceDef {
  /** API group; `''` for the core (legacy) group. */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural used in URLs (`resourceslices`). */
  readonly plural: string;
  /** Lower-case singular (`resourceslice`). */
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  /** Whether `<plural>/status` exists (status changes only through it; main-resource writes keep status). */
  readonly statusSubresource: boolean;
  /** Whether `spec` may not change after create (ResourceClaim: "The spec is immutable"). */
  readonly immutableSpec: boolean;
  /** Field-selector paths accepted besides `metadata.name` and `metadata.namespace`. */
  readonly fieldSelectors: readonly string[];
  /** Validate `metadata.name` as a DNS label (≤ 63) instead of a DNS subdomain (≤ 253). */
  readonly nameIsLabel: boolean;
  /**
   * Whether the server keeps `metadata.generation` (1 on create, +1 when the spec changes): only where the
   * upstream strategy sets it (`pkg/registry/resource/{resourceslice,deviceclass}/strategy.go`,
   * `pkg/registry/core/pod/strategy.go`); ResourceClaims, templates, nodes and namespaces have none.
   */
  readonly generation: boolean;
}

/** `apiVersion` string of a resource: `v1` or `<group>/<version>`. */
export function apiVersionOf(def: Pick<ResourceDef, 'group' | 'version'>): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`;
}

const RESOURCE_GROUP = 'resource.k8s.io';

/** Every served resource. */
export const RESOURCES: readonly ResourceDef[] = [
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
    immutableSpec: false,
    fieldSelectors: ['status.phase'],
    nameIsLabel: true,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'nodes',
    singular: 'node',
    kind: 'Node',
    namespaced: false,
    shortNames: ['no'],
    statusSubresource: true,
    immutableSpec: false,
    fieldSelectors: ['spec.unschedulable'],
    nameIsLabel: false,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    statusSubresource: true,
    immutableSpec: false,
    fieldSelectors: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
    nameIsLabel: false,
    generation: true,
  },
  {
    group: RESOURCE_GROUP,
    version: 'v1',
    plural: 'deviceclasses',
    singular: 'deviceclass',
    kind: 'DeviceClass',
    namespaced: false,
    shortNames: [],
    statusSubresource: false,
    immutableSpec: false,
    fieldSelectors: [],
    nameIsLabel: false,
    generation: true,
  },
  {
    group: RESOURCE_GROUP,
    version: 'v1',
    plural: 'resourceclaims',
    singular: 'resourceclaim',
    kind: 'ResourceClaim',
    namespaced: true,
    shortNames: [],
    statusSubresource: true,
    immutableSpec: true,
    fieldSelectors: [],
    nameIsLabel: false,
    generation: false,
  },
  {
    group: RESOURCE_GROUP,
    version: 'v1',
    plural: 'resourceclaimtemplates',
    singular: 'resourceclaimtemplate',
    kind: 'ResourceClaimTemplate',
    namespaced: true,
    shortNames: [],
    statusSubresource: false,
    immutableSpec: true,
    fieldSelectors: [],
    nameIsLabel: false,
    generation: false,
  },
  {
    group: RESOURCE_GROUP,
    version: 'v1',
    plural: 'resourceslices',
    singular: 'resourceslice',
    kind: 'ResourceSlice',
    namespaced: false,
    shortNames: [],
    statusSubresource: false,
    immutableSpec: false,
    fieldSelectors: ['spec.nodeName', 'spec.driver', 'spec.pool.name'],
    nameIsLabel: false,
    generation: true,
  },
];

/** The resource for `(group, version, plural)` in a URL, or undefined. */
export function findByPlural(group: string, version: string, plural: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

/** The resource for an object's `apiVersion` and `kind`, or undefined. */
export function findByKind(apiVersion: string, kind: string): ResourceDef | undefined {
  return RESOURCES.find((r) => apiVersionOf(r) === apiVersion && r.kind === kind);
}

/** The API groups served besides core, with their versions (`resource.k8s.io` → [`v1`]). */
export function servedGroups(): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (r.group === '') continue;
    const versions = groups.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    groups.set(r.group, versions);
  }
  return groups;
}
