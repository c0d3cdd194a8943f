/**
 * gpulet against the real Kubernetes API server (issue 10, item 2, its first two checks), on the upstream
 * cluster of test/upstream/ (Kubernetes 1.37: etcd, kube-apiserver with RBAC + the Node authorizer and
 * ValidatingAdmissionPolicy, scheduler, controller manager, a node agent on the kubelet's DRA manager):
 *
 * - gpulet's ResourceSlices, published by its real publisher (src/dra/slices/) with the DaemonSet's identity,
 *   are accepted and stored as built (a second reconcile writes nothing), tainted devices included; every
 *   limit the builder enforces is the server's — one past it is rejected with a 422 naming the field, and the
 *   limit itself is accepted;
 * - the DaemonSet's ServiceAccount, holding a pod-bound token for a pod on node-a (the token the kubelet
 *   mounts, which carries the node's name), can make every call gpulet makes and is granted nothing more;
 * - the ValidatingAdmissionPolicy of daemonset/, evaluated by the real API server, stops node-a's agent from
 *   creating, updating or deleting node-b's slices (and other drivers' slices), with the policy's message.
 *
 * The cluster is built and started once for this file; skipped with a notice only where Go is absent.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ApiException,
  AuthenticationV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  ResourceV1Api,
  type KubeConfig,
  type V1ClusterRole,
  type V1Device,
  type V1DeviceTaint,
  type V1Pod,
  type V1ResourceSlice,
} from '@kubernetes/client-node';
import { buildResourceSlices, validateDevice, type SliceSpec } from '../../src/dra/slices/build.js';
import { taintsByUuid } from '../../src/dra/slices/taints.js';
import { MAX_ATTRIBUTES_AND_CAPACITIES, MAX_DEVICES_PER_SLICE, MAX_DEVICES_PER_SLICE_WITH_TAINTS, MAX_STRING_VALUE_LENGTH } from '../../src/dra/slices/limits.js';
import { SlicePublisher } from '../../src/dra/slices/publisher.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_DRIVER_NAME, poolNameOf, type DnsSubdomain } from '../../src/model/names.js';
import { DAEMONSET_DIR, installDocs } from '../helpers/manifests.js';
import { manyGpus } from '../helpers/slices.js';
import {
  BUILD_TIMEOUT_MS,
  buildCluster,
  clusterUnavailable,
  START_TIMEOUT_MS,
  startCluster,
  tokenKubeConfig,
  type UpstreamCluster,
} from '../helpers/upstream-cluster.js';
import { waitFor, within } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/apiserver.test.ts: ${unavailable}`);

const NODE_A = 'node-a' as DnsSubdomain;
const NODE_B = 'node-b' as DnsSubdomain;
const NAMESPACE = 'gpulet-system';
const SERVICE_ACCOUNT = 'gpulet';
const POLICY = 'gpulet-resourceslices';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

/** What the API server answered to a rejected request. */
interface Rejection {
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

/** The rejection of `call` (fails the test when it succeeds). */
async function rejection(call: Promise<unknown>): Promise<Rejection> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const status = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { reason?: string; message?: string };
    return { code: err.code, reason: status.reason ?? '', message: status.message ?? '' };
  }
  throw new Error('the API server accepted a request it should have rejected');
}

/** A slice for POST: the builder's output with a fixed name (so failures name it) and a pool of its own. */
function sliceFor(spec: SliceSpec, name: string, devices: V1Device[] = spec.spec.devices): V1ResourceSlice {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name, labels: spec.metadata.labels },
    spec: { ...spec.spec, pool: { name, generation: 0, resourceSliceCount: 1 }, devices },
  };
}

/** The token of a TokenRequest's answer. */
function issued(token: string | undefined): string {
  if (token === undefined || token === '') throw new Error('the TokenRequest answer carries no token');
  return token;
}

function built(inventory: Inventory, node: DnsSubdomain, taints?: ReadonlyMap<string, readonly V1DeviceTaint[]>): SliceSpec[] {
  return buildResourceSlices({
    driverName: DEFAULT_DRIVER_NAME,
    nodeName: node,
    poolName: poolNameOf(node),
    inventory,
    generation: 0,
    ...(taints === undefined ? {} : { taints }),
  });
}

describe.skipIf(unavailable !== undefined)('gpulet against the real kube-apiserver (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let admin: KubeConfig;
  /** gpulet's identity on node-a: its ServiceAccount with a token bound to a pod on node-a. */
  let gpulet: KubeConfig;
  let gpuletPod: V1Pod;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE_A] });
    admin = cluster.admin;
    console.info(`upstream cluster ${cluster.version} ready in ${cluster.spawnToReadyMs} ms (phases ${JSON.stringify(cluster.phasesMs)})`);

    // Install daemonset/ as `kubectl apply -k daemonset/` would: every numbered manifest, in order.
    const objects = KubernetesObjectApi.makeApiClient(admin);
    for (const { obj } of installDocs()) await objects.create(obj);

    // The agent's pod on node-a (what the DaemonSet would create there), run by the node agent, and the
    // pod-bound token the kubelet would mount into it (TokenRequest with a Pod boundObjectRef).
    const core = admin.makeApiClient(CoreV1Api);
    const pod = await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'gpulet-node-a' },
        spec: {
          nodeName: NODE_A,
          serviceAccountName: SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          containers: [{ name: 'gpulet', image: 'ghcr.io/gpulet/gpulet:0.1.0' }],
        },
      },
    });
    gpuletPod = await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ namespace: NAMESPACE, name: 'gpulet-node-a' });
        return p.status?.phase === 'Running' ? p : undefined;
      },
      { what: "the node agent to run gpulet's pod on node-a", timeoutMs: 60_000 },
    );
    const token = await core.createNamespacedServiceAccountToken({
      namespace: NAMESPACE,
      name: SERVICE_ACCOUNT,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! } } },
    });
    gpulet = tokenKubeConfig(admin, issued(token.status?.token), 'gpulet');
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 90_000);

  it('runs the Kubernetes release the cluster pins, with the DRA gates on', () => {
    expect(cluster.version).toBe('v1.37.2');
    for (const gate of ['DRADeviceTaints', 'DRAPartitionableDevices', 'DRAConsumableCapacity', 'DRAExtendedResource', 'ResourceHealthStatus', 'DRAResourceClaimDeviceStatus']) {
      expect(cluster.featureGates).toContain(`${gate}=true`);
    }
    expect(gpuletPod.spec?.nodeName).toBe(NODE_A);
  });

  describe('ResourceSlices: accepted as built, and the builder limits are the server limits', () => {
    it("accepts gpulet's slices from its real publisher, as the DaemonSet's identity, and stores them as built", async () => {
      const inventory = buildMockInventory(machineSpecByName('dgx-h100'), NODE_A);
      const publisher = new SlicePublisher({ kubeConfig: gpulet, driverName: DEFAULT_DRIVER_NAME, nodeName: NODE_A, poolName: poolNameOf(NODE_A), logger: silentLogger() });
      publisher.start();
      try {
        publisher.update(inventory);
        await within(publisher.whenSynced(), 'the publisher to sync');
        const stored = await admin.makeApiClient(ResourceV1Api).listResourceSlice({ fieldSelector: `spec.nodeName=${NODE_A}` });
        expect(stored.items).toHaveLength(1);
        const slice = stored.items[0]!;
        const expected = built(inventory, NODE_A)[0]!;
        expect(slice.spec.devices).toEqual(expected.spec.devices);
        expect(slice.spec.pool.name).toBe(NODE_A);
        expect(slice.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: NODE_A, controller: true });

        // Stored exactly as built: the publisher's comparison finds nothing to write.
        const writes = publisher.stats().writes;
        publisher.republish();
        await within(publisher.whenSynced(), 'the publisher to sync again');
        expect(publisher.stats().writes).toBe(writes);
      } finally {
        await publisher.stop();
      }
    });

    it('keeps device taints (DRADeviceTaints) and splits at the server limits: update, create and delete as the agent', async () => {
      const resource = admin.makeApiClient(ResourceV1Api);
      const publisher = new SlicePublisher({ kubeConfig: gpulet, driverName: DEFAULT_DRIVER_NAME, nodeName: NODE_A, poolName: poolNameOf(NODE_A), logger: silentLogger() });
      publisher.start();
      try {
        // 130 GPUs, two of them tainted: the builder splits at 64 around tainted devices, 128 elsewhere. gpu-0 has a
        // fatal XID (NoSchedule), gpu-129 an application XID and no event registration (effect None, which the
        // 1.37 API server must accept: pkg/apis/resource/validation validDeviceTaintEffects).
        const big = manyGpus(130);
        const since = Date.UTC(2026, 0, 2, 3, 4, 5);
        const taints = taintsByUuid(DEFAULT_DRIVER_NAME, new Map([
          [big.gpus[0]!.uuid, { xid: { xid: 79, fatal: true, sinceMs: since, lastMs: since } }],
          [big.gpus[129]!.uuid, { xid: { xid: 43, fatal: false, sinceMs: since, lastMs: since }, unmonitored: { sinceMs: since } }],
        ]));
        publisher.update(big, taints);
        await within(publisher.whenSynced(), 'the publisher to sync 130 GPUs');
        const stored = (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE_A}` })).items;
        const expected = built(big, NODE_A, taints);
        expect(stored.map((s) => s.spec.devices?.length).sort()).toEqual(expected.map((s) => s.spec.devices.length).sort());
        const tainted = stored.flatMap((s) => s.spec.devices ?? []).filter((d) => (d.taints ?? []).length > 0);
        expect(tainted.map((d) => d.name).sort()).toEqual(['gpu-0', 'gpu-129']);
        const at = new Date(since);
        expect(tainted.find((d) => d.name === 'gpu-0')?.taints).toEqual([{ key: 'gpu.gpulet.dev/xid', value: '79', effect: 'NoSchedule', timeAdded: at }]);
        expect(tainted.find((d) => d.name === 'gpu-129')?.taints).toEqual([
          { key: 'gpu.gpulet.dev/xid', value: '43', effect: 'None', timeAdded: at },
          { key: 'gpu.gpulet.dev/unmonitored', effect: 'None', timeAdded: at },
        ]);

        // Back to 8 GPUs: slices updated and the obsolete ones deleted, by the agent's own identity.
        publisher.update(manyGpus(8));
        await within(publisher.whenSynced(), 'the publisher to shrink the pool');
        const after = (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE_A}` })).items;
        expect(after).toHaveLength(1);
        expect(after[0]!.spec.devices).toHaveLength(8);
        expect(publisher.stats().errors).toBe(0);
      } finally {
        await publisher.stop();
      }
    });

    describe('one past each limit is rejected with 422 naming the field; the limit itself is accepted', () => {
      const node = 'limits-node' as DnsSubdomain;
      let resource: ResourceV1Api;
      beforeAll(() => {
        resource = admin.makeApiClient(ResourceV1Api);
      });

      it(`devices per slice: ${MAX_DEVICES_PER_SLICE}`, async () => {
        const devices = built(manyGpus(MAX_DEVICES_PER_SLICE + 1), node).flatMap((s) => s.spec.devices);
        const spec = built(manyGpus(1), node)[0]!;
        const r = await rejection(resource.createResourceSlice({ body: sliceFor(spec, 'too-many-devices', devices) }));
        expect(r.code).toBe(422);
        expect(r.message).toContain(`spec.devices: Too many: ${MAX_DEVICES_PER_SLICE + 1}: must have at most ${MAX_DEVICES_PER_SLICE} items`);
        await resource.createResourceSlice({ body: sliceFor(spec, 'max-devices', devices.slice(0, MAX_DEVICES_PER_SLICE)) });
      });

      it(`devices per slice with device taints: ${MAX_DEVICES_PER_SLICE_WITH_TAINTS}`, async () => {
        const inv = manyGpus(MAX_DEVICES_PER_SLICE_WITH_TAINTS + 1);
        const lost = new Map(inv.gpus.map((g) => [g.uuid, { lost: { sinceMs: 0 } }]));
        const devices = built(inv, node, taintsByUuid(DEFAULT_DRIVER_NAME, lost)).flatMap((s) => s.spec.devices);
        const spec = built(manyGpus(1), node)[0]!;
        const r = await rejection(resource.createResourceSlice({ body: sliceFor(spec, 'too-many-tainted', devices) }));
        expect(r.code).toBe(422);
        expect(r.message).toContain(`spec.devices: Too many: ${MAX_DEVICES_PER_SLICE_WITH_TAINTS + 1}: must have at most ${MAX_DEVICES_PER_SLICE_WITH_TAINTS} items`);
        await resource.createResourceSlice({ body: sliceFor(spec, 'max-tainted', devices.slice(0, MAX_DEVICES_PER_SLICE_WITH_TAINTS)) });
      });

      it(`attributes and capacities per device: ${MAX_ATTRIBUTES_AND_CAPACITIES}`, async () => {
        const spec = built(manyGpus(1), node)[0]!;
        const device = spec.spec.devices[0]!;
        const withEntries = (total: number): V1Device => {
          const used = Object.keys(device.attributes ?? {}).length + Object.keys(device.capacity ?? {}).length;
          const extra = Object.fromEntries(Array.from({ length: total - used }, (_, i) => [`extra${i}`, { _int: i }]));
          return { ...device, attributes: { ...device.attributes, ...extra } };
        };
        const over = withEntries(MAX_ATTRIBUTES_AND_CAPACITIES + 1);
        expect(() => validateDevice(over)).toThrow(/at most 32 allowed/);
        const r = await rejection(resource.createResourceSlice({ body: sliceFor(spec, 'too-many-attributes', [over]) }));
        expect(r.code).toBe(422);
        expect(r.message).toContain(`spec.devices[0]: Invalid value: ${MAX_ATTRIBUTES_AND_CAPACITIES + 1}: the total number of attributes and capacities must not exceed ${MAX_ATTRIBUTES_AND_CAPACITIES}`);
        const atLimit = withEntries(MAX_ATTRIBUTES_AND_CAPACITIES);
        expect(() => validateDevice(atLimit)).not.toThrow();
        await resource.createResourceSlice({ body: sliceFor(spec, 'max-attributes', [atLimit]) });
      });

      it(`string attribute bytes: ${MAX_STRING_VALUE_LENGTH}`, async () => {
        const spec = built(manyGpus(1), node)[0]!;
        const device = spec.spec.devices[0]!;
        // Multi-byte characters: the limit counts bytes (63 bytes of ASCII + one 2-byte character = 65).
        const withProduct = (value: string): V1Device => ({ ...device, attributes: { ...device.attributes, productName: { string: value } } });
        const over = withProduct(`${'x'.repeat(MAX_STRING_VALUE_LENGTH - 1)}é`);
        expect(() => validateDevice(over)).toThrow(/65 bytes, at most 64 allowed/);
        const r = await rejection(resource.createResourceSlice({ body: sliceFor(spec, 'too-long-string', [over]) }));
        expect(r.code).toBe(422);
        expect(r.message).toContain(`spec.devices[0].attributes[productName].string: Too long: may not be more than ${MAX_STRING_VALUE_LENGTH} bytes`);
        const atLimit = withProduct('x'.repeat(MAX_STRING_VALUE_LENGTH));
        expect(() => validateDevice(atLimit)).not.toThrow();
        await resource.createResourceSlice({ body: sliceFor(spec, 'max-string', [atLimit]) });
      });
    });
  });

  describe("the DaemonSet's ServiceAccount can do what gpulet does, and nothing more", () => {
    it('authenticates as the ServiceAccount with the node name a pod-bound token carries', async () => {
      const review = await gpulet.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
      expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`);
      expect(review.status?.userInfo?.extra?.[NODE_NAME_EXTRA]).toEqual([NODE_A]);
    });

    const clusterRole = parseYaml(readFileSync(path.join(DAEMONSET_DIR, '02-clusterrole.yaml'), 'utf8')) as V1ClusterRole;
    /** group/resource verb → allowed, for every verb gpulet's ClusterRole grants and the ones it must not have. */
    const granted = new Set(
      (clusterRole.rules ?? []).flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => (r.verbs ?? []).map((v) => `${g}/${res} ${v}`)))),
    );
    const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
    const cases = [
      ...['resource.k8s.io/resourceslices', 'resource.k8s.io/resourceclaims', 'resource.k8s.io/deviceclasses', '/nodes', '/pods', '/secrets', '/configmaps', '/events']
        .flatMap((gr) => VERBS.map((verb) => `${gr} ${verb}`)),
      'resource.k8s.io/resourceclaims/status update',
      'resource.k8s.io/resourceclaims/status patch',
      '/nodes/status patch',
      '/pods/status update',
      '/serviceaccounts/token create',
    ];

    it.each(cases)('%s: allowed exactly when 02-clusterrole.yaml grants it (SelfSubjectAccessReview)', async (c) => {
      const [groupResource, verb] = c.split(' ') as [string, string];
      const [group, resource, subresource] = groupResource.split('/') as [string, string, string | undefined];
      const review = await gpulet.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { group, resource, verb, ...(subresource === undefined ? {} : { subresource }), ...(resource === 'pods' || resource === 'secrets' || resource === 'configmaps' || resource === 'events' || resource === 'serviceaccounts' || resource === 'resourceclaims' ? { namespace: NAMESPACE } : {}) } } },
      });
      expect(review.status?.allowed === true, `${c}: ${review.status?.reason ?? ''}`).toBe(granted.has(c));
    });

    it('is granted no rule beyond 02-clusterrole.yaml and what every ServiceAccount has (SelfSubjectRulesReview)', async () => {
      // What any ServiceAccount of the namespace holds without a binding of its own (system:basic-user,
      // system:cluster-trust-bundle-discovery for system:serviceaccounts, ...): the rules of its "default".
      const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace: NAMESPACE,
        name: 'default',
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      const rulesOf = async (kc: KubeConfig): Promise<Set<string>> => {
        const review = await kc.makeApiClient(AuthorizationV1Api).createSelfSubjectRulesReview({ body: { spec: { namespace: NAMESPACE } } });
        expect(review.status?.incomplete).toBe(false);
        return new Set(
          (review.status?.resourceRules ?? []).flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)))),
        );
      };
      const baseline = await rulesOf(tokenKubeConfig(admin, issued(token.status?.token), 'default-sa'));
      expect([...baseline].filter((r) => r.startsWith('resource.k8s.io/') || r.startsWith('/nodes'))).toEqual([]);
      const rules = await rulesOf(gpulet);
      expect([...rules].filter((r) => !baseline.has(r)).sort()).toEqual([...granted].sort());
    });

    it('reads its Node and ResourceClaims as Prepare and the claim rebuild do', async () => {
      const resource = gpulet.makeApiClient(ResourceV1Api);
      await admin.makeApiClient(ResourceV1Api).createNamespacedResourceClaim({
        namespace: 'default',
        body: { metadata: { name: 'rbac-claim' }, spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'gpu.gpulet.dev' } }] } } },
      });
      const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: 'rbac-claim' });
      expect(claim.metadata?.name).toBe('rbac-claim');
      expect((await resource.listResourceClaimForAllNamespaces()).items.map((c) => c.metadata?.name)).toContain('rbac-claim');
      expect((await gpulet.makeApiClient(CoreV1Api).readNode({ name: NODE_A })).metadata?.name).toBe(NODE_A);
      // ...and nothing it does not need: replacing a claim's status (it only patches status.devices, by
      // server-side apply: test/upstream/claim-status.test.ts), reading a slice by name, a secret.
      const denied = await rejection(resource.replaceNamespacedResourceClaimStatus({ namespace: 'default', name: 'rbac-claim', body: claim }));
      expect(denied.code).toBe(403);
      expect(denied.message).toContain(`system:serviceaccount:${NAMESPACE}:${SERVICE_ACCOUNT}`);
    });
  });

  describe("the ValidatingAdmissionPolicy keeps node-a's agent to node-a's slices of its own driver", () => {
    let nodeBSlice: V1ResourceSlice;
    const denial = `ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request`;

    beforeAll(async () => {
      // node-b's slice, published by node-b's agent (here: the administrator, whom the policy does not match).
      const spec = built(manyGpus(2), NODE_B)[0]!;
      nodeBSlice = await admin.makeApiClient(ResourceV1Api).createResourceSlice({ body: { ...spec, metadata: { ...spec.metadata } } });
    });

    it("denies creating a slice for node-b", async () => {
      const spec = built(manyGpus(1), NODE_B)[0]!;
      const r = await rejection(gpulet.makeApiClient(ResourceV1Api).createResourceSlice({ body: { ...spec } }));
      expect(r.code).toBe(403);
      expect(r.message).toContain(denial);
      expect(r.message).toContain("gpulet running on node 'node-a' may only write ResourceSlices with spec.nodeName 'node-a', not 'node-b'");
    });

    it("denies updating node-b's slice", async () => {
      const relabelled = { ...nodeBSlice, metadata: { ...nodeBSlice.metadata, labels: { ...nodeBSlice.metadata?.labels, touched: 'true' } } };
      const r = await rejection(gpulet.makeApiClient(ResourceV1Api).replaceResourceSlice({ name: nodeBSlice.metadata!.name!, body: relabelled }));
      expect(r.code).toBe(403);
      expect(r.message).toContain(`${denial}: gpulet running on node 'node-a' may only write ResourceSlices with spec.nodeName 'node-a', not 'node-b'`);
    });

    it('never lets a slice move to another node or driver: the API server keeps spec.nodeName and spec.driver immutable', async () => {
      // Validation (pkg/apis/resource/validation ValidateResourceSliceUpdate) runs before validating admission, so
      // the policy's checks of the stored object on UPDATE are a second line that this first one pre-empts.
      const resource = gpulet.makeApiClient(ResourceV1Api);
      const name = nodeBSlice.metadata!.name!;
      const moved = await rejection(resource.replaceResourceSlice({ name, body: { ...nodeBSlice, spec: { ...nodeBSlice.spec, nodeName: NODE_A } } }));
      expect(moved.code).toBe(422);
      expect(moved.message).toContain('spec.nodeName: Invalid value: "node-a": field is immutable');
      const asAdmin = await rejection(
        admin.makeApiClient(ResourceV1Api).replaceResourceSlice({ name, body: { ...nodeBSlice, spec: { ...nodeBSlice.spec, driver: 'other.example.com' } } }),
      );
      expect(asAdmin.code).toBe(422);
      expect(asAdmin.message).toContain('spec.driver: Invalid value: "other.example.com": field is immutable');
    });

    it("denies deleting node-b's slice", async () => {
      const r = await rejection(gpulet.makeApiClient(ResourceV1Api).deleteResourceSlice({ name: nodeBSlice.metadata!.name! }));
      expect(r.code).toBe(403);
      expect(r.message).toContain(`${denial}: gpulet running on node 'node-a' may only write ResourceSlices with spec.nodeName 'node-a', not 'node-b'`);
      const still = await admin.makeApiClient(ResourceV1Api).readResourceSlice({ name: nodeBSlice.metadata!.name! });
      expect(still.metadata?.uid).toBe(nodeBSlice.metadata?.uid);
    });

    it("denies node-a's slices of another driver", async () => {
      const spec = built(manyGpus(1), NODE_A)[0]!;
      const other = { ...spec, metadata: { name: 'other-driver-node-a' }, spec: { ...spec.spec, driver: 'other.example.com' } };
      const r = await rejection(gpulet.makeApiClient(ResourceV1Api).createResourceSlice({ body: other }));
      expect(r.code).toBe(403);
      expect(r.message).toContain("gpulet may only write ResourceSlices of driver gpu.gpulet.dev, not 'other.example.com'");
    });

    it('denies a token that names no node (not bound to a pod), even for its own slices', async () => {
      const token = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace: NAMESPACE,
        name: SERVICE_ACCOUNT,
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      const unbound = tokenKubeConfig(admin, issued(token.status?.token), 'unbound');
      const spec = built(manyGpus(1), NODE_A)[0]!;
      const r = await rejection(unbound.makeApiClient(ResourceV1Api).createResourceSlice({ body: { ...spec } }));
      expect(r.code).toBe(403);
      expect(r.message).toContain("gpulet's service account token carries no node name");
    });
  });
});
