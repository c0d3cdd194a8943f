/**
 * Pods and claims on the upstream cluster of test/upstream/ (test/helpers/upstream-cluster.ts), as the
 * scheduler and the node agent handle them: gpulet started as a node's DRA driver, ResourceClaimTemplates and
 * pods made from plain objects, and waits for the states the real components announce through the API server
 * (a pod Running with the node agent's `gpulet.dev/cdi-devices` annotation, a pod the scheduler reports
 * unschedulable in its PodScheduled condition, a pod and its template's claim gone after a delete).
 */
import {
  ApiException, CoreV1Api, KubernetesObjectApi, ResourceV1Api, type KubeConfig, type ResourceV1ResourceClaim, type V1Device,
  type V1DeviceToleration, type V1Pod, type V1PodCondition,
} from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import { startAgent, type Agent } from '../../src/main.js';
import type { ClusterNode } from './upstream-cluster.js';
import { waitFor } from './wait.js';

/** The annotation the node agent writes on a running pod: container name → CDI device IDs (test/upstream/internal/node/pods.go). */
export const CDI_ANNOTATION = 'gpulet.dev/cdi-devices';
/** The driver name gpulet runs with by default (and the DeviceClasses of daemonset/06-deviceclasses.yaml select). */
export const DRIVER = 'gpu.gpulet.dev';
/** How long a pod may take to be scheduled, prepared and marked Running on a loaded 2-core machine. */
export const POD_TIMEOUT_MS = 90_000;

/**
 * Start gpulet as the DRA driver of `node` (README "Tested against the real Kubernetes": the `npm start --
 * --kube-api=kubeconfig ...` command, in process), with the mock backend, and wait until its slices are in
 * the API server. `extra` flags come last (e.g. `--pod-uid`, `--mock-machine`).
 */
export async function startGpulet(kubeconfig: string, node: ClusterNode, stateDir: string, logger: Logger, extra: readonly string[] = []): Promise<Agent> {
  const config = loadConfig(
    [
      '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig, '--node-name', node.name,
      '--plugin-registry-dir', node.registryDir, '--plugins-dir', node.pluginsDir, '--state-dir', stateDir,
      '--backend', 'mock', '--metrics-address', '127.0.0.1:0', '--log-level', 'silent', ...extra,
    ],
    {},
    stateDir,
  );
  const agent = await startAgent(config, logger);
  await agent.publisher.whenSynced();
  return agent;
}

/** A CEL selector or a toleration of one request of {@link claimTemplate}. */
export interface RequestSpec {
  readonly deviceClassName: string;
  readonly selectors?: readonly string[];
  readonly tolerations?: readonly V1DeviceToleration[];
}

/** A resource.k8s.io/v1 ResourceClaimTemplate with one request `gpu` for one device. */
export function claimTemplate(name: string, req: RequestSpec): Record<string, unknown> {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaimTemplate',
    metadata: { name, namespace: 'default' },
    spec: {
      spec: {
        devices: {
          requests: [{
            name: 'gpu',
            exactly: {
              deviceClassName: req.deviceClassName,
              allocationMode: 'ExactCount',
              count: 1,
              ...(req.selectors ? { selectors: req.selectors.map((expression) => ({ cel: { expression } })) } : {}),
              ...(req.tolerations ? { tolerations: req.tolerations } : {}),
            },
          }],
        },
      },
    },
  };
}

/** A pod whose container `main` uses one claim `claim` made from `template`. */
export function podWithTemplate(name: string, template: string, claim = 'gpu'): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      restartPolicy: 'Never',
      resourceClaims: [{ name: claim, resourceClaimTemplateName: template }],
      containers: [{ name: 'main', image: 'debian:bookworm-slim', resources: { claims: [{ name: claim }] } }],
    },
  };
}

/** Create objects in namespace `default` (their own namespace when they name one). */
export async function createAll(kc: KubeConfig, objects: readonly object[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const o of objects) {
    const obj = o as { metadata?: { namespace?: string } };
    await api.create({ ...obj, metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? 'default' } });
  }
}

/** A running pod, its claim (allocated) and what the node agent recorded for container `main`. */
export interface RunningPod {
  readonly pod: V1Pod;
  readonly claim: ResourceV1ResourceClaim;
  /** The allocated device of request `gpu` (the one result). */
  readonly device: { readonly driver: string; readonly pool: string; readonly device: string; readonly request: string };
  /** The CDI device IDs of container `main` (the `gpulet.dev/cdi-devices` annotation). */
  readonly cdiIds: readonly string[];
}

/** `waitRunning`'s claim name for the claim the scheduler made for a pod's extended resources (KEP-5004). */
export const EXTENDED_RESOURCE_CLAIM = '<extended resources>';

/** Wait until pod `name` runs with its CDI annotation; return it with its claim `claimName` (pod-level name) and allocation. */
export async function waitRunning(kc: KubeConfig, name: string, claimName = 'gpu', timeoutMs = POD_TIMEOUT_MS): Promise<RunningPod> {
  const core = kc.makeApiClient(CoreV1Api);
  const pod = await waitFor(
    async () => {
      const p = await core.readNamespacedPod({ namespace: 'default', name });
      return p.status?.phase === 'Running' && p.metadata?.annotations?.[CDI_ANNOTATION] !== undefined ? p : undefined;
    },
    { what: `pod ${name} to run with its CDI devices`, timeoutMs, detail: () => `pod ${name}` },
  );
  // KEP-5004: a pod that asks for a DeviceClass's extended resource has the claim the scheduler made for it in
  // status.extendedResourceClaimStatus (claimName EXTENDED_RESOURCE_CLAIM).
  const generated = claimName === EXTENDED_RESOURCE_CLAIM
    ? pod.status?.extendedResourceClaimStatus?.resourceClaimName
    : pod.status?.resourceClaimStatuses?.find((s) => s.name === claimName)?.resourceClaimName;
  if (generated === undefined) throw new Error(`pod ${name} runs but names no claim for ${claimName}`);
  const claim = await kc.makeApiClient(ResourceV1Api).readNamespacedResourceClaim({ namespace: 'default', name: generated });
  const results = claim.status?.allocation?.devices?.results ?? [];
  if (results.length !== 1) throw new Error(`claim ${generated} of pod ${name} has ${results.length} results, not 1`);
  const annotation = JSON.parse(pod.metadata!.annotations![CDI_ANNOTATION]!) as Record<string, string[]>;
  return { pod, claim, device: results[0]!, cdiIds: annotation['main'] ?? [] };
}

/**
 * Wait until the scheduler has reported pod `name` unschedulable: its PodScheduled condition False with
 * reason Unschedulable (pkg/scheduler/schedule_one.go handleSchedulingFailure). Returns the condition.
 */
export async function waitUnschedulable(kc: KubeConfig, name: string, timeoutMs = POD_TIMEOUT_MS): Promise<V1PodCondition> {
  const core = kc.makeApiClient(CoreV1Api);
  return waitFor(
    async () => {
      const p = await core.readNamespacedPod({ namespace: 'default', name });
      const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
      return c?.status === 'False' && c.reason === 'Unschedulable' ? c : undefined;
    },
    { what: `the scheduler to report pod ${name} unschedulable`, timeoutMs },
  );
}

/** Is the API's answer a 404? */
async function gone(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return true;
    throw err;
  }
}

/**
 * Delete pods and wait until they and the claims made for them from templates are gone (the node agent
 * unprepares a bound pod's claims and then deletes it; the garbage collector deletes its claims).
 */
export async function deletePods(kc: KubeConfig, names: readonly string[]): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const resource = kc.makeApiClient(ResourceV1Api);
  const claims: string[] = [];
  for (const name of names) {
    try {
      const p = await core.readNamespacedPod({ namespace: 'default', name });
      for (const s of p.status?.resourceClaimStatuses ?? []) if (s.resourceClaimName) claims.push(s.resourceClaimName);
      await core.deleteNamespacedPod({ namespace: 'default', name });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    }
  }
  for (const name of names) {
    await waitFor(() => gone(() => core.readNamespacedPod({ namespace: 'default', name })), { what: `pod ${name} to be gone`, timeoutMs: POD_TIMEOUT_MS });
  }
  for (const name of claims) {
    await waitFor(() => gone(() => resource.readNamespacedResourceClaim({ namespace: 'default', name })), {
      what: `claim ${name} to go with its pod`,
      timeoutMs: POD_TIMEOUT_MS,
    });
  }
}

/** The devices of `driver`'s slices for `node`, by name, as the API server stores them. */
export async function publishedDevices(kc: KubeConfig, node: string, driver = DRIVER): Promise<Map<string, V1Device>> {
  const slices = await kc.makeApiClient(ResourceV1Api).listResourceSlice({ fieldSelector: `spec.nodeName=${node},spec.driver=${driver}` });
  const out = new Map<string, V1Device>();
  for (const s of slices.items) for (const d of s.spec.devices ?? []) out.set(d.name, d);
  return out;
}
