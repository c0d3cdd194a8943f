/**
 * Pure translation between DRAPlugin wire messages (kubernetes/kubelet pkg/apis/dra/v1 and v1beta1) and
 * the {@link ClaimPreparer} contract (src/model/types.ts): request validation, de-duplication, and the
 * response maps that must hold an entry for every claim of the request (keyed by claim UID).
 *
 * The kubelet's claim references enter gpulet here, and are checked here once, by `parseClaimRef`
 * (src/model/claim-ref.ts): namespace a DNS label, name a DNS subdomain, uid a lower-case UUID, as the API
 * server issues them. What passes is a {@link ClaimRef} the claim state takes as it is; what fails is a
 * per-claim error naming the claim's position, the field and the rule.
 */
import { quoteBounded } from '../../errors.js';
import { parseClaimRef } from '../../model/claim-ref.js';
import type { ClaimRef, PreparedDevice, PrepareResult, UnprepareResult } from '../../model/types.js';
import type {
  DraApiVersion,
  WireClaim,
  WireDevice,
  WirePrepareResponse,
  WirePrepareResult,
  WireUnprepareResponse,
} from './grpc-protos.js';

/** Outcome of validating a request's claims. */
export interface ValidatedClaims {
  /** Valid, de-duplicated claims to hand to the preparer, in request order. */
  readonly valid: ClaimRef[];
  /** Per-claim validation errors keyed by the UID as sent (possibly ""). */
  readonly errors: Map<string, string>;
  /** Every UID of the request (the response keys), de-duplicated, in request order. */
  readonly uids: string[];
}

function fieldError(index: number, field: string, rule: string, value: unknown): string {
  return `invalid claim in request (claims[${index}]): field "${field}" ${rule}, got ${quoteBounded(value)}`;
}

/** The checked reference of one claim, or the error for its first field that breaks its rule (uid, namespace, name). */
function checkClaim(c: Partial<WireClaim> | null | undefined, i: number): ClaimRef | string {
  const { ref, problem } = parseClaimRef(c);
  return ref ?? fieldError(i, problem.field, problem.rule, problem.value);
}

/**
 * Validate the `claims` of a NodePrepareResources/NodeUnprepareResources request. A non-array counts as
 * empty. Claims repeated with the same UID and identity are passed once; the same UID with a different
 * namespace/name is an error for that UID.
 */
export function validateClaims(claims: unknown): ValidatedClaims {
  const list: unknown[] = Array.isArray(claims) ? claims : [];
  const valid = new Map<string, ClaimRef>();
  const errors = new Map<string, string>();
  const seenUids = new Set<string>(); // linear in the request: a list lookup per claim made it quadratic
  list.forEach((raw, i) => {
    const c = (typeof raw === 'object' ? raw : undefined) as Partial<WireClaim> | null | undefined;
    const uid = typeof c?.uid === 'string' ? c.uid : '';
    seenUids.add(uid);
    const ref = checkClaim(c, i);
    if (typeof ref === 'string') {
      if (!errors.has(uid)) errors.set(uid, ref);
      valid.delete(uid);
      return;
    }
    const seen = valid.get(uid);
    if (errors.has(uid)) return;
    if (seen && (seen.namespace !== ref.namespace || seen.name !== ref.name)) {
      errors.set(uid, fieldError(i, 'uid', `duplicates the UID of claim ${seen.namespace}/${seen.name}`, uid));
      valid.delete(uid);
      return;
    }
    valid.set(uid, ref);
  });
  return { valid: [...valid.values()], errors, uids: [...seenUids] };
}

/**
 * Most claims one NodePrepareResources/NodeUnprepareResources request may name. The kubelet sends the claims of
 * one pod per call (its DRA manager groups a pod's claims by driver), so a real request names a handful; the
 * bound keeps a hostile peer from making one call cost seconds of event-loop time and a response the size
 * of gRPC's 4 MiB limit.
 */
export const MAX_CLAIMS_PER_REQUEST = 256;

/** Why a request's `claims` list is too long to be served, or undefined. */
export function claimsCountProblem(claims: unknown): string | undefined {
  if (!Array.isArray(claims) || claims.length <= MAX_CLAIMS_PER_REQUEST) return undefined;
  return `the request names ${claims.length} claims, more than the ${MAX_CLAIMS_PER_REQUEST} gpulet serves in one call (the kubelet sends one pod's claims per call); split the request`;
}

/** One prepared device on the wire; `share_id` only in v1 and only when set. */
export function toWireDevice(d: PreparedDevice, version: DraApiVersion): WireDevice {
  const wire: WireDevice = {
    request_names: [...d.requestNames],
    pool_name: d.poolName,
    device_name: d.deviceName,
    cdi_device_ids: [...d.cdiDeviceIds],
  };
  if (version === 'v1' && d.shareId !== undefined) wire.share_id = d.shareId;
  return wire;
}

function toWirePrepareResult(r: PrepareResult | undefined, version: DraApiVersion): WirePrepareResult {
  if (r === undefined) return { devices: [], error: 'the driver returned no result for this claim; retry' };
  if (typeof r.error === 'string') {
    return { devices: [], error: r.error.length > 0 ? r.error : 'preparing the claim failed (no reason given)' };
  }
  return { devices: r.devices.map((d) => toWireDevice(d, version)), error: '' };
}

/**
 * Build NodePrepareResourcesResponse: validation errors, then preparer results; a UID the preparer
 * skipped gets an error so the kubelet retries. `batchError` (preparer rejected) fails every valid claim.
 */
export function buildPrepareResponse(
  v: ValidatedClaims,
  results: ReadonlyMap<string, PrepareResult> | undefined,
  version: DraApiVersion,
  batchError?: string,
): WirePrepareResponse {
  const entries = v.uids.map((uid): [string, WirePrepareResult] => {
    const invalid = v.errors.get(uid);
    if (invalid !== undefined) return [uid, { devices: [], error: invalid }];
    if (batchError !== undefined) return [uid, { devices: [], error: batchError }];
    return [uid, toWirePrepareResult(results?.get(uid), version)];
  });
  // fromEntries defines own properties: a UID "__proto__" gets its entry instead of replacing the prototype.
  return { claims: Object.fromEntries(entries) };
}

/** Build NodeUnprepareResourcesResponse with the same rules as {@link buildPrepareResponse}. */
export function buildUnprepareResponse(
  v: ValidatedClaims,
  results: ReadonlyMap<string, UnprepareResult> | undefined,
  batchError?: string,
): WireUnprepareResponse {
  const entries = v.uids.map((uid): [string, { error: string }] => {
    const invalid = v.errors.get(uid);
    if (invalid !== undefined) return [uid, { error: invalid }];
    if (batchError !== undefined) return [uid, { error: batchError }];
    const r = results?.get(uid);
    return [uid, r === undefined ? { error: 'the driver returned no result for this claim; retry' } : { error: r.error ?? '' }];
  });
  return { claims: Object.fromEntries(entries) };
}
