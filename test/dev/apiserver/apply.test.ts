/**
 * Server-side apply of a ResourceClaim's `status.devices` on the embedded API server (dev/apiserver/apply.ts),
 * as gpulet's claim status writer does it (src/dra/claim-status/), through @kubernetes/client-node: the list
 * is merged by its keys (driver, device, pool, shareID) with ownership per field manager, as the real API
 * server does (test/upstream/claim-status.test.ts shows the real one): another manager's entry is kept, an
 * entry the manager leaves out is removed, the UID precondition holds, and apply needs a field manager.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../../dev/apiserver/server.js';
import { createClaimStatusClient } from '../../../src/dra/claim-status/client.js';
import { ClaimStatusWriter } from '../../../src/dra/claim-status/writer.js';
import { buildMockInventory, machineSpecByName } from '../../../src/gpu/mock/index.js';
import { silentLogger } from '../../../src/log.js';
import type { DnsLabel, DnsSubdomain, ObjectUid } from '../../../src/model/names.js';
import type { ClaimRef } from '../../../src/model/types.js';

const DRIVER = 'gpu.gpulet.dev';
const OTHER = 'nic.example.com';

describe('embedded API server: server-side apply of status.devices', () => {
  let server: EmbeddedApiServer;
  let kc: k8s.KubeConfig;
  let resource: k8s.ResourceV1Api;

  beforeAll(async () => {
    server = await startApiServer({ nodes: ['node-a'] });
    kc = new k8s.KubeConfig();
    kc.loadFromString(server.kubeconfig());
    resource = kc.makeApiClient(k8s.ResourceV1Api);
  });

  afterAll(async () => {
    await server.close();
  });

  /** A claim allocated with gpu-1 of gpulet and nic-0 of another driver on node-a. */
  async function allocatedClaim(name: string): Promise<ClaimRef> {
    const created = await resource.createNamespacedResourceClaim({
      namespace: 'default',
      body: { metadata: { name }, spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: DRIVER } }, { name: 'nic', exactly: { deviceClassName: OTHER } }] } } },
    });
    const stored = server.get('resource.k8s.io/v1', 'ResourceClaim', 'default', name)!;
    server.updateStatus({
      ...stored,
      status: {
        allocation: {
          devices: {
            results: [
              { request: 'gpu', driver: DRIVER, pool: 'node-a', device: 'gpu-1' },
              { request: 'nic', driver: OTHER, pool: 'node-a', device: 'nic-0' },
            ],
          },
        },
      },
    });
    return { namespace: 'default' as DnsLabel, name: name as DnsSubdomain, uid: created.metadata!.uid! as ObjectUid };
  }

  const applyStatus = (ref: ClaimRef, devices: unknown[] | undefined, manager: string | undefined, uid: string = ref.uid) =>
    resource.patchNamespacedResourceClaimStatus(
      {
        namespace: ref.namespace,
        name: ref.name,
        body: { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name: ref.name, namespace: ref.namespace, uid }, ...(devices === undefined ? {} : { status: { devices } }) },
        ...(manager === undefined ? {} : { fieldManager: manager }),
        force: true,
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
    );
  const devicesOf = async (ref: ClaimRef) =>
    ((await resource.readNamespacedResourceClaim({ namespace: ref.namespace, name: ref.name })).status?.devices ?? []).map((d) => `${d.driver}/${d.pool}/${d.device}`);

  it("merges by key: another manager's entry stays; what a manager leaves out goes; the allocation is untouched", async () => {
    const ref = await allocatedClaim('merge');
    await applyStatus(ref, [{ driver: OTHER, pool: 'node-a', device: 'nic-0', data: { mac: '02:00:00:00:00:01' } }], OTHER);
    await applyStatus(ref, [{ driver: DRIVER, pool: 'node-a', device: 'gpu-1', data: { uuid: 'GPU-1' } }], DRIVER);
    expect(await devicesOf(ref)).toEqual([`${OTHER}/node-a/nic-0`, `${DRIVER}/node-a/gpu-1`]);
    // The same entry again with new data: replaced in place, not duplicated.
    await applyStatus(ref, [{ driver: DRIVER, pool: 'node-a', device: 'gpu-1', data: { uuid: 'GPU-1b' } }], DRIVER);
    const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: 'merge' });
    expect(claim.status?.devices?.map((d): unknown => d.data)).toEqual([{ mac: '02:00:00:00:00:01' }, { uuid: 'GPU-1b' }]);
    expect(claim.metadata?.managedFields?.map((m) => [m.manager, m.operation, m.subresource])).toEqual([
      [OTHER, 'Apply', 'status'],
      [DRIVER, 'Apply', 'status'],
    ]);
    // Nothing applied by gpulet now: its entry goes, the other driver's stays, the allocation too.
    await applyStatus(ref, undefined, DRIVER);
    expect(await devicesOf(ref)).toEqual([`${OTHER}/node-a/nic-0`]);
    expect((await resource.readNamespacedResourceClaim({ namespace: 'default', name: 'merge' })).status?.allocation?.devices?.results).toHaveLength(2);
  });

  it('refuses an apply without a field manager (400) and one for another UID (409)', async () => {
    const ref = await allocatedClaim('refusals');
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        if (err instanceof k8s.ApiException) return err.code;
        throw err;
      }
      return 200;
    };
    expect(await code(applyStatus(ref, [], undefined))).toBe(400);
    expect(await code(applyStatus(ref, [], DRIVER, '00000000-0000-4000-8000-000000000000'))).toBe(409);
  });

  it("serves gpulet's claim status writer (what `npm start` runs): the entry written, then removed", async () => {
    const ref = await allocatedClaim('writer');
    const writer = new ClaimStatusWriter({
      client: createClaimStatusClient(kc, DRIVER),
      driverName: DRIVER,
      nodeName: 'node-a',
      inventory: () => buildMockInventory(machineSpecByName('dgx-h100'), 'node-a'),
      logger: silentLogger(),
    });
    writer.prepared(ref, [{ poolName: 'node-a', deviceName: 'gpu-1' }]);
    await writer.idle();
    const claim = await resource.readNamespacedResourceClaim({ namespace: 'default', name: 'writer' });
    expect(claim.status?.devices?.map((d) => [d.driver, d.device, d.conditions?.[0]?.type, d.conditions?.[0]?.status])).toEqual([[DRIVER, 'gpu-1', 'Ready', 'True']]);
    writer.unprepared(ref);
    await writer.idle();
    expect(await devicesOf(ref)).toEqual([]);
    await writer.stop();
  });
});
