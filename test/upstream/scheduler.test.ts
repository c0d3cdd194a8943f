/**
 * The real kube-scheduler allocating from gpulet's ResourceSlices (issue 10, item 2): on the upstream cluster of
 * test/upstream/, gpulet (the whole agent, mock dgx-h100: GPUs 0–5 whole, GPUs 6 and 7 in MIG mode) is node-a's
 * DRA driver; pods with claims for every DeviceClass of daemonset/06-deviceclasses.yaml and every
 * ResourceClaimTemplate and Pod of daemonset/examples/ are scheduled by the scheduler's DynamicResources plugin
 * (the structured allocator of k8s.io/dynamic-resource-allocation) and prepared through gpulet by the node agent.
 *
 * What is expected is derived, not copied from the scheduler's answer: the devices a request may get are
 * computed from the published slices with a CEL engine (test/helpers/cel.ts: the DeviceClass's selectors,
 * then the request's, as the allocator evaluates them), and the allocated device is found in the mock
 * inventory by its `uuid` attribute (a whole GPU for the gpu class, a MIG device for the mig class). A
 * selector that matches no published device (a memory above the largest, a product name the node does not
 * have) leaves the pod unschedulable with the scheduler's own reason. Device taints (KEP-5055): an XID on a
 * GPU, injected into gpulet's mock backend, makes gpulet publish a device taint (its key and effect are read
 * from the published slice, never assumed); the scheduler then never allocates a tainted device to a claim
 * without a toleration and does allocate one to a claim that tolerates the key (operator Exists).
 *
 * Skipped with a notice only where Go is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, ResourceV1Api, type V1Device, type V1DeviceTaint, type V1Pod } from '@kubernetes/client-node';
import { SlicePublisher } from '../../src/dra/slices/publisher.js';
import { taintsByUuid } from '../../src/dra/slices/taints.js';
import { DEFAULT_DRIVER_NAME, poolNameOf, type DnsSubdomain } from '../../src/model/names.js';
import { silentLogger } from '../../src/log.js';
import type { MockBackend } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import type { Agent } from '../../src/main.js';
import { GPU_MODELS } from '../../src/gpu/mock/index.js';
import { celDevice, deviceSelectorEnv, selects } from '../helpers/cel.js';
import { exampleDocs, installDocs, type K8sObject } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import {
  claimTemplate, createAll, deletePods, DRIVER, EXTENDED_RESOURCE_CLAIM, podWithTemplate, publishedDevices, startGpulet, waitRunning, waitUnschedulable,
  type RequestSpec, type RunningPod,
} from '../helpers/upstream-pods.js';
import { manyGpus } from '../helpers/slices.js';
import { waitFor, within } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/scheduler.test.ts: ${unavailable}`);

const NODE = 'node-a';
/** Bound of each test (several pods, each waited for up to POD_TIMEOUT_MS): ends a hung test only. */
const TEST_TIMEOUT_MS = 300_000;
/** A second node whose pool a SlicePublisher of gpulet's fills directly (no agent: only the scheduler is asked). */
const NODE_B = 'node-b';

/** The DeviceClasses of daemonset/06-deviceclasses.yaml: name → CEL selectors. */
const CLASSES = new Map(
  installDocs()
    .filter((d) => d.obj.kind === 'DeviceClass')
    .map((d) => [d.obj.metadata.name, ((d.obj['spec'] as { selectors?: Array<{ cel: { expression: string } }> }).selectors ?? []).map((s) => s.cel.expression)]),
);

/** The one request of an example ResourceClaimTemplate. */
interface ExampleRequest {
  name: string;
  exactly: { deviceClassName: string; count?: number; selectors?: Array<{ cel: { expression: string } }> };
}
const requestsOf = (template: K8sObject): ExampleRequest[] =>
  (template['spec'] as { spec: { devices: { requests: ExampleRequest[] } } }).spec.devices.requests;

describe.skipIf(unavailable !== undefined)("the real kube-scheduler allocating gpulet's devices (test/upstream cluster)", () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;
  let inventory: Inventory;
  const env = deviceSelectorEnv();

  /** The devices of the published slices a request may get: every selector of its class, then its own, true. */
  async function candidates(req: RequestSpec): Promise<Map<string, V1Device>> {
    const classSelectors = CLASSES.get(req.deviceClassName);
    if (classSelectors === undefined) throw new Error(`no DeviceClass ${req.deviceClassName} in daemonset/06-deviceclasses.yaml`);
    const out = new Map<string, V1Device>();
    for (const [name, device] of await publishedDevices(cluster.admin, NODE)) {
      const cel = celDevice(DRIVER, device);
      // The allocator stops at the first false selector (class selectors first), so a request selector never
      // sees a device its class excludes (e.g. `profile` of a whole GPU).
      if ([...classSelectors, ...(req.selectors ?? [])].every((e) => selects(env, e, cel))) out.set(name, device);
    }
    return out;
  }

  /** The inventory entry of an allocated device, by its published `uuid` attribute: a whole GPU or a MIG device. */
  function inventoryEntry(device: V1Device): { kind: 'gpu' | 'mig'; productName: string; memoryBytes: number; profile?: string } {
    const uuid = device.attributes?.['uuid']?.string;
    for (const g of inventory.gpus) {
      if (g.uuid === uuid && !g.migEnabled) return { kind: 'gpu', productName: g.productName, memoryBytes: g.memoryBytes };
      const m = g.migDevices.find((x) => x.uuid === uuid);
      if (m) return { kind: 'mig', productName: g.productName, memoryBytes: m.memoryBytes, profile: m.profile };
    }
    throw new Error(`device ${device.name}: uuid ${String(uuid)} is no allocatable device of the mock inventory`);
  }

  /** The allocation of a running pod is a device of gpulet's pool that `req` may get, and the node agent prepared it. */
  async function expectAllocatedWithin(run: RunningPod, req: RequestSpec, request = 'gpu'): Promise<V1Device> {
    expect(run.pod.spec?.nodeName).toBe(NODE);
    expect(run.device).toMatchObject({ driver: DRIVER, pool: NODE, request });
    const allowed = await candidates(req);
    expect(allowed.size, `devices ${req.deviceClassName} + ${JSON.stringify(req.selectors ?? [])} may get`).toBeGreaterThan(0);
    expect([...allowed.keys()]).toContain(run.device.device);
    // What the runtime would get for container main: gpulet's CDI device for that claim and device.
    expect(run.cdiIds).toEqual([`k8s.gpu.gpulet.dev/claim=${run.claim.metadata!.uid!}-${run.device.device}`]);
    return allowed.get(run.device.device)!;
  }

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE, NODE_B] });
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-sched-'));
    agent = await startGpulet(cluster.kubeconfig, cluster.nodes.find((n) => n.name === NODE)!, stateDir, silentLogger());
    inventory = agent.backend.inventory();
    await createAll(cluster.admin, installDocs().filter((d) => d.obj.kind === 'DeviceClass').map((d) => d.obj));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('allocates a device of every DeviceClass in daemonset/06-deviceclasses.yaml, of the kind the class names', async () => {
    expect([...CLASSES.keys()].sort()).toEqual(['gpu.gpulet.dev', 'mig.gpulet.dev']);
    const pods: string[] = [];
    for (const className of CLASSES.keys()) {
      const name = `class-${className.split('.')[0]!}`;
      await createAll(cluster.admin, [claimTemplate(name, { deviceClassName: className }), podWithTemplate(name, name)]);
      pods.push(name);
    }
    for (const [i, className] of [...CLASSES.keys()].entries()) {
      const run = await waitRunning(cluster.admin, pods[i]!);
      const device = await expectAllocatedWithin(run, { deviceClassName: className });
      // The class's type is the inventory's: a whole GPU (not in MIG mode) or a MIG device.
      expect(inventoryEntry(device).kind).toBe(className.startsWith('mig.') ? 'mig' : 'gpu');
    }
    await deletePods(cluster.admin, pods);
  }, TEST_TIMEOUT_MS);

  it('runs every claim and pod example of daemonset/examples/ with a device its selectors allow (productName, memory, cudaComputeCapability, MIG profile)', async () => {
    const docs = exampleDocs().filter((d) => d.obj.kind === 'ResourceClaimTemplate' || d.obj.kind === 'Pod');
    const templates = docs.filter((d) => d.obj.kind === 'ResourceClaimTemplate').map((d) => d.obj);
    const examplePods = docs.filter((d) => d.obj.kind === 'Pod').map((d) => d.obj as unknown as V1Pod);
    expect(templates.map((t) => t.metadata.name).sort()).toEqual(['h100-40gi', 'mig-1g10gb', 'single-gpu']);
    // A template no example pod uses gets a pod of its own.
    const used = new Set(examplePods.flatMap((p) => (p.spec?.resourceClaims ?? []).map((c) => c.resourceClaimTemplateName)));
    const extra = templates.filter((t) => !used.has(t.metadata.name)).map((t) => podWithTemplate(`${t.metadata.name}-pod`, t.metadata.name, requestsOf(t)[0]!.name));
    const pods = [...examplePods, ...extra];
    await createAll(cluster.admin, [...templates, ...pods]);

    const allocated = new Set<string>();
    for (const pod of pods) {
      if ((pod.spec?.resourceClaims ?? []).length === 0) {
        // KEP-5004: the pod asks for an extended resource; the class that names it is the request's class, and
        // the scheduler makes the claim (request names: one per container request, from extendedResourceClaimStatus).
        const limits = Object.keys(pod.spec!.containers[0]!.resources?.limits ?? {});
        const className = installDocs()
          .filter((d) => d.obj.kind === 'DeviceClass')
          .find((d) => limits.includes((d.obj['spec'] as { extendedResourceName?: string }).extendedResourceName ?? ''))?.obj.metadata.name;
        expect(className, `a DeviceClass names one of ${limits.join(', ')}`).toBeDefined();
        const run = await waitRunning(cluster.admin, pod.metadata!.name!, EXTENDED_RESOURCE_CLAIM);
        const request = run.pod.status!.extendedResourceClaimStatus!.requestMappings[0]!.requestName;
        const device = await expectAllocatedWithin(run, { deviceClassName: className! }, request);
        expect(inventoryEntry(device).kind).toBe('gpu');
        allocated.add(run.device.device);
        continue;
      }
      const podClaim = pod.spec!.resourceClaims![0]!;
      const template = templates.find((t) => t.metadata.name === podClaim.resourceClaimTemplateName)!;
      const [request] = requestsOf(template);
      const req: RequestSpec = { deviceClassName: request!.exactly.deviceClassName, selectors: (request!.exactly.selectors ?? []).map((s) => s.cel.expression) };
      const run = await waitRunning(cluster.admin, pod.metadata!.name!, podClaim.name);
      const device = await expectAllocatedWithin(run, req, request!.name);
      allocated.add(run.device.device);
      // The inventory says the same as the published attributes the selectors read.
      const entry = inventoryEntry(device);
      if (template.metadata.name === 'h100-40gi') {
        expect(entry.kind).toBe('gpu');
        expect(entry.productName.startsWith('NVIDIA H100')).toBe(true);
        expect(entry.memoryBytes).toBeGreaterThanOrEqual(40 * 2 ** 30);
      }
      if (template.metadata.name === 'mig-1g10gb') expect(entry).toMatchObject({ kind: 'mig', profile: '1g.10gb' });
    }
    expect(allocated.size, 'one device per claim').toBe(pods.length);
    await deletePods(cluster.admin, pods.map((p) => p.metadata!.name!));
  }, TEST_TIMEOUT_MS);

  it('leaves a pod unschedulable, with the scheduler saying why, when no published device matches its selector', async () => {
    const devices = [...(await publishedDevices(cluster.admin, NODE)).values()];
    const mib = (d: V1Device) => Number(/^(\d+)Mi$/.exec(String(d.capacity?.['memory']?.value))?.[1] ?? NaN);
    const largest = Math.max(...devices.map(mib));
    expect(Number.isFinite(largest)).toBe(true);
    // A model of the mock's tables this node does not have.
    const present = new Set(inventory.gpus.map((g) => g.productName));
    const absent = Object.values(GPU_MODELS).map((m) => m.productName).find((p) => !present.has(p));
    expect(absent).toBeDefined();
    const cases: Array<[string, RequestSpec]> = [
      ['nomatch-memory', { deviceClassName: 'gpu.gpulet.dev', selectors: [`device.capacity['${DRIVER}'].memory.compareTo(quantity('${largest + 1}Mi')) >= 0`] }],
      ['nomatch-product', { deviceClassName: 'gpu.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].productName == '${absent!}'`] }],
      ['nomatch-mig-cc', { deviceClassName: 'mig.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].cudaComputeCapability.compareTo(semver('99.0.0')) >= 0`] }],
    ];
    for (const [name, req] of cases) {
      expect((await candidates(req)).size, `${name}: no published device matches`).toBe(0);
      await createAll(cluster.admin, [claimTemplate(name, req), podWithTemplate(name, name)]);
    }
    for (const [name] of cases) {
      const condition = await waitUnschedulable(cluster.admin, name);
      // pkg/scheduler/framework/plugins/dynamicresources/dynamicresources.go Filter: "cannot allocate all claims".
      expect(condition.message).toContain('cannot allocate all claims');
    }
    await deletePods(cluster.admin, cases.map(([name]) => name));
  }, TEST_TIMEOUT_MS);

  it('never allocates a device gpulet tainted after an XID, and allocates one to a claim that tolerates the taint', async () => {
    const backend = agent!.backend as MockBackend;
    expect(backend.kind).toBe('mock');
    const gpuClass: RequestSpec = { deviceClassName: 'gpu.gpulet.dev' };
    const whole = await candidates(gpuClass);
    expect(whole.size).toBeGreaterThan(1);
    // Fail every whole GPU but the last (by device order): XID 79 (fallen off the bus) is not an application XID.
    const names = [...whole.keys()];
    const keep = names.at(-1)!;
    const failing = names.slice(0, -1);
    for (const name of failing) {
      const uuid = whole.get(name)!.attributes!['uuid']!.string!;
      backend.injectHealthEvent({ kind: 'xid', xid: 79, uuid, timestampMs: Date.now(), message: `XID 79 on ${uuid} (injected by the test)` });
    }
    // gpulet publishes the taints; read them back from the API server (key and effect as gpulet chose them).
    const published = await waitFor(
      async () => {
        const now = await publishedDevices(cluster.admin, NODE);
        return failing.every((n) => (now.get(n)?.taints?.length ?? 0) > 0) ? now : undefined;
      },
      { what: `taints on ${failing.join(', ')} in the published slices`, timeoutMs: 60_000 },
    );
    expect(published.get(keep)?.taints ?? []).toEqual([]);
    const taints = failing.flatMap((n) => published.get(n)!.taints!);
    const keys = new Set(taints.map((t: V1DeviceTaint) => t.key));
    expect(keys.size, 'one taint key for every failed GPU').toBe(1);
    const taint = taints[0]!;
    expect(['NoSchedule', 'NoExecute']).toContain(taint.effect);

    // Without a toleration: the only untainted whole GPU, then nothing.
    await createAll(cluster.admin, [claimTemplate('plain', gpuClass), podWithTemplate('plain-1', 'plain')]);
    const first = await waitRunning(cluster.admin, 'plain-1');
    await expectAllocatedWithin(first, gpuClass);
    expect(first.device.device).toBe(keep);
    await createAll(cluster.admin, [podWithTemplate('plain-2', 'plain')]);
    const condition = await waitUnschedulable(cluster.admin, 'plain-2');
    expect(condition.message).toContain('cannot allocate all claims');

    // With a toleration of the published key (operator Exists, the published effect): a tainted GPU.
    const tolerating: RequestSpec = { deviceClassName: 'gpu.gpulet.dev', tolerations: [{ key: taint.key, operator: 'Exists', effect: taint.effect }] };
    await createAll(cluster.admin, [claimTemplate('tolerating', tolerating), podWithTemplate('tolerating-1', 'tolerating')]);
    const tolerated = await waitRunning(cluster.admin, 'tolerating-1');
    await expectAllocatedWithin(tolerated, tolerating);
    expect(failing).toContain(tolerated.device.device);
    // The pod without a toleration is still unschedulable: the claim that tolerates took a tainted GPU, not its place.
    expect((await waitUnschedulable(cluster.admin, 'plain-2')).message).toContain('cannot allocate all claims');
    await deletePods(cluster.admin, ['plain-1', 'plain-2', 'tolerating-1']);
  }, TEST_TIMEOUT_MS);

  it("taints a failed MIG-mode GPU's MIG devices, and the scheduler allocates none of them", async () => {
    const backend = agent!.backend as MockBackend;
    // From the inventory: a GPU in MIG mode with a profile no other GPU has, and one another GPU has too.
    const migGpus = inventory.gpus.filter((g) => g.migEnabled);
    const profilesOf = (uuid: string) => new Set(migGpus.find((g) => g.uuid === uuid)!.migDevices.map((m) => m.profile));
    const parent = migGpus.find((g) => g.migDevices.some((m) => migGpus.every((o) => o === g || !profilesOf(o.uuid).has(m.profile))));
    expect(parent, 'a MIG-mode GPU with a profile of its own').toBeDefined();
    const others = migGpus.filter((g) => g !== parent);
    const own = parent!.migDevices.find((m) => others.every((o) => !profilesOf(o.uuid).has(m.profile)))!.profile;
    const shared = parent!.migDevices.find((m) => others.some((o) => profilesOf(o.uuid).has(m.profile)))?.profile;
    expect(shared, 'a profile the parent shares with another GPU').toBeDefined();

    backend.injectHealthEvent({ kind: 'xid', xid: 79, uuid: parent!.uuid, timestampMs: Date.now(), message: `XID 79 on ${parent!.uuid} (injected by the test)` });
    const children = new Set(parent!.migDevices.map((m) => m.uuid));
    await waitFor(
      async () => {
        const migs = [...(await publishedDevices(cluster.admin, NODE)).values()].filter((d) => children.has(d.attributes?.['uuid']?.string ?? ''));
        return migs.length === children.size && migs.every((d) => (d.taints?.length ?? 0) > 0);
      },
      { what: `taints on the MIG devices of ${parent!.uuid}`, timeoutMs: 60_000 },
    );

    const sharedReq: RequestSpec = { deviceClassName: 'mig.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].profile == '${shared!}'`] };
    const ownReq: RequestSpec = { deviceClassName: 'mig.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].profile == '${own}'`] };
    await createAll(cluster.admin, [claimTemplate('mig-shared', sharedReq), podWithTemplate('mig-shared', 'mig-shared'), claimTemplate('mig-own', ownReq), podWithTemplate('mig-own', 'mig-own')]);
    const run = await waitRunning(cluster.admin, 'mig-shared');
    const device = await expectAllocatedWithin(run, sharedReq);
    expect(device.taints ?? []).toEqual([]);
    expect(device.attributes?.['parentUUID']?.string).not.toBe(parent!.uuid);
    expect(inventoryEntry(device)).toMatchObject({ kind: 'mig', profile: shared });
    expect((await waitUnschedulable(cluster.admin, 'mig-own')).message).toContain('cannot allocate all claims');
    await deletePods(cluster.admin, ['mig-shared', 'mig-own']);
  }, TEST_TIMEOUT_MS);

  it('allocates from every slice of a pool gpulet split in three (130 GPUs, two tainted), as one complete pool', async () => {
    const resource = cluster.admin.makeApiClient(ResourceV1Api);
    const publisher = new SlicePublisher({
      kubeConfig: cluster.admin, driverName: DEFAULT_DRIVER_NAME, nodeName: NODE_B as DnsSubdomain, poolName: poolNameOf(NODE_B as DnsSubdomain), logger: silentLogger(),
    });
    publisher.start();
    const pods: string[] = [];
    try {
      const big = manyGpus(130);
      const now = Date.now();
      const fault = { xid: { xid: 79, fatal: true, sinceMs: now, lastMs: now } };
      publisher.update(big, taintsByUuid(DEFAULT_DRIVER_NAME, new Map([[big.gpus[0]!.uuid, fault], [big.gpus[129]!.uuid, fault]])));
      await within(publisher.whenSynced(), 'the publisher to sync 130 GPUs on node-b', 60_000);
      const slices = (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE_B}` })).items;
      expect(slices.length).toBeGreaterThan(2);
      // From every slice, its last device, pinned by its uuid: the scheduler must take each slice as
      // part of one complete pool (spec.pool.resourceSliceCount slices of one generation), or it allocates nothing.
      for (const [i, slice] of slices.entries()) {
        const device = (slice.spec.devices ?? []).at(-1)!;
        const uuid = device.attributes!['uuid']!.string!;
        const name = `pool-b-${i}`;
        // A tainted device (a slice may hold only one) is asked for with a toleration of its published taint.
        const tolerations = (device.taints ?? []).map((t) => ({ key: t.key, operator: 'Exists', effect: t.effect }));
        const req: RequestSpec = { deviceClassName: 'gpu.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].uuid == '${uuid}'`], tolerations };
        await createAll(cluster.admin, [claimTemplate(name, req), podWithTemplate(name, name)]);
        pods.push(name);
        const core = cluster.admin.makeApiClient(CoreV1Api);
        // node-b has no driver: the pod is bound and allocated, and stays Pending (nothing prepares it).
        const result = await waitFor(
          async () => {
            const p = await core.readNamespacedPod({ namespace: 'default', name });
            const claimName = p.status?.resourceClaimStatuses?.[0]?.resourceClaimName;
            if (p.spec?.nodeName === undefined || claimName === undefined) return undefined;
            const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: claimName });
            return claim.status?.allocation?.devices?.results?.[0];
          },
          { what: `the claim of ${name} allocated`, timeoutMs: 90_000 },
        );
        expect(result).toMatchObject({ driver: DRIVER, pool: NODE_B, device: device.name });
      }
    } finally {
      await deletePods(cluster.admin, pods);
      await publisher.stop();
      await resource.deleteCollectionResourceSlice({ fieldSelector: `spec.nodeName=${NODE_B}` });
    }
  }, TEST_TIMEOUT_MS);
});
