/**
 * Where prepare reads ResourceClaims from: the API server in production (`KubeClaimSource`), a map in tests.
 * Only `GET resource.k8s.io/v1 namespaces/<ns>/resourceclaims/<name>` is needed (docs/contracts.md §2: the
 * upstream kubelet-plugin helper GETs each claim on prepare; unprepare does no lookup), and a list of every
 * claim for a rebuild, page by page (`limit` / `continue`), so a rebuild never holds the whole cluster's claims.
 *
 * A claim read from the API server enters gpulet here: its metadata (namespace, name, uid) is checked once,
 * by {@link claimFromApi} (`parseClaimRef`, src/model/claim-ref.ts), and carried as a {@link ClaimRef}
 * afterwards. Its `status` stays `unknown`: `allocation.ts` validates it field by field.
 */
import { kubeRequest, KubeStatusError, pathOf, type KubeConnection } from '../k8s/rest.js';
import { parseClaimRef } from '../model/claim-ref.js';
import type { ClaimRef } from '../model/types.js';
import { ApiError, errorMessage, InvalidClaimError, quoteBounded } from '../errors.js';

/**
 * A ResourceClaim as the API server answers it, nothing checked yet: the parts prepare reads. A
 * `ResourceV1ResourceClaim` of @kubernetes/client-node, or the plain JSON, is assignable to it.
 */
export interface RawResourceClaim {
  readonly metadata?: {
    readonly name?: string | undefined;
    readonly namespace?: string | undefined;
    readonly uid?: string | undefined;
  };
  readonly status?: unknown;
}

/**
 * A ResourceClaim read from the API server, its metadata checked where it entered ({@link claimFromApi}).
 * `status` is deliberately `unknown`: it comes off the wire and is validated field by field in
 * `allocation.ts` (bad input never crashes).
 */
export interface ApiClaim {
  /** namespace (DNS label), name (DNS subdomain), uid (lower-case UUID). */
  readonly metadata: ClaimRef;
  readonly status?: unknown;
}

/** What one page of {@link ClaimSource.listPages} found. */
export interface ClaimList {
  /** The claims whose metadata passed the rules. */
  readonly claims: readonly ApiClaim[];
  /** One error per claim left out because its metadata broke them, naming it ({@link claimFromApi}). */
  readonly invalid: readonly InvalidClaimError[];
}

/** Reads ResourceClaims; every claim it returns went through {@link claimFromApi}. */
export interface ClaimSource {
  /**
   * @throws ApiError with `status` 404 when the claim does not exist, the HTTP status for other API
   *   errors, and no status when the server could not be reached (retryable); InvalidClaimError when the
   *   claim's metadata breaks the rules ({@link claimFromApi}).
   */
  get(namespace: string, name: string): Promise<ApiClaim>;
  /**
   * Every ResourceClaim of the cluster (all namespaces), one page at a time, for rebuilding the prepared state
   * after the checkpoint was lost: the next page is asked for only when the consumer pulls it, so a consumer
   * holds at most one page. A claim whose metadata breaks the rules is left out of its page and reported in
   * its `invalid`. Optional: a source without it cannot rebuild (the rebuild reports that).
   * @throws ApiError (from the iteration) as `get` does, or when the pages do not end.
   */
  listPages?(): AsyncIterable<ClaimList>;
}

/**
 * Where a claim read from the API server enters gpulet: check its metadata with the rules of
 * src/model/claim-ref.ts (namespace a DNS label, name a DNS subdomain, uid a lower-case UUID). Pure.
 * @returns the claim, its metadata a {@link ClaimRef} (other metadata fields dropped), its status as read.
 * @throws InvalidClaimError naming the claim as found (namespace/name and uid, quoted and cut), the first
 *   field that breaks its rule, the rule and the value, e.g. `resourceclaim "ml/odd" (uid "x") from the API
 *   server is unusable: metadata.uid is not a claim UID: must be a lower-case UUID ..., got "x"`.
 */
export function claimFromApi(raw: RawResourceClaim): ApiClaim {
  const { ref, problem } = parseClaimRef(raw.metadata);
  if (ref !== undefined) return { metadata: ref, status: raw.status };
  const { namespace, name, uid } = raw.metadata ?? {};
  const named = `${typeof namespace === 'string' ? namespace : '?'}/${typeof name === 'string' ? name : '?'}`;
  throw new InvalidClaimError(
    `resourceclaim ${quoteBounded(named)} (uid ${quoteBounded(uid ?? null)}) from the API server is unusable: ` +
      `metadata.${problem.field} ${problem.rule}, got ${quoteBounded(problem.value ?? null)}`,
  );
}

/**
 * Check every listed claim ({@link claimFromApi}); never throws.
 * @returns the claims that passed, in list order, and an error naming each one that did not.
 */
export function claimsFromApi(raws: readonly RawResourceClaim[]): ClaimList {
  const claims: ApiClaim[] = [];
  const invalid: InvalidClaimError[] = [];
  for (const raw of raws) {
    try {
      claims.push(claimFromApi(raw));
    } catch (err) {
      if (!(err instanceof InvalidClaimError)) throw err;
      invalid.push(err);
    }
  }
  return { claims, invalid };
}

/** Page size of {@link KubeClaimSource.listPages} (`limit`; servers may ignore it and answer everything). */
export const LIST_PAGE_SIZE = 500;
/** Upper bound on pages of one list, so a server that keeps answering `continue` cannot loop us forever. */
export const LIST_MAX_PAGES = 1000;

/** Bound of one claim GET or LIST page, ms. */
export const CLAIM_REQUEST_TIMEOUT_MS = 30_000;

/** `ClaimSource` backed by the Kubernetes API (`GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>`, src/k8s/rest.ts). */
export class KubeClaimSource implements ClaimSource {
  /**
   * @param conn where the API server is (src/k8s/kubeconfig.ts's, or a client-node `KubeConfig`)
   * @param timeoutMs bound of each request
   */
  constructor(
    private readonly conn: KubeConnection,
    private readonly timeoutMs = CLAIM_REQUEST_TIMEOUT_MS,
  ) {}

  /**
   * GET the claim and check it ({@link claimFromApi}).
   * @throws ApiError mapped by {@link toApiError}; InvalidClaimError when its metadata breaks the rules.
   */
  async get(namespace: string, name: string): Promise<ApiClaim> {
    let raw: RawResourceClaim;
    try {
      raw = await kubeRequest<RawResourceClaim>(this.conn, {
        method: 'GET',
        path: `/apis/resource.k8s.io/v1/namespaces${pathOf(namespace)}/resourceclaims${pathOf(name)}`,
        timeoutMs: this.timeoutMs,
      });
      if (typeof raw !== 'object' || raw === null) throw new Error('the answer is not an object');
    } catch (err) {
      throw toApiError(err, `resourceclaim ${namespace}/${name}`);
    }
    return claimFromApi(raw);
  }

  /**
   * LIST resource.k8s.io/v1 resourceclaims in all namespaces (`listResourceClaimForAllNamespaces`), in pages
   * of {@link LIST_PAGE_SIZE} following `metadata.continue`, one request per page pulled: an async generator,
   * so the caller holds one page at a time and stopping the iteration stops the listing. Needs `list` on
   * resourceclaims (granted by daemonset/02-clusterrole.yaml). Each claim is checked ({@link claimsFromApi}):
   * one whose metadata breaks the rules is left out of its page, in `invalid`.
   * @throws ApiError mapped by {@link toApiError}, or after {@link LIST_MAX_PAGES} pages that do not end.
   */
  async *listPages(): AsyncGenerator<ClaimList, void, undefined> {
    let token: string | undefined;
    for (let page = 0; page < LIST_MAX_PAGES; page++) {
      let res: { metadata?: { continue?: string }; items?: unknown };
      try {
        res = await kubeRequest<typeof res>(this.conn, {
          method: 'GET',
          path: '/apis/resource.k8s.io/v1/resourceclaims',
          query: { limit: LIST_PAGE_SIZE, continue: token || undefined },
          timeoutMs: this.timeoutMs,
        });
      } catch (err) {
        throw toApiError(err, 'resourceclaims (all namespaces)', 'list');
      }
      if (typeof res !== 'object' || res === null || !Array.isArray(res.items)) throw new ApiError('listing resourceclaims: the answer has no items list; retryable');
      token = res.metadata?.continue;
      yield claimsFromApi(res.items as RawResourceClaim[]);
      if (!token) return;
    }
    throw new ApiError(`listing resourceclaims did not end after ${LIST_MAX_PAGES} pages; retryable`);
  }
}

/**
 * Map an error of src/k8s/rest.ts (`KubeStatusError`: the server answered; any other: it could not be reached) to an `ApiError` that says what to do:
 * 404 → "not found"; 401/403 → RBAC hint; 5xx and 429 → retryable; no HTTP status → unreachable, retryable.
 */
export function toApiError(err: unknown, what: string, verb: 'get' | 'list' = 'get'): ApiError {
  if (err instanceof KubeStatusError) {
    const code = err.code;
    const detail = statusMessage(err.body);
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
