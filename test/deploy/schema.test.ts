/**
 * Every object in daemonset/ and daemonset/examples/ is valid against Kubernetes' own schemas (see
 * manifests-k8s.ts), and the validators are not vacuous: they reject a misspelt field, a wrong type and a
 * missing required field.
 */
import { describe, expect, it } from 'vitest';
import { exampleDocs, installDocs, validateObject, type K8sObject } from '../helpers/manifests.js';

const install = installDocs();
const examples = exampleDocs();

describe('daemonset/ manifests', () => {
  it('contain the objects an install needs', () => {
    const kinds = install.map((d) => `${d.obj.apiVersion} ${d.obj.kind}/${d.obj.metadata.name}`).sort();
    expect(kinds).toEqual(
      [
        'v1 Namespace/gpulet-system',
        'v1 ServiceAccount/gpulet',
        'rbac.authorization.k8s.io/v1 ClusterRole/gpulet',
        'rbac.authorization.k8s.io/v1 ClusterRoleBinding/gpulet',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy/gpulet-resourceslices',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding/gpulet-resourceslices',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy/gpulet-resourceclaim-status',
        'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding/gpulet-resourceclaim-status',
        'resource.k8s.io/v1 DeviceClass/gpu.gpulet.dev',
        'resource.k8s.io/v1 DeviceClass/mig.gpulet.dev',
        'apps/v1 DaemonSet/gpulet',
        'v1 Service/gpulet-metrics',
        'networking.k8s.io/v1 NetworkPolicy/gpulet-metrics',
      ].sort(),
    );
  });

  it.each(install.map((d) => [`${d.file}: ${d.obj.kind}/${d.obj.metadata.name}`, d.obj] as const))(
    '%s validates against the Kubernetes schema',
    (_name, obj) => {
      expect(validateObject(obj)).toEqual([]);
    },
  );
});

describe('daemonset/examples/ manifests', () => {
  it.each(examples.map((d) => [`${d.file}: ${d.obj.kind}/${d.obj.metadata.name}`, d.obj] as const))(
    '%s validates against the Kubernetes schema',
    (_name, obj) => {
      expect(validateObject(obj)).toEqual([]);
    },
  );
});

/** A copy of `obj` with the field at `at` set to `value` (or removed when `value` is undefined). */
function edited(obj: K8sObject, at: ReadonlyArray<string | number>, value?: unknown): K8sObject {
  const copy = structuredClone(obj);
  let node = copy as unknown as Record<string | number, unknown>;
  for (const key of at.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = at[at.length - 1]!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

describe('the validators reject what the API server rejects', () => {
  const ds = install.find((d) => d.obj.kind === 'DaemonSet')!.obj;
  const dc = install.find((d) => d.obj.kind === 'DeviceClass')!.obj;
  const vap = install.find((d) => d.obj.kind === 'ValidatingAdmissionPolicy')!.obj;
  const rct = examples.find((d) => d.obj.kind === 'ResourceClaimTemplate')!.obj;
  const container = ['spec', 'template', 'spec', 'containers', 0];

  it('a misspelt field in a DaemonSet container (kubernetes-models alone would accept it)', () => {
    const bad = edited(ds, [...container, 'imagePullPolcy'], 'Always');
    expect(validateObject(bad)).toEqual(['unknown field spec.template.spec.containers[0].imagePullPolcy']);
  });

  it('a string where the DaemonSet needs an integer, and a missing required field', () => {
    const bad = edited(edited(ds, [...container, 'ports', 0, 'containerPort'], '9400'), ['spec', 'selector']);
    const problems = validateObject(bad).join('\n');
    expect(problems).toMatch(/containerPort must be integer/);
    expect(problems).toMatch(/required property 'selector'|required property selector/);
  });

  it('an unknown field in a ValidatingAdmissionPolicy', () => {
    const bad = edited(vap, ['spec', 'validations', 0, 'expresion'], 'true');
    expect(validateObject(bad)).toContain('unknown field spec.validations[0].expresion');
  });

  it('a misspelt DeviceClass selector field, and a v1beta1-style claim request (no `exactly`) in v1', () => {
    const badClass = edited(dc, ['spec', 'selectors', 0, 'cel', 'expr'], 'true');
    expect(validateObject(badClass).join('\n')).toMatch(/additional properties|additionalProperty/i);

    const badClaim = edited(rct, ['spec', 'spec', 'devices', 'requests', 0], { name: 'gpu', deviceClassName: 'gpu.gpulet.dev', count: 1 });
    expect(validateObject(badClaim).join('\n')).toMatch(/deviceClassName/);
  });

  it('a wrong type in a resource.k8s.io/v1 object', () => {
    const bad = edited(rct, ['spec', 'spec', 'devices', 'requests', 0, 'exactly', 'count'], 'one');
    expect(validateObject(bad).join('\n')).toMatch(/count must be integer/);
  });
});
