/**
 * RBAC of daemonset/: the ClusterRole grants exactly the table below (each row derived from an API call
 * docs/contracts.md names), nothing with a wildcard, to the DaemonSet's ServiceAccount only; and every Kubernetes
 * API call found in src/ (client-node API methods, checked against the real ResourceV1Api/CoreV1Api
 * prototypes) is granted, so the agent cannot hit a 403 in a cluster that the embedded dev server would
 * never show.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as k8s from '@kubernetes/client-node';
import { REPO_ROOT, findOne, installDocs } from '../helpers/manifests.js';

interface PolicyRule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }
interface ClusterRole { metadata: { name: string }; rules: PolicyRule[] }
interface ClusterRoleBinding { roleRef: { apiGroup: string; kind: string; name: string }; subjects: Array<{ kind: string; name: string; namespace?: string }> }

/** What the agent needs, from the API calls in docs/contracts.md. Key: `<group>/<resource>` ('' = core). */
const EXPECTED: Record<string, { verbs: string[]; why: string }> = {
  'resource.k8s.io/resourceslices': {
    verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    why: '§4 publish the pool: list ours, create, update (generation bump), delete obsolete slices; §2 republish when the kubelet deleted them',
  },
  'resource.k8s.io/resourceclaims': {
    verbs: ['get', 'list', 'watch'],
    why: '§2 Prepare GETs each claim (status.allocation); §5 status.reservedFor attributes devices to pods; clean-up of stale checkpoint entries',
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

  it('has no wildcard, no deletecollection, no resourceNames escape hatch and no non-resource URLs', () => {
    for (const r of role.rules) {
      expect([...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs]).not.toContain('*');
      expect(r.verbs).not.toContain('deletecollection');
      expect(r.verbs).not.toContain('escalate');
      expect(r.verbs).not.toContain('bind');
      expect(r.nonResourceURLs).toBeUndefined();
      expect(r.resourceNames).toBeUndefined();
    }
  });

  it('grants nothing that reads secrets or pods, or writes claims', () => {
    const keys = [...grants(role.rules).keys()];
    expect(keys.filter((k) => /secrets|configmaps|pods|serviceaccounts/.test(k))).toEqual([]);
    expect(keys.some((k) => k.startsWith('resource.k8s.io/resourceclaims/'))).toBe(false);
    expect(allows('resource.k8s.io/resourceclaims', 'update')).toBe(false);
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

// ---------- what src/ actually calls ----------

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

/** Plural resource of a client-node method, e.g. `readNamespacedResourceClaim` → `resourceclaims`. */
function resourceOf(method: string): string | undefined {
  const m = /^(?:read|list|create|replace|patch|deleteCollection|delete)(?:Namespaced)?([A-Z][A-Za-z]*?)(ForAllNamespaces)?$/.exec(method);
  if (!m || /Status$/.test(m[1]!)) return undefined;
  const kind = m[1]!.toLowerCase();
  return kind.endsWith('s') ? `${kind}es` : kind.endsWith('y') ? `${kind.slice(0, -1)}ies` : `${kind}s`;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** `<verb> <group>/<resource>` for every client-node API method called in src/, and watch paths. */
function callsInSrc(): Map<string, string[]> {
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
        if (verb && resource) add(`${verb} ${group}/${resource}`, file);
      }
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

describe('the agent source (src/)', () => {
  const calls = callsInSrc();

  it('makes the API calls the publisher and claim preparation need (the scan finds them)', () => {
    expect([...calls.keys()]).toEqual(expect.arrayContaining([
      'create resource.k8s.io/resourceslices',
      'list resource.k8s.io/resourceslices',
      'get resource.k8s.io/resourceclaims',
    ]));
  });

  it.each([...callsInSrc()].map(([call, files]) => [call, files.join(', ')] as const))('%s (in %s) is granted by the ClusterRole', (call) => {
    const [verb, key] = call.split(' ') as [string, string];
    expect(allows(key, verb)).toBe(true);
  });
});
