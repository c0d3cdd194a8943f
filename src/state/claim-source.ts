/**
 * Where prepare reads ResourceClaims from: the API server in production (`KubeClaimSource`), a map in tests.
 * Only `GET resource.k8s.io/v1 namespaces/<ns>/resourceclaims/<name>` is needed (docs/contracts.md §2: the
 * upstream kubelet-plugin helper GETs each claim on prepare; unprepare does no lookup).
 */
import { ApiException, ResourceV1Api, type KubeConfig } from '@kubernetes/client-node';
import { ApiError, errorMessage } from '../errors.js';

/**
 * The parts of a resource.k8s.io/v1 ResourceClaim that prepare reads. `status` is deliberately `unknown`:
 * it comes off the wire and is validated field by field in `allocation.ts` (bad input never crashes).
 * A `ResourceV1ResourceClaim` of @kubernetes/client-node, or the plain JSON, is assignable to it.
 */
export interface ResourceClaimLike {
  readonly metadata?: {
    readonly name?: string | undefined;
    readonly namespace?: string | undefined;
    readonly uid?: string | undefined;
  };
  readonly status?: unknown;
}

/** Reads ResourceClaims. */
export interface ClaimSource {
  /**
   * @throws ApiError with `status` 404 when the claim does not exist, the HTTP status for other API
   *   errors, and no status when the server could not be reached (retryable).
   */
  get(namespace: string, name: string): Promise<ResourceClaimLike>;
  /**
   * Every ResourceClaim of the cluster (all namespaces), for rebuilding the prepared state after the
   * checkpoint was lost. Optional: a source without it cannot rebuild (the rebuild reports that).
   * @throws ApiError as `get` does.
   */
  list?(): Promise<readonly ResourceClaimLike[]>;
}

/** Page size of {@link KubeClaimSource.list} (`limit`; servers may ignore it and answer everything). */
export const LIST_PAGE_SIZE = 500;
/** Upper bound on pages of one list, so a server that keeps answering `continue` cannot loop us forever. */
export const LIST_MAX_PAGES = 1000;

/** `ClaimSource` backed by the Kubernetes API (`ResourceV1Api.readNamespacedResourceClaim`). */
export class KubeClaimSource implements ClaimSource {
  private readonly api: ResourceV1Api;

  /** @param kubeConfig a loaded KubeConfig (in-cluster, file, or the embedded dev server's). */
  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(ResourceV1Api);
  }

  /** GET the claim. Errors are mapped by {@link toApiError}. */
  async get(namespace: string, name: string): Promise<ResourceClaimLike> {
    try {
      return await this.api.readNamespacedResourceClaim({ name, namespace });
    } catch (err) {
      throw toApiError(err, `resourceclaim ${namespace}/${name}`);
    }
  }

  /**
   * LIST resource.k8s.io/v1 resourceclaims in all namespaces (`listResourceClaimForAllNamespaces`), in
   * pages of {@link LIST_PAGE_SIZE} following `metadata.continue`. Needs `list` on resourceclaims (granted
   * by daemonset/02-clusterrole.yaml). Errors are mapped by {@link toApiError}.
   */
  async list(): Promise<readonly ResourceClaimLike[]> {
    const items: ResourceClaimLike[] = [];
    let token: string | undefined;
    for (let page = 0; page < LIST_MAX_PAGES; page++) {
      let res;
      try {
        res = await this.api.listResourceClaimForAllNamespaces({ limit: LIST_PAGE_SIZE, ...(token ? { _continue: token } : {}) });
      } catch (err) {
        throw toApiError(err, 'resourceclaims (all namespaces)', 'list');
      }
      items.push(...res.items);
      token = res.metadata?._continue;
      if (!token) return items;
    }
    throw new ApiError(`listing resourceclaims did not end after ${LIST_MAX_PAGES} pages; retryable`);
  }
}

/**
 * Map an error of @kubernetes/client-node to an `ApiError` that says what to do:
 * 404 → "not found"; 401/403 → RBAC hint; 5xx and 429 → retryable; no HTTP status → unreachable, retryable.
 */
export function toApiError(err: unknown, what: string, verb: 'get' | 'list' = 'get'): ApiError {
  if (err instanceof ApiException) {
    const code = (err as ApiException<unknown>).code;
    const detail = statusMessage((err as ApiException<unknown>).body);
    const suffix = detail ? `: ${detail}` : '';
    if (code === 404) return new ApiError(`${what} not found (HTTP 404)${suffix}`, 404, { cause: err });
    if (code === 401 || code === 403) {
      return new ApiError(
        `reading ${what} was refused (HTTP ${code})${suffix}; check the service account's RBAC ` +
          `(${verb} on resource.k8s.io resourceclaims)`,
        code,
        { cause: err },
      );
    }
    if (code >= 500 || code === 429) {
      return new ApiError(`API server error reading ${what} (HTTP ${code})${suffix}; retryable, the kubelet will retry`, code, {
        cause: err,
      });
    }
    return new ApiError(`reading ${what} failed (HTTP ${code})${suffix}`, code, { cause: err });
  }
  return new ApiError(
    `API server unreachable reading ${what}: ${errorMessage(err)}${causeDetail(err)}; retryable, the kubelet will retry ` +
      `(check the kubeconfig / in-cluster config and network)`,
    undefined,
    { cause: err },
  );
}

/** The underlying socket error of a failed fetch (`fetch failed` hides it in `cause`), e.g. ` (connect ECONNREFUSED 127.0.0.1:6443)`. */
function causeDetail(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (!(cause instanceof Error)) return '';
  const code = (cause as NodeJS.ErrnoException).code;
  return ` (${cause.message}${code && !cause.message.includes(code) ? `, ${code}` : ''})`;
}

/** `message` of a Kubernetes `Status` body (as object or JSON string), if any. */
function statusMessage(body: unknown): string | undefined {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.length > 0 && body.length <= 300 ? body : undefined;
    }
  }
  if (typeof value === 'object' && value !== null && 'message' in value) {
    const message = (value).message;
    // Bounded: a hostile or broken server must not blow the kubelet's 4 MiB response limit.
    if (typeof message === 'string') return message.length <= 300 ? message : `${message.slice(0, 300)}… (${message.length} characters)`;
  }
  return undefined;
}
