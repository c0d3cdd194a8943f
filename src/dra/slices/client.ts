/**
 * The few API calls the slice publisher makes, over src/k8s/rest.ts (resource.k8s.io/v1 and core/v1; the
 * object types are @kubernetes/client-node's, imported as types only: nothing of it loads at run time), behind a small interface so the reconcile logic can be driven by a fake. Every failure becomes an
 * {@link ApiError} carrying the HTTP status (when there was a response) and naming the call; every call is
 * bounded by a timeout.
 */
import type { V1Node, V1ResourceSlice, V1ResourceSliceList } from '@kubernetes/client-node';
import { kubeRequest, KubeStatusError, pathOf, type KubeConnection } from '../../k8s/rest.js';
import { ApiError, errorMessage } from '../../errors.js';
import { withTimeout } from '../../util/timeout.js';

/** API calls of the publisher. */
export interface SliceClient {
  /** Node `metadata.uid`, or undefined when the Node does not exist (404). */
  nodeUid(nodeName: string): Promise<string | undefined>;
  /** Every ResourceSlice with `spec.nodeName=<node>` and `spec.driver=<driver>` (field selector, all pages). */
  list(driverName: string, nodeName: string): Promise<V1ResourceSlice[]>;
  /** POST a slice (metadata.generateName set); returns the stored object. */
  create(body: V1ResourceSlice): Promise<V1ResourceSlice>;
  /** PUT a slice (metadata.name and resourceVersion set: optimistic concurrency, 409 on conflict). */
  replace(body: V1ResourceSlice): Promise<V1ResourceSlice>;
  /** DELETE with a uid precondition; a slice already gone (404) counts as deleted. */
  delete(name: string, uid: string): Promise<void>;
}

/** Default bound of one API call, ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** HTTP status of a failed call, when the server answered. */
export function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof ApiError) return err.status;
  if (err instanceof KubeStatusError) return err.code;
  return undefined;
}

/** Run `call`, mapping failures to ApiError (`what` names the call) and bounding it by `timeoutMs`. */
async function guarded<T>(what: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
  try {
    return await withTimeout(call(), timeoutMs, () => {
      throw new ApiError(`${what}: no answer from the API server within ${timeoutMs} ms`);
    });
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const status = err instanceof KubeStatusError ? err.code : undefined;
    const detail = err instanceof KubeStatusError ? statusMessage(err.body) : errorMessage(err);
    throw new ApiError(`${what} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${detail}`, status, { cause: err });
  }
}

/** The `message` of a Kubernetes `Status` body, or the body itself. */
function statusMessage(body: unknown): string {
  if (typeof body === 'string') {
    try {
      return statusMessage(JSON.parse(body) as unknown);
    } catch {
      return body.slice(0, 300);
    }
  }
  if (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string') return body.message;
  return JSON.stringify(body)?.slice(0, 300) ?? 'no body';
}

/**
 * A {@link SliceClient} over a connection (in-cluster, a kubeconfig file, or the embedded dev server's).
 * Paths: `GET /api/v1/nodes/<name>`, `GET|POST /apis/resource.k8s.io/v1/resourceslices`, `PUT|DELETE
 * .../resourceslices/<name>` (k8s.io/api resource/v1 ResourceSlice is cluster-scoped).
 * @param timeoutMs bound of each call (default 30 s)
 */
export function createSliceClient(conn: KubeConnection, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): SliceClient {
  return {
    async nodeUid(nodeName) {
      try {
        const node = await guarded(`GET node ${nodeName}`, timeoutMs, () => kubeRequest<V1Node>(conn, { method: 'GET', path: `/api/v1/nodes${pathOf(nodeName)}`, timeoutMs }));
        return node.metadata?.uid;
      } catch (err) {
        if (httpStatusOf(err) === 404) return undefined;
        throw err;
      }
    },
    async list(driverName, nodeName) {
      const fieldSelector = `spec.nodeName=${nodeName},spec.driver=${driverName}`;
      const out: V1ResourceSlice[] = [];
      let cont: string | undefined;
      do {
        const page = await guarded(`LIST resourceslices (${fieldSelector})`, timeoutMs, () =>
          kubeRequest<V1ResourceSliceList>(conn, { method: 'GET', path: '/apis/resource.k8s.io/v1/resourceslices', query: { fieldSelector, limit: 500, continue: cont }, timeoutMs }),
        );
        if (!Array.isArray(page.items)) throw new ApiError(`LIST resourceslices (${fieldSelector}): the answer has no items list`);
        out.push(...page.items);
        cont = page.metadata?._continue ?? (page.metadata as { continue?: string } | undefined)?.continue;
        if (cont === '') cont = undefined;
      } while (cont !== undefined);
      // Defensive: a server that ignores the field selector must not make us touch other drivers' slices.
      return out.filter((s) => s.spec.nodeName === nodeName && s.spec.driver === driverName);
    },
    create(body) {
      return guarded(`POST resourceslice ${body.metadata?.generateName ?? ''}*`, timeoutMs, () => kubeRequest<V1ResourceSlice>(conn, { method: 'POST', path: '/apis/resource.k8s.io/v1/resourceslices', body, timeoutMs }));
    },
    replace(body) {
      const name = body.metadata?.name ?? '';
      return guarded(`PUT resourceslice ${name}`, timeoutMs, () => kubeRequest<V1ResourceSlice>(conn, { method: 'PUT', path: `/apis/resource.k8s.io/v1/resourceslices${pathOf(name)}`, body, timeoutMs }));
    },
    async delete(name, uid) {
      try {
        await guarded(`DELETE resourceslice ${name}`, timeoutMs, () =>
          kubeRequest<unknown>(conn, { method: 'DELETE', path: `/apis/resource.k8s.io/v1/resourceslices${pathOf(name)}`, body: { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid } }, timeoutMs }),
        );
      } catch (err) {
        if (httpStatusOf(err) === 404) return;
        throw err;
      }
    },
  };
}
