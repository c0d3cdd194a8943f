/**
 * The one API call of the claim status writer, over src/k8s/rest.ts, behind a small interface so the
 * writer can be driven by a fake:
 * - PATCH resource.k8s.io/v1 namespaces/<ns>/resourceclaims/<name>/status with `Content-Type: application/apply-patch+yaml` (server-side
 *   apply, `patchNamespacedResourceClaimStatus`, `fieldManager` = the driver name, `force=true`): the
 *   applied object carries `metadata.uid` (a precondition: a claim re-created under the same name answers
 *   409) and only gpulet's own `status.devices` entries. The list is `+listType=map` (keys driver, device,
 *   pool, shareID), so the API server merges it by key: other drivers' entries are theirs and stay; entries
 *   gpulet applied before and leaves out are removed (the field manager owned them).
 *
 * RBAC (daemonset/02-clusterrole.yaml): `patch` on `resourceclaims/status`, and, since Kubernetes 1.36
 * (feature DRAResourceClaimGranularStatusAuthorization, beta, on by default), `associated-node:patch` on the
 * synthetic `resourceclaims/driver` with resourceName = the driver name: the API server authorizes a change of
 * `status.devices` per driver, with the `associated-node:` verb when the ServiceAccount's token names the node
 * the claim is allocated on (k8s.io/kubernetes v1.37.2 pkg/registry/resource/utils.go
 * `AuthorizedForDeviceStatus`).
 *
 * Every failure becomes an {@link ApiError} with the HTTP status (when the server answered); every call is
 * bounded in time.
 */
import { kubeRequest, KubeStatusError, pathOf, type KubeConnection } from '../../k8s/rest.js';
import { ApiError, errorMessage } from '../../errors.js';
import type { ClaimRef } from '../../model/types.js';
import { withTimeout } from '../../util/timeout.js';
import type { DeviceStatusEntry } from './build.js';

/** The call the writer makes. */
export interface ClaimStatusClient {
  /**
   * Server-side apply of `entries` as this driver's `status.devices` (empty: remove them all).
   * @throws ApiError with the HTTP status (404: no such claim; 409: its UID is not `ref.uid`), or without one
   *   when the server could not be reached or did not answer in time.
   */
  apply(ref: ClaimRef, entries: readonly DeviceStatusEntry[]): Promise<void>;
}

/** Bound of one call, ms. */
export const STATUS_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The server-side apply body for `ref`'s status: apiVersion, kind, metadata (name, namespace and uid as a
 * precondition) and `status.devices` = `entries`; with no entries, no `status` at all (the field manager then
 * owns nothing in the list, so the API server removes what it applied before).
 */
export function applyBody(ref: ClaimRef, entries: readonly DeviceStatusEntry[]): Record<string, unknown> {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name: ref.name, namespace: ref.namespace, uid: ref.uid },
    ...(entries.length === 0 ? {} : { status: { devices: entries } }),
  };
}

async function guarded<T>(what: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
  try {
    return await withTimeout(call(), timeoutMs, () => {
      throw new ApiError(`${what}: no answer from the API server within ${timeoutMs} ms`);
    });
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const status = err instanceof KubeStatusError ? err.code : undefined;
    throw new ApiError(`${what} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${detailOf(err)}`, status, { cause: err });
  }
}

/** The `message` of a Kubernetes Status body (bounded), or the error's message. */
function detailOf(err: unknown): string {
  if (!(err instanceof KubeStatusError)) return errorMessage(err);
  const raw: unknown = err.body;
  let body: unknown = raw;
  if (typeof raw === 'string') {
    try {
      body = JSON.parse(raw) as unknown;
    } catch {
      return raw.slice(0, 300);
    }
  }
  const message = typeof body === 'object' && body !== null && 'message' in body ? body.message : undefined;
  return typeof message === 'string' ? message.slice(0, 500) : `HTTP ${err.code}`;
}

/**
 * A {@link ClaimStatusClient} over a connection (in-cluster, a kubeconfig file, or the embedded dev server's, or
 * a client-node `KubeConfig`): `PATCH /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>/status
 * ?fieldManager=<driver>&force=true` with `Content-Type: application/apply-patch+yaml` (a JSON body is YAML).
 * @param fieldManager the server-side apply field manager: the driver name
 */
export function createClaimStatusClient(conn: KubeConnection, fieldManager: string, timeoutMs = STATUS_REQUEST_TIMEOUT_MS): ClaimStatusClient {
  return {
    async apply(ref, entries) {
      await guarded(`apply status.devices of resourceclaim ${ref.namespace}/${ref.name}`, timeoutMs, () =>
        kubeRequest<unknown>(conn, {
          method: 'PATCH',
          path: `/apis/resource.k8s.io/v1/namespaces${pathOf(ref.namespace)}/resourceclaims${pathOf(ref.name)}/status`,
          query: { fieldManager, force: true },
          body: applyBody(ref, entries),
          contentType: 'application/apply-patch+yaml',
          timeoutMs,
        }),
      );
    },
  };
}
