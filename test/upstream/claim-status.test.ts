/**
 * A ResourceClaim's `status.devices` written by gpulet (KEP-4817, issue 10 item 3), on the upstream cluster of
 * test/upstream/ and as the DaemonSet's own identity (daemonset/ installed; a pod-bound token of the gpulet
 * ServiceAccount for a pod on node-a, so RBAC, the API server's per-driver check of status.devices and the
 * admission policy all apply):
 * - a pod using a standalone claim runs (the kubelet's DRA manager prepares it through gpulet); the claim then
 *   carries gpulet's entry for the allocated device, Ready, with the device's facts from the mock inventory,
 *   applied by the field manager gpu.gpulet.dev on the status subresource; when the pod is deleted the claim is
 *   unprepared and the entry removed, while the claim stays allocated (a second consumer keeps it reserved);
 * - another driver's entry on the same claim is kept through gpulet's writes and removal;
 * - a claim allocated on another node is refused by the API server (gpulet holds associated-node:patch only);
 * - with broader RBAC granted, the ValidatingAdmissionPolicy gpulet-resourceclaim-status still refuses another
 *   node's claim, another driver's entry and a change of the claim's reservations.
 *
 * Skipped with a notice only where Go is absent.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  ResourceV1Api,
  setHeaderOptions,
  type KubeConfig,
  type ResourceV1ResourceClaim,
} from '@kubernetes/client-node';
import { createClaimStatusClient } from '../../src/dra/claim-status/client.js';
import { ClaimStatusWriter } from '../../src/dra/claim-status/writer.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { devicesByName } from '../../src/model/devices.js';
import type { ClaimRef } from '../../src/model/types.js';
import type { DnsLabel, DnsSubdomain, ObjectUid } from '../../src/model/names.js';
import { installDocs } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, tokenKubeConfig, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { startGpulet } from '../helpers/upstream-pods.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/claim-status.test.ts: ${unavailable}`);

const NODE = 'node-a';
const DRIVER = 'gpu.gpulet.dev';
const OTHER_DRIVER = 'nic.example.com';
const NAMESPACE = 'gpulet-system';
const SERVICE_ACCOUNT = 'gpulet';
const POLICY = 'gpulet-resourceclaim-status';

interface Entry {
  driver: string;
  pool: string;
  device: string;
  conditions?: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: unknown }>;
  data?: Record<string, unknown>;
}

/** The rejection of `call` (fails the test when it succeeds): HTTP status and the Status message. */
async function rejection(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await call;
  } catch (err) {
    if (err instanceof ApiException) {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
      return { code: err.code, message: body.message ?? '' };
    }
    const status = (err as { status?: number }).status;
    if (typeof status === 'number') return { code: status, message: (err as Error).message };
    throw err;
  }
  throw new Error('the API server accepted a request it should have rejected');
}

const refOf = (claim: ResourceV1ResourceClaim): ClaimRef => ({
  namespace: claim.metadata!.namespace! as DnsLabel,
  name: claim.metadata!.name! as DnsSubdomain,
  uid: claim.metadata!.uid! as ObjectUid,
});

describe.skipIf(unavailable !== undefined)("gpulet writes its claims' status.devices (test/upstream cluster)", () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;
  let gpulet: KubeConfig;
  let admin: ResourceV1Api;
  let core: CoreV1Api;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    admin = cluster.admin.makeApiClient(ResourceV1Api);
    core = cluster.admin.makeApiClient(CoreV1Api);
    const objects = KubernetesObjectApi.makeApiClient(cluster.admin);
    for (const { obj } of installDocs()) await objects.create(obj);

    // The agent's pod on node-a and the pod-bound token the kubelet would mount into it.
    const pod = await core.createNamespacedPod({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'gpulet-node-a' },
        spec: { nodeName: NODE, serviceAccountName: SERVICE_ACCOUNT, automountServiceAccountToken: false, containers: [{ name: 'gpulet', image: 'ghcr.io/gpulet/gpulet:0.1.0' }] },
      },
    });
    await waitFor(async () => (await core.readNamespacedPod({ namespace: NAMESPACE, name: 'gpulet-node-a' })).status?.phase === 'Running', {
      what: "the node agent to run gpulet's pod",
      timeoutMs: 60_000,
    });
    const token = await core.createNamespacedServiceAccountToken({
      namespace: NAMESPACE,
      name: SERVICE_ACCOUNT,
      body: { spec: { audiences: [], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata!.name!, uid: pod.metadata!.uid! } } },
    });
    gpulet = tokenKubeConfig(cluster.admin, token.status!.token!, 'gpulet');

    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-claim-status-'));
    const kubeconfig = path.join(stateDir, 'kubeconfig');
    await writeFile(kubeconfig, gpulet.exportConfig(), { mode: 0o600 });
    const node = cluster.nodes.find((n) => n.name === NODE)!;
    agent = await startGpulet(kubeconfig, node, stateDir, silentLogger());
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 90_000);

  const ours = (c: ResourceV1ResourceClaim): Entry[] => ((c.status?.devices ?? []) as Entry[]).filter((d) => d.driver === DRIVER);
  const read = (name: string) => admin.readNamespacedResourceClaim({ namespace: 'default', name });

  it("writes the prepared device's entry (Ready, facts from the inventory) and removes it at unprepare", async () => {
    await admin.createNamespacedResourceClaim({
      namespace: 'default',
      body: { metadata: { name: 'standalone-gpu' }, spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: DRIVER } }] } } },
    });
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'status-pod' },
        spec: {
          resourceClaims: [{ name: 'gpu', resourceClaimName: 'standalone-gpu' }],
          containers: [{ name: 'main', image: 'debian:bookworm-slim', resources: { claims: [{ name: 'gpu' }] } }],
        },
      },
    });
    await waitFor(async () => (await core.readNamespacedPod({ namespace: 'default', name: 'status-pod' })).status?.phase === 'Running', {
      what: 'the pod to run',
      timeoutMs: 60_000,
    });
    const claim = await waitFor(async () => {
      const c = await read('standalone-gpu');
      return ours(c).length > 0 ? c : undefined;
    }, { what: "gpulet's entry in the claim's status.devices" });
    const result = claim.status!.allocation!.devices!.results![0]!;
    expect(result).toMatchObject({ driver: DRIVER, pool: NODE });

    // The facts of the allocated device, from the mock machine the agent runs (dgx-h100, seeded by the node name).
    const inventory = buildMockInventory(machineSpecByName('dgx-h100'), NODE);
    const device = devicesByName(inventory).get(result.device)!;
    expect(device.kind).toBe('gpu');
    expect(ours(claim)).toEqual([
      {
        driver: DRIVER,
        pool: NODE,
        device: result.device,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Prepared', message: `prepared by ${DRIVER} on node ${NODE}`, lastTransitionTime: expect.anything() }],
        data: {
          type: 'gpu',
          uuid: device.uuid,
          productName: device.gpu.productName,
          driverVersion: inventory.system.driverVersion,
          memory: device.gpu.memoryBytes,
        },
      },
    ]);
    // Server-side apply on the status subresource, by gpulet's field manager.
    expect(claim.metadata?.managedFields).toEqual(
      expect.arrayContaining([expect.objectContaining({ manager: DRIVER, operation: 'Apply', subresource: 'status' })]),
    );

    // A second consumer (a kind the resourceclaim controller does not check, so it keeps it) holds the claim,
    // so it stays allocated when the pod goes: the entry's removal is gpulet's, not the deallocation's.
    await admin.patchNamespacedResourceClaimStatus(
      {
        namespace: 'default',
        name: 'standalone-gpu',
        body: { status: { reservedFor: [...claim.status!.reservedFor!, { apiGroup: 'example.com', resource: 'widgets', name: 'w', uid: '0f7c5e3a-2b1d-4c9e-8a6f-1d2e3f4a5b6c' }] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const spec = path.join(stateDir, 'cdi', `k8s.gpu.gpulet.dev-claim_${claim.metadata!.uid!}.json`);
    expect(existsSync(spec)).toBe(true);
    await core.deleteNamespacedPod({ namespace: 'default', name: 'status-pod' });
    await waitFor(() => !existsSync(spec), { what: 'the claim to be unprepared (its CDI spec removed)', timeoutMs: 60_000 });
    await waitFor(async () => ours(await read('standalone-gpu')).length === 0, { what: "gpulet's entry to be removed" });
    // The pod's reservation goes too (the resourceclaim controller); the claim stays allocated, without the entry.
    const after = await waitFor(async () => {
      const c = await read('standalone-gpu');
      return c.status?.reservedFor?.length === 1 ? c : undefined;
    }, { what: "the pod's reservation to go" });
    expect(after.status?.reservedFor?.map((r) => r.resource)).toEqual(['widgets']);
    expect(after.status?.allocation?.devices?.results?.[0]?.device).toBe(result.device);
    expect(ours(after)).toEqual([]);
  });

  describe("the writer, as the DaemonSet's identity, on claims allocated by hand", () => {
    /** A claim for a GPU and a NIC of another driver, allocated on `node` with `gpu` and `nic-0`. */
    const allocated = async (name: string, node: string, gpu: string): Promise<ResourceV1ResourceClaim> => {
      await admin.createNamespacedResourceClaim({
        namespace: 'default',
        body: {
          metadata: { name },
          spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: DRIVER } }, { name: 'nic', exactly: { deviceClassName: 'nic.example.com' } }] } },
        },
      });
      const c = await read(name);
      return admin.replaceNamespacedResourceClaimStatus({
        namespace: 'default',
        name,
        body: {
          ...c,
          status: {
            allocation: {
              devices: {
                results: [
                  { request: 'gpu', driver: DRIVER, pool: node, device: gpu },
                  { request: 'nic', driver: OTHER_DRIVER, pool: node, device: 'nic-0' },
                ],
              },
              nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] },
            },
          },
        },
      });
    };
    /** Another driver's entry, applied by its own field manager (the administrator's identity). */
    const otherEntry = { driver: OTHER_DRIVER, pool: NODE, device: 'nic-0', data: { mac: '02:00:00:00:00:01' } };
    const applyOther = (c: ResourceV1ResourceClaim, entry: object = otherEntry, kc: KubeConfig = cluster.admin, manager = OTHER_DRIVER) =>
      kc.makeApiClient(ResourceV1Api).patchNamespacedResourceClaimStatus(
        { namespace: 'default', name: c.metadata!.name!, body: { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name: c.metadata!.name!, namespace: 'default' }, status: { devices: [entry] } }, fieldManager: manager, force: true },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      );
    const writer = (): ClaimStatusWriter =>
      new ClaimStatusWriter({
        client: createClaimStatusClient(gpulet, DRIVER),
        driverName: DRIVER,
        nodeName: NODE,
        inventory: () => buildMockInventory(machineSpecByName('dgx-h100'), NODE),
        logger: silentLogger(),
        maxAttempts: 2,
        backoff: { initialMs: 10, maxMs: 20 },
      });

    it("keeps another driver's entry through gpulet's write and removal", async () => {
      const claim = await allocated('two-drivers', NODE, 'gpu-3');
      await applyOther(claim);
      const w = writer();
      w.prepared(refOf(claim), [{ poolName: NODE, deviceName: 'gpu-3' }]);
      await w.idle();
      /** An entry as applied: client-node's model adds `conditions: null` to one that has none. */
      const plain = (e: Entry) => ({ driver: e.driver, pool: e.pool, device: e.device, data: e.data });
      const written = await read('two-drivers');
      expect((written.status?.devices as Entry[]).map((d) => `${d.driver}/${d.device}`).sort()).toEqual([`${DRIVER}/gpu-3`, `${OTHER_DRIVER}/nic-0`]);
      expect((written.status?.devices as Entry[]).filter((d) => d.driver === OTHER_DRIVER).map(plain)).toEqual([otherEntry]);
      w.unprepared(refOf(claim));
      await w.idle();
      const removed = await read('two-drivers');
      expect((removed.status?.devices as Entry[]).map(plain)).toEqual([otherEntry]);
      await w.stop();
    });

    it("is refused a claim allocated on another node (the API server's associated-node check)", async () => {
      const claim = await allocated('on-node-b', 'node-b', 'gpu-0');
      const client = createClaimStatusClient(gpulet, DRIVER);
      const entry = { driver: DRIVER, pool: 'node-b', device: 'gpu-0', conditions: [], data: { type: 'gpu', uuid: 'GPU-x', productName: 'x', driverVersion: '1', memory: 1 } } as const;
      const r = await rejection(client.apply(refOf(claim), [entry]));
      // The token names node-a, the claim is allocated on node-b: only arbitrary-node:patch would do, and
      // gpulet is granted associated-node:patch alone.
      expect(r.code).toBe(422);
      expect(r.message).toContain('changing status.devices requires resource="resourceclaims/driver", verb="[arbitrary-node:patch]"');
      // The writer gives up (a permanent refusal) and writes nothing.
      const w = writer();
      w.prepared(refOf(claim), [{ poolName: 'node-b', deviceName: 'gpu-0' }]);
      await w.idle();
      expect(ours(await read('on-node-b'))).toEqual([]);
      await w.stop();
    });

    it(`with broader RBAC, the admission policy ${POLICY} still refuses another node's claim, another driver's entry and the reservations`, async () => {
      // What a ClusterRole that grew too much would allow: any node's claims, any driver, the allocation.
      const rbac = cluster.admin.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createClusterRole({
        body: {
          metadata: { name: 'too-broad' },
          rules: [
            { apiGroups: ['resource.k8s.io'], resources: ['resourceclaims/driver'], verbs: ['associated-node:patch', 'arbitrary-node:patch'] },
            { apiGroups: ['resource.k8s.io'], resources: ['resourceclaims/binding'], verbs: ['patch'] },
          ],
        },
      });
      await rbac.createClusterRoleBinding({
        body: { metadata: { name: 'too-broad' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'too-broad' }, subjects: [{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: NAMESPACE }] },
      });
      const client = createClaimStatusClient(gpulet, DRIVER);
      const denial = `ValidatingAdmissionPolicy '${POLICY}' with binding '${POLICY}' denied request`;
      const onB = await read('on-node-b');
      const entry = { driver: DRIVER, pool: 'node-b', device: 'gpu-0', conditions: [], data: { type: 'gpu', uuid: 'GPU-x', productName: 'x', driverVersion: '1', memory: 1 } } as const;
      // RBAC now allows it (waited for: the authorizer's cache); the policy does not.
      const r = await waitFor(async () => {
        const x = await rejection(client.apply(refOf(onB), [entry]));
        return x.message.includes(denial) ? x : undefined;
      }, { what: 'the policy to be what refuses' });
      expect(r.message).toContain("gpulet running on node 'node-a' may only write status.devices of claims allocated on that node, not on 'node-b'");

      const onA = await allocated('policy-on-a', NODE, 'gpu-5');
      const other = await rejection(applyOther(onA, otherEntry, gpulet, DRIVER));
      expect(other.message).toContain(denial);
      expect(other.message).toContain('gpulet may only write status.devices entries of driver gpu.gpulet.dev');

      // (The allocation itself is immutable once set: the API server's validation refuses a change before
      // admission. reservedFor is not.)
      const reserved = await rejection(
        gpulet.makeApiClient(ResourceV1Api).patchNamespacedResourceClaimStatus(
          { namespace: 'default', name: 'policy-on-a', body: { status: { reservedFor: [{ resource: 'pods', name: 'someone', uid: '5d0b6c1e-0000-4000-8000-000000000001' }] } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
      );
      expect(reserved.message).toContain(denial);
      expect(reserved.message).toContain("gpulet may not change a ResourceClaim's status.allocation or status.reservedFor");

      // Its own entry on its own node's claim still goes through.
      await client.apply(refOf(onA), [{ driver: DRIVER, pool: NODE, device: 'gpu-5', conditions: [], data: { type: 'gpu', uuid: 'GPU-y', productName: 'y', driverVersion: '1', memory: 1 } }]);
      expect(ours(await read('policy-on-a')).map((d) => d.device)).toEqual(['gpu-5']);
    });
  });
});
