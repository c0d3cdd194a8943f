/**
 * Allocated ResourceClaims for the prepare benchmark, made the way dev/demo.ts makes them: the user's
 * create (resource.k8s.io/v1 ResourceClaim), then the scheduler's status update with
 * `status.allocation.devices.results[]` (driver, pool, device) and `status.reservedFor` (a pod).
 */
import { randomUUID } from 'node:crypto';
import { ResourceV1Api, type KubeConfig, type ResourceV1ResourceClaim } from '@kubernetes/client-node';
import type { ClaimRef } from '../src/model/types.js';
import { claimFromApi } from '../src/state/claim-source.js';

/** What to allocate. */
export interface ClaimPlan {
  readonly namespace: string;
  readonly name: string;
  /** DRA device names from the node's pool, e.g. `gpu-0`. */
  readonly devices: readonly string[];
}

/**
 * Create and allocate claims (a few requests in flight at a time).
 * @returns the kubelet's view of each claim (namespace, name, uid), in plan order, checked as gpulet checks a
 *   claim read from the API server (`claimFromApi`)
 * @throws the client-node ApiException when the API server refuses a create or status update
 */
export async function createAllocatedClaims(
  kubeConfig: KubeConfig,
  driverName: string,
  poolName: string,
  plans: readonly ClaimPlan[],
): Promise<ClaimRef[]> {
  const api = kubeConfig.makeApiClient(ResourceV1Api);
  const one = async (plan: ClaimPlan): Promise<ClaimRef> => {
    const created = await api.createNamespacedResourceClaim({
      namespace: plan.namespace,
      body: {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: plan.name },
        spec: { devices: { requests: [{ name: 'gpus', exactly: { deviceClassName: driverName, count: plan.devices.length } }] } },
      },
    });
    const allocated: ResourceV1ResourceClaim = {
      ...created,
      status: {
        allocation: {
          devices: { results: plan.devices.map((device) => ({ request: 'gpus', driver: driverName, pool: poolName, device })) },
        },
        reservedFor: [{ resource: 'pods', name: `${plan.name}-pod`, uid: randomUUID() }],
      },
    };
    const claim = await api.replaceNamespacedResourceClaimStatus({ namespace: plan.namespace, name: plan.name, body: allocated });
    return claimFromApi(claim).metadata;
  };
  const out: ClaimRef[] = [];
  const inFlight = 8;
  for (let i = 0; i < plans.length; i += inFlight) out.push(...(await Promise.all(plans.slice(i, i + inFlight).map(one))));
  return out;
}
