/**
 * The extended resource of DeviceClass gpu.gpulet.dev (KEP-5004): `gpulet.dev/gpu` in daemonset/, and
 * `nvidia.com/gpu` with the README's kustomize overlay (built from the README's own block by
 * `kubectl kustomize`, when kubectl is installed), which changes nothing else. The real scheduler using both
 * names is test/upstream/extended-resource.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { exampleDocs, findOne, installDocs } from '../helpers/manifests.js';
import { buildReadmeOverlay, KUBECTL } from '../helpers/readme-overlay.js';

const install = installDocs();

describe('DeviceClass gpu.gpulet.dev as an extended resource', () => {
  it('maps gpulet.dev/gpu (full GPUs only), and the example pod asks for it without a claim', () => {
    expect(findOne<{ spec: { extendedResourceName?: string } }>(install, 'DeviceClass', 'gpu.gpulet.dev').spec.extendedResourceName).toBe('gpulet.dev/gpu');
    expect(findOne<{ spec: { extendedResourceName?: string } }>(install, 'DeviceClass', 'mig.gpulet.dev').spec.extendedResourceName).toBeUndefined();
    const pod = findOne<{ spec: { resourceClaims?: unknown; containers: Array<{ resources?: { limits?: Record<string, unknown> } }> } }>(exampleDocs(), 'Pod', 'gpu-extended-resource');
    expect(pod.spec.resourceClaims).toBeUndefined();
    expect(pod.spec.containers[0]?.resources?.limits).toEqual({ 'gpulet.dev/gpu': 1 });
  });

  it.skipIf(KUBECTL === undefined)("the README's overlay serves nvidia.com/gpu instead, and changes nothing else", () => {
    const built = buildReadmeOverlay(KUBECTL!);
    const cls = built.find((o) => o.kind === 'DeviceClass' && o.metadata.name === 'gpu.gpulet.dev') as { spec: { extendedResourceName?: string; selectors: unknown } } | undefined;
    expect(cls?.spec.extendedResourceName).toBe('nvidia.com/gpu');
    const base = findOne<{ spec: { selectors: unknown } }>(install, 'DeviceClass', 'gpu.gpulet.dev');
    expect(cls?.spec.selectors).toEqual(base.spec.selectors);
    const key = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;
    expect(built.map(key).sort()).toEqual(install.map((d) => key(d.obj)).sort());
  });
});
