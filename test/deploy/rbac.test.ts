/**
 * RBAC of daemonset/: the ClusterRole grants exactly the table below (each row derived from an API call
 * docs/contracts.md names), nothing with a wildcard, to the DaemonSet's ServiceAccount only; and every Kubernetes
 * API call found in src/ (client-node API methods, checked against the real ResourceV1Api/CoreV1Api
 * prototypes) is granted, so the agent cannot hit a 403 in a cluster that the embedded dev server would
 * never show.
 */
import { describe, expect, it } from 'vitest';
import { callsInSrc } from '../helpers/api-calls.js';
import { findOne, installDocs } from '../helpers/manifests.js';

interface PolicyRule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }
interface ClusterRole { metadata: { name: string }; rules: PolicyRule[] }
interface ClusterRoleBinding { roleRef: { apiGroup: string; kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace?: string }> }

/** What the agent needs, from the API calls in docs/contracts.md. Key: `<group>/<resource>` ('' = core). */
const EXPECTED: Record<string, { verbs: string[]; why: string }> = {
  'resource.k8s.io/resourceslices': {
    verbs: ['list', 'create', 'update', 'delete'],
    why: '§4 publish the pool: list ours, create, update (generation bump), delete obsolete slices; §2 republish on every registration (no watch)',
  },
  'resource.k8s.io/resourceclaims': {
    verbs: ['get', 'list'],
    why: '§2 Prepare GETs each claim (status.allocation); §5 status.reservedFor attributes devices to pods; list for the rebuild after a lost checkpoint',
  },
  'resource.k8s.io/resourceclaims/status': {
    verbs: ['patch'],
    why: "KEP-4817 the claim's status.devices: gpulet's entries applied after prepare, removed after unprepare (server-side apply is a PATCH)",
  },
  'resource.k8s.io/resourceclaims/driver': {
    verbs: ['associated-node:patch'],
    why: "the API server's per-driver check of a status.devices change (1.36+), for claims allocated on the agent's own node only",
  },
  '/nodes': { verbs: ['get'], why: '§4 owner reference to the Node needs its UID' },
};

const install = installDocs();
const role = findOne<ClusterRole>(install, 'ClusterRole');
const binding = findOne<ClusterRoleBinding>(install, 'ClusterRoleBinding');
const sa = findOne<{ metadata: { name: string; namespace: string } }>(install, 'ServiceAccount');
const ds = findOne<{ metadata: { namespace: string }; spec: { template: { spec: { serviceAccountName: string } } } }>(install, 'DaemonSet');

/** The role's grants as `<group>/<resource>` → sorted verbs. */
function grants(rules: readonly PolicyRule[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const r of rules) {
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) {
      const set = out.get(`${g}/${res}`) ?? new Set<string>();
      for (const v of r.verbs) set.add(v);
      out.set(`${g}/${res}`, set);
    }
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

function allows(key: string, verb: string): boolean {
  return grants(role.rules).get(key)?.includes(verb) ?? false;
}

describe('ClusterRole gpulet', () => {
  it('grants exactly the table derived from docs/contracts.md', () => {
    const expected = new Map(Object.entries(EXPECTED).map(([k, v]) => [k, [...v.verbs].sort()]));
    expect(Object.fromEntries(grants(role.rules))).toEqual(Object.fromEntries(expected));
  });

  it('has no wildcard, no deletecollection, no non-resource URLs, and resourceNames only to narrow the per-driver rule to gpulet', () => {
    for (const r of role.rules) {
      expect([...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs]).not.toContain('*');
      expect(r.verbs).not.toContain('deletecollection');
      expect(r.verbs).not.toContain('escalate');
      expect(r.verbs).not.toContain('bind');
      expect(r.verbs.filter((v) => v.startsWith('arbitrary-node:'))).toEqual([]);
      expect(r.nonResourceURLs).toBeUndefined();
      if (r.resources?.includes('resourceclaims/driver')) expect(r.resourceNames).toEqual(['gpu.gpulet.dev']);
      else expect(r.resourceNames).toBeUndefined();
    }
  });

  it('grants no verb that src/ never uses (least privilege: an unused grant is only an attacker\'s)', () => {
    const used = new Set(callsInSrc().keys());
    const unused = [...grants(role.rules)].flatMap(([key, verbs]) => verbs.filter((v) => !used.has(`${v} ${key}`)).map((v) => `${v} ${key}`));
    expect(unused).toEqual([]);
  });

  it('grants nothing that reads secrets or pods, or writes claims beyond patching their status', () => {
    const keys = [...grants(role.rules).keys()];
    expect(keys.filter((k) => /secrets|configmaps|pods|serviceaccounts/.test(k))).toEqual([]);
    expect(keys.filter((k) => k.startsWith('resource.k8s.io/resourceclaims/')).sort()).toEqual(['resource.k8s.io/resourceclaims/driver', 'resource.k8s.io/resourceclaims/status']);
    for (const verb of ['create', 'update', 'patch', 'delete']) expect(allows('resource.k8s.io/resourceclaims', verb)).toBe(false);
    expect(grants(role.rules).get('resource.k8s.io/resourceclaims/status')).toEqual(['patch']);
  });
});

describe('ClusterRoleBinding gpulet', () => {
  it("binds the role to the DaemonSet's ServiceAccount and no one else", () => {
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    expect(ds.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(ds.metadata.namespace).toBe(sa.metadata.namespace);
  });
});

describe('the agent source (src/)', () => {
  const calls = callsInSrc();

  it('makes the API calls the publisher and claim preparation need (the scan finds them)', () => {
    expect([...calls.keys()]).toEqual(expect.arrayContaining([
      'create resource.k8s.io/resourceslices',
      'list resource.k8s.io/resourceslices',
      'get resource.k8s.io/resourceclaims',
      'patch resource.k8s.io/resourceclaims/status',
    ]));
  });

  it.each([...callsInSrc()].map(([call, files]) => [call, files.join(', ')] as const))('%s (in %s) is granted by the ClusterRole', (call) => {
    const [verb, key] = call.split(' ') as [string, string];
    expect(allows(key, verb)).toBe(true);
  });
});
