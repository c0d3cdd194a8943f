/**
 * Which containers use which ResourceClaim on this node, from the kubelet's pod-resources API v1 `List`
 * answer (k8s.io/kubelet pkg/apis/podresources/v1/api.proto `ListPodResourcesResponse`; the DRA fields
 * `ContainerResources.dynamic_resources` of KEP-3695). Pure: validation of the decoded message and the index.
 *
 * The kubelet fills `dynamic_resources` per container from the DRA manager's claim cache
 * (k8s.io/kubernetes pkg/kubelet/cm/container_manager_linux.go `GetDynamicResources`, on
 * pkg/kubelet/cm/dra/manager.go `GetContainerClaimInfos`): one `DynamicResource` per claim the container's
 * `resources.claims` name, with the ResourceClaim's own name (`claim_name`, not the pod's reference name)
 * and namespace, and one `ClaimResource` per allocated device (`driver_name`, `pool_name`, `device_name`).
 */
import { z } from 'zod';

/**
 * The kubelet's pod-resources socket with the default `--root-dir` /var/lib/kubelet
 * (pkg/kubelet/kubelet_getters.go `getPodResourcesDir` = <root-dir>/pod-resources; pkg/kubelet/apis/podresources/constants.go `Socket` = "kubelet").
 */
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

/** Upper bounds of what the index accepts (gpulet's; a node has at most a few hundred pods). */
export const POD_RESOURCES_LIMITS = {
  /** Pods in one `List` answer. */
  pods: 5_000,
  /** Containers of one pod (regular plus restartable init containers, the ones the kubelet lists). */
  containers: 500,
  /** Claims of one container. */
  claims: 256,
  /** Devices of one claim. */
  devices: 1_024,
} as const;

// Names are bounded as the API server bounds them: a DNS subdomain or label is ≤ 253 characters.
const name = z.string().max(253);
const claimResource = z.object({
  driver_name: name,
  pool_name: z.string().max(1_024), // a pool name is ≤ 253 chars per segment, `/`-separated (resource.k8s.io)
  device_name: name,
});
const dynamicResource = z.object({
  claim_name: name,
  claim_namespace: name,
  claim_resources: z.array(claimResource).max(POD_RESOURCES_LIMITS.devices),
});
const containerResources = z.object({
  name,
  dynamic_resources: z.array(dynamicResource).max(POD_RESOURCES_LIMITS.claims),
});
const podResources = z.object({
  name,
  namespace: name,
  containers: z.array(containerResources).max(POD_RESOURCES_LIMITS.containers),
});
/** The parts of `ListPodResourcesResponse` gpulet reads (proto-loader objects, `keepCase`, `defaults: true`). */
export const listPodResourcesResponseSchema = z.object({
  pod_resources: z.array(podResources).max(POD_RESOURCES_LIMITS.pods),
});
/** A validated `ListPodResourcesResponse` (the fields gpulet reads). */
export type ListPodResourcesResponse = z.infer<typeof listPodResourcesResponseSchema>;

/** The containers using each claim of our driver: `containersOf(pod, claim)` answers from it. */
export interface ClaimContainersIndex {
  /**
   * Names of the containers of pod `namespace`/`pod` that use the ResourceClaim `claimName` (in the pod's
   * namespace) with at least one device of our driver and pool; in the kubelet's order (restartable init
   * containers, then containers). Undefined when the kubelet lists no such container.
   */
  containersOf(namespace: string, pod: string, claimName: string): readonly string[] | undefined;
  /** How many (pod, claim) pairs the index holds. */
  readonly size: number;
}

const key = (namespace: string, pod: string, claim: string): string => `${namespace}/${pod}/${claim}`;

/**
 * Index a validated answer: keep the claims that hold a device of `driverName` in `poolName`
 * (`ClaimResource.driver_name`, `pool_name`: the triplet with `device_name` names a device, api.proto) and
 * whose `claim_namespace` is the pod's (a pod can only reference claims of its own namespace).
 */
export function indexClaimContainers(res: ListPodResourcesResponse, driverName: string, poolName: string): ClaimContainersIndex {
  const map = new Map<string, string[]>();
  for (const pod of res.pod_resources) {
    for (const container of pod.containers) {
      for (const claim of container.dynamic_resources) {
        if (claim.claim_namespace !== pod.namespace) continue;
        if (!claim.claim_resources.some((r) => r.driver_name === driverName && r.pool_name === poolName)) continue;
        const k = key(pod.namespace, pod.name, claim.claim_name);
        const list = map.get(k) ?? [];
        if (!list.includes(container.name)) list.push(container.name);
        map.set(k, list);
      }
    }
  }
  return {
    containersOf: (namespace, pod, claimName) => map.get(key(namespace, pod, claimName)),
    size: map.size,
  };
}

/** The index of nothing: every `containersOf` is undefined (no `container` label). */
export const EMPTY_CLAIM_CONTAINERS: ClaimContainersIndex = { containersOf: () => undefined, size: 0 };
