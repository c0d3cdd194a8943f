/**
 * The CEL in daemonset/, evaluated with a CEL engine (manifests-cel.ts) against what gpulet really publishes:
 * - DeviceClass selectors split every device gpulet publishes into exactly one class (full GPU or MIG);
 * - the example claims select the devices their comments promise, on slices built by
 *   buildResourceSlices() from the mock machines and on the worked example in test/reference/examples.md;
 * - every attribute/capacity an example names is one gpulet publishes and one docs/contracts.md §4 lists;
 * - the admission policy admits the agent's writes to its own node's slices and denies everything else.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { V1Device } from '@kubernetes/client-node';
import { buildResourceSlices, type SliceSpec } from '../../src/dra/slices/build.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { admit, celDevice, deviceSelectorEnv, selects, type AdmissionRequest, type CelDevice, type PolicySpec, type WireDevice } from '../helpers/cel.js';
import { REFERENCE_DIR, exampleDocs, findOne, installDocs } from '../helpers/manifests.js';
import { driverName, nodeName, poolName } from '../helpers/names.js';

const DRIVER = driverName('gpu.gpulet.dev');
const install = installDocs();
const examples = exampleDocs();
const env = deviceSelectorEnv();

interface DeviceClassObj { metadata: { name: string }; spec: { selectors: Array<{ cel: { expression: string } }> } }
interface ExactRequest { deviceClassName: string; count?: number; selectors?: Array<{ cel: { expression: string } }> }
interface TemplateObj { metadata: { name: string }; spec: { spec: { devices: { requests: Array<{ name: string; exactly: ExactRequest }> } } } }

const classes = install.filter((d) => d.obj.kind === 'DeviceClass').map((d) => d.obj as unknown as DeviceClassObj);
const classByName = new Map(classes.map((c) => [c.metadata.name, c]));
const templates = examples.filter((d) => d.obj.kind === 'ResourceClaimTemplate').map((d) => d.obj as unknown as TemplateObj);

function slicesOf(machine: string, node = 'node-a'): SliceSpec[] {
  const inventory = buildMockInventory(machineSpecByName(machine), node);
  return buildResourceSlices({ driverName: DRIVER, nodeName: nodeName(node), poolName: poolName(node), inventory, generation: 1 });
}

function devicesOf(machine: string): Array<{ name: string; cel: CelDevice }> {
  return slicesOf(machine).flatMap((s) => s.spec.devices.map((d) => ({ name: d.name, cel: celDevice(s.spec.driver, d) })));
}

/** The ResourceSlice of test/reference/examples.md (the first ```yaml block). */
function referenceDevices(): Array<{ name: string; cel: CelDevice }> {
  const md = readFileSync(path.join(REFERENCE_DIR, 'examples.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(md)?.[1];
  if (block === undefined) throw new Error('test/reference/examples.md has no yaml block');
  const slice = parseYaml(block) as { spec: { driver: string; devices: WireDevice[] } };
  return slice.spec.devices.map((d) => ({ name: d.name, cel: celDevice(slice.spec.driver, d) }));
}

/** Does request `req` (class selectors, then the request's) select the device? Short-circuits like the allocator. */
function requestSelects(req: ExactRequest, device: CelDevice): boolean {
  const cls = classByName.get(req.deviceClassName);
  if (!cls) throw new Error(`request names unknown DeviceClass ${req.deviceClassName}`);
  const exprs = [...cls.spec.selectors, ...(req.selectors ?? [])].map((s) => s.cel.expression);
  return exprs.every((e) => selects(env, e, device));
}

function classesSelecting(device: CelDevice): string[] {
  return classes.filter((c) => c.spec.selectors.every((s) => selects(env, s.cel.expression, device))).map((c) => c.metadata.name);
}

describe('DeviceClasses', () => {
  it.each(['dgx-h100', 'a100-40gb', 'h100-80gb', 'h200-141gb'])('put every device gpulet publishes on %s in exactly one class', (machine) => {
    for (const d of devicesOf(machine)) {
      const expected = d.name.includes('-mig-') ? ['mig.gpulet.dev'] : ['gpu.gpulet.dev'];
      expect(classesSelecting(d.cel), d.name).toEqual(expected);
    }
  });

  it('split dgx-h100 into its 6 full GPUs and 10 MIG devices', () => {
    const counts = new Map<string, number>();
    for (const d of devicesOf('dgx-h100')) for (const c of classesSelecting(d.cel)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ 'gpu.gpulet.dev': 6, 'mig.gpulet.dev': 10 });
  });

  it('classify the worked example of test/reference/examples.md', () => {
    const result = Object.fromEntries(referenceDevices().map((d) => [d.name, classesSelecting(d.cel)]));
    expect(result).toEqual({ 'gpu-0': ['gpu.gpulet.dev'], 'gpu-1-mig-1g10gb-19-0': ['mig.gpulet.dev'] });
  });

  it("do not select another driver's devices, even with the same attributes", () => {
    const [gpu] = slicesOf('h100-80gb')[0]!.spec.devices;
    const foreign = celDevice('gpu.nvidia.com', gpu!);
    expect(foreign.attributes['gpu.nvidia.com']?.['type']).toBe('gpu');
    expect(classesSelecting(foreign)).toEqual([]);
  });
});

describe('example claims', () => {
  const expected: Record<string, Record<string, number>> = {
    // template → machine → number of devices it can be satisfied with
    'single-gpu': { 'dgx-h100': 6, 'a100-40gb': 1, 'h100-80gb': 1, 'h200-141gb': 1 },
    'h100-40gi': { 'dgx-h100': 6, 'a100-40gb': 0, 'h100-80gb': 1, 'h200-141gb': 0 },
    'mig-1g10gb': { 'dgx-h100': 8, 'a100-40gb': 0, 'h100-80gb': 0, 'h200-141gb': 0 },
  };

  it('are the templates this test knows', () => {
    expect(templates.map((t) => t.metadata.name).sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(templates.map((t) => [t.metadata.name, t] as const))('%s selects the devices its comment promises', (name, t) => {
    const req = t.spec.spec.devices.requests[0]!.exactly;
    const got: Record<string, number> = {};
    for (const machine of Object.keys(expected[name]!)) got[machine] = devicesOf(machine).filter((d) => requestSelects(req, d.cel)).length;
    expect(got).toEqual(expected[name]);
  });

  it('select the devices of the reference worked example', () => {
    const ref = referenceDevices();
    const pick = (name: string) => ref.filter((d) => requestSelects(templates.find((t) => t.metadata.name === name)!.spec.spec.devices.requests[0]!.exactly, d.cel)).map((d) => d.name);
    expect(pick('single-gpu')).toEqual(['gpu-0']);
    expect(pick('h100-40gi')).toEqual(['gpu-0']);
    expect(pick('mig-1g10gb')).toEqual(['gpu-1-mig-1g10gb-19-0']);
  });

  it('h100-40gi compares memory as a quantity and compute capability as a version', () => {
    const sel = templates.find((t) => t.metadata.name === 'h100-40gi')!.spec.spec.devices.requests[0]!.exactly.selectors!;
    const [gpu] = slicesOf('h100-80gb')[0]!.spec.devices;
    const small: V1Device = { ...gpu!, capacity: { memory: { value: '39Gi' } } };
    const old: V1Device = { ...gpu!, attributes: { ...gpu!.attributes, cudaComputeCapability: { version: '8.9.0' } } };
    const newer: V1Device = { ...gpu!, attributes: { ...gpu!.attributes, cudaComputeCapability: { version: '10.0.0' } } };
    const all = (d: V1Device) => sel.every((s) => selects(env, s.cel.expression, celDevice(DRIVER, d)));
    expect([all(gpu!), all(small), all(old), all(newer)]).toEqual([true, false, false, true]);
  });
});

describe('attribute and capacity names in the examples', () => {
  // docs/contracts.md §4: NVIDIA's DRA driver's names, which gpulet reuses.
  const CONTRACT_ATTRIBUTES = ['type', 'uuid', 'productName', 'brand', 'architecture', 'cudaComputeCapability', 'driverVersion', 'cudaDriverVersion', 'parentUUID', 'profile'];
  const CONTRACT_CAPACITIES = ['memory', 'multiprocessors', 'copyEngines', 'decoders', 'encoders', 'jpegEngines', 'ofaEngines'];

  const expressions = [
    ...classes.flatMap((c) => c.spec.selectors.map((s) => s.cel.expression)),
    ...templates.flatMap((t) => t.spec.spec.devices.requests.flatMap((r) => (r.exactly.selectors ?? []).map((s) => s.cel.expression))),
  ];
  const used = expressions.flatMap((e) => [...e.matchAll(/device\.(attributes|capacity)\['([^']+)'\]\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({ kind: m[1]!, domain: m[2]!, name: m[3]! })));

  it('are found in the expressions (the scan is not empty)', () => {
    expect(used.map((u) => u.name)).toEqual(expect.arrayContaining(['type', 'productName', 'memory', 'cudaComputeCapability', 'profile', 'decoders']));
    expect(used.every((u) => u.domain === DRIVER)).toBe(true);
  });

  it('are published by gpulet (dgx-h100 has both full GPUs and MIG devices) and listed in docs/contracts.md §4', () => {
    const devices = devicesOf('dgx-h100').map((d) => d.cel);
    for (const u of used) {
      const where = u.kind === 'attributes' ? 'attributes' : 'capacity';
      expect(devices.some((d) => d[where][u.domain]?.[u.name] !== undefined), `${u.kind} ${u.name} published`).toBe(true);
      expect(u.kind === 'attributes' ? CONTRACT_ATTRIBUTES : CONTRACT_CAPACITIES, `${u.kind} ${u.name} in docs/contracts.md §4`).toContain(u.name);
    }
  });

  it('a selector on an attribute gpulet does not publish is an error, not a silent false', () => {
    const [d] = devicesOf('h100-80gb');
    expect(() => selects(env, "device.attributes['gpu.gpulet.dev'].productname == 'x'", d!.cel)).toThrow();
  });
});

describe('ValidatingAdmissionPolicy gpulet-resourceslices', () => {
  const policy = findOne<{ spec: PolicySpec & { matchConstraints: { resourceRules: Array<{ apiGroups: string[]; resources: string[]; operations: string[] }> } } }>(install, 'ValidatingAdmissionPolicy', 'gpulet-resourceslices');
  const binding = findOne<{ spec: { policyName: string; validationActions: string[] } }>(install, 'ValidatingAdmissionPolicyBinding', 'gpulet-resourceslices');
  const sa = findOne<{ metadata: { name: string; namespace: string } }>(install, 'ServiceAccount');
  const agent = `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`;
  const onNode = (node: string | undefined, username = agent): AdmissionRequest => ({
    operation: 'CREATE',
    userInfo: { username, extra: node === undefined ? {} : { 'authentication.kubernetes.io/node-name': [node], 'authentication.kubernetes.io/pod-name': ['gpulet-x'] } },
  });
  const sliceOn = (node: string, driver: string = DRIVER): SliceSpec => {
    const s = structuredClone(slicesOf('h100-80gb', node)[0]!);
    s.spec.driver = driver;
    return s;
  };
  const run = (req: AdmissionRequest, object: unknown, oldObject: unknown = null) => admit(policy.spec, req, object, oldObject);

  it('is bound with Deny to the agent, and covers create/update/delete of resourceslices', () => {
    expect(binding.spec.policyName).toBe(findOne<{ metadata: { name: string } }>(install, 'ValidatingAdmissionPolicy', 'gpulet-resourceslices').metadata.name);
    expect(binding.spec.validationActions).toContain('Deny');
    const rule = policy.spec.matchConstraints.resourceRules[0]!;
    expect(rule.apiGroups).toEqual(['resource.k8s.io']);
    expect(rule.resources).toEqual(['resourceslices']);
    expect([...rule.operations].sort()).toEqual(['CREATE', 'DELETE', 'UPDATE']);
  });

  it("admits the agent's create, update and delete of its own node's slices", () => {
    expect(run(onNode('node-a'), sliceOn('node-a'))).toEqual({ applies: true, denied: [] });
    expect(run({ ...onNode('node-a'), operation: 'UPDATE' }, sliceOn('node-a'), sliceOn('node-a'))).toEqual({ applies: true, denied: [] });
    expect(run({ ...onNode('node-a'), operation: 'DELETE' }, null, sliceOn('node-a'))).toEqual({ applies: true, denied: [] });
  });

  it("denies writing another node's slices, naming both nodes", () => {
    const r = run(onNode('node-a'), sliceOn('node-b'));
    expect(r.denied).toHaveLength(1);
    expect(r.denied[0]).toMatch(/node 'node-a'.*not 'node-b'/);
    expect(run({ ...onNode('node-a'), operation: 'DELETE' }, null, sliceOn('node-b')).denied).toHaveLength(1);
  });

  it("denies moving another node's slice onto its own node (UPDATE checks the stored object too)", () => {
    const r = run({ ...onNode('node-a'), operation: 'UPDATE' }, sliceOn('node-a'), sliceOn('node-b'));
    expect(r.denied).toHaveLength(1);
    expect(r.denied[0]).toMatch(/stored: 'node-b'/);
  });

  it('denies slices of another driver, and cluster-wide slices (no nodeName)', () => {
    expect(run(onNode('node-a'), sliceOn('node-a', 'gpu.nvidia.com')).denied).toEqual([
      "gpulet may only write ResourceSlices of driver gpu.gpulet.dev, not 'gpu.nvidia.com'",
    ]);
    const clusterWide = sliceOn('node-a') as unknown as { spec: Record<string, unknown> };
    delete clusterWide.spec['nodeName'];
    clusterWide.spec['allNodes'] = true;
    expect(run(onNode('node-a'), clusterWide).denied).toHaveLength(1);
    const otherDriverUpdate = run({ ...onNode('node-a'), operation: 'UPDATE' }, sliceOn('node-a'), sliceOn('node-a', 'gpu.nvidia.com'));
    expect(otherDriverUpdate.denied).toHaveLength(1);
  });

  it('denies a token that names no node (not pod-bound), with a message saying why', () => {
    const r = run(onNode(undefined), sliceOn('node-a'));
    expect(r.denied[0]).toMatch(/no node name/);
  });

  it('does not apply to other users (kubelet, admins), so it cannot break them', () => {
    expect(run(onNode('node-a', 'system:node:node-a'), sliceOn('node-b')).applies).toBe(false);
    expect(run(onNode(undefined, 'kubernetes-admin'), sliceOn('node-b')).applies).toBe(false);
    expect(run(onNode('node-a', 'system:serviceaccount:other:gpulet'), sliceOn('node-b')).applies).toBe(false);
  });
});

describe('ValidatingAdmissionPolicy gpulet-resourceclaim-status (in-process CEL; the real API server: test/upstream/claim-status.test.ts)', () => {
  const policy = findOne<{ spec: PolicySpec & { matchConstraints: { resourceRules: Array<{ resources: string[]; operations: string[] }> } } }>(install, 'ValidatingAdmissionPolicy', 'gpulet-resourceclaim-status');
  const binding = findOne<{ spec: { policyName: string; validationActions: string[] } }>(install, 'ValidatingAdmissionPolicyBinding', 'gpulet-resourceclaim-status');
  const sa = findOne<{ metadata: { name: string; namespace: string } }>(install, 'ServiceAccount');
  const agent = `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`;
  const update = (node: string | undefined, username = agent): AdmissionRequest => ({
    operation: 'UPDATE',
    userInfo: { username, extra: node === undefined ? {} : { 'authentication.kubernetes.io/node-name': [node] } },
  });
  const entry = (driver: string, device: string, data: Record<string, unknown> = { uuid: 'GPU-1' }) => ({ driver, pool: 'node-a', device, data });
  /** A claim allocated on `node` (the scheduler's node selector), with `devices` as its status.devices. */
  const claim = (node: string | undefined, devices: unknown[] | undefined): { status: Record<string, unknown> } => ({
    status: {
      ...(node === undefined
        ? {}
        : {
            allocation: {
              devices: { results: [{ request: 'gpu', driver: DRIVER, pool: node, device: 'gpu-0' }] },
              nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] },
            },
            reservedFor: [{ resource: 'pods', name: 'p', uid: 'u' }],
          }),
      ...(devices === undefined ? {} : { devices }),
    },
  });
  const run = (req: AdmissionRequest, object: unknown, oldObject: unknown) => admit(policy.spec, req, object, oldObject);

  it('is bound with Deny to updates of resourceclaims/status (what a server-side apply of the status is)', () => {
    expect(binding.spec.policyName).toBe('gpulet-resourceclaim-status');
    expect(binding.spec.validationActions).toContain('Deny');
    expect(policy.spec.matchConstraints.resourceRules[0]).toMatchObject({ resources: ['resourceclaims/status'], operations: ['UPDATE'] });
  });

  it("admits writing and removing its own entries on its node's claim, other drivers' entries left as they were", () => {
    const other = entry('nic.example.com', 'nic-0', { mac: 'x' });
    expect(run(update('node-a'), claim('node-a', [other, entry(DRIVER, 'gpu-0')]), claim('node-a', [other])).denied).toEqual([]);
    expect(run(update('node-a'), claim('node-a', [other]), claim('node-a', [other, entry(DRIVER, 'gpu-0')])).denied).toEqual([]);
    // Nothing of ours changes (a removal on a claim the API server already deallocated): admitted on any claim.
    expect(run(update('node-a'), claim(undefined, undefined), claim(undefined, undefined)).denied).toEqual([]);
  });

  it("denies its entries on another node's claim, or on a claim whose allocation names no single node", () => {
    const r = run(update('node-a'), claim('node-b', [entry(DRIVER, 'gpu-0')]), claim('node-b', undefined));
    expect(r.denied).toEqual(["gpulet running on node 'node-a' may only write status.devices of claims allocated on that node, not on 'node-b'"]);
    const twoTerms = claim('node-a', [entry(DRIVER, 'gpu-0')]);
    const allocation = structuredClone(twoTerms.status['allocation']) as { nodeSelector: { nodeSelectorTerms: unknown[] } };
    allocation.nodeSelector.nodeSelectorTerms.push({ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] });
    twoTerms.status['allocation'] = allocation;
    const old = claim('node-a', undefined);
    old.status['allocation'] = allocation;
    expect(run(update('node-a'), twoTerms, old).denied).toHaveLength(1);
  });

  it("denies changing another driver's entry, the allocation or the reservations, and a token without a node", () => {
    const other = entry('nic.example.com', 'nic-0', { mac: 'x' });
    expect(run(update('node-a'), claim('node-a', [entry('nic.example.com', 'nic-0', { mac: 'y' })]), claim('node-a', [other])).denied).toEqual([
      'gpulet may only write status.devices entries of driver gpu.gpulet.dev',
    ]);
    const unreserved = claim('node-a', undefined);
    unreserved.status['reservedFor'] = [];
    expect(run(update('node-a'), unreserved, claim('node-a', undefined)).denied).toEqual(["gpulet may not change a ResourceClaim's status.allocation or status.reservedFor"]);
    expect(run(update(undefined), claim('node-a', undefined), claim('node-a', undefined)).denied[0]).toMatch(/no node name/);
  });

  it('does not apply to other users (the scheduler, controllers, admins)', () => {
    expect(run(update(undefined, 'system:kube-scheduler'), claim('node-b', [entry('x.example.com', 'd')]), claim(undefined, undefined)).applies).toBe(false);
  });
});
