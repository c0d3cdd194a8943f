/**
 * DRAPlugin service implementation (NodePrepareResources / NodeUnprepareResources), one per API version
 * (kubernetes/kubelet pkg/apis/dra/v1 and v1beta1), both backed by the same {@link ClaimPreparer}.
 *
 * The handlers fail the RPC only for a request that names more than {@link MAX_CLAIMS_PER_REQUEST} claims
 * (INVALID_ARGUMENT, before any claim is looked at): otherwise a gRPC error would make the kubelet ignore the
 * whole response, so every problem (invalid claim, preparer rejection, missing result) becomes a per-claim
 * `error`, and every claim of the request gets an entry.
 *
 * Every call is reported to an optional {@link DraCallObserver} (the hooks telemetry counts requests with; main
 * wires them): `started` when the handler is entered, one `claimFailed` per claim answered with an error,
 * `finished` once the answer is handed to gRPC. The hooks take numbers and string constants only, so a call
 * allocates nothing for them.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../errors.js';
import type { ClaimPreparer } from '../../model/types.js';
import type { DraApiVersion, WireClaimsRequest, WirePrepareResponse, WireUnprepareResponse } from './grpc-protos.js';
import {
  buildPrepareResponse,
  buildUnprepareResponse,
  claimsCountProblem,
  validateClaims,
  MAX_CLAIMS_PER_REQUEST,
  type ValidatedClaims,
} from './grpc-dra-mapping.js';

/** The two DRAPlugin methods, named as in the kubelet's proto (pkg/apis/dra/v1/api.proto `service DRAPlugin`). */
export type DraOperation = 'NodePrepareResources' | 'NodeUnprepareResources';

/**
 * Why a claim of a call was answered with an error (a bounded set, for a metric attribute):
 * - `invalid_claim`: the kubelet's claim reference failed validation (grpc-dra-mapping.ts `validateClaims`);
 * - `prepare_devices` / `unprepare_devices`: the claim state answered the claim with an error (not allocated,
 *   API server unreachable, lock timeout, I/O error, ...): NVIDIA's driver's values for the same step
 *   (kubernetes-sigs/dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/driver.go `IncNodePrepareError`);
 * - `batch_failed`: the claim state rejected the whole batch (its contract says it never does);
 * - `missing_result`: the claim state returned no result for the claim.
 */
export type DraClaimErrorReason = 'invalid_claim' | 'prepare_devices' | 'unprepare_devices' | 'batch_failed' | 'missing_result';

/**
 * Hooks called for every NodePrepareResources / NodeUnprepareResources call, on the event loop; they must be
 * cheap and must not throw (a throw is caught and logged, and never changes the answer).
 */
export interface DraCallObserver {
  // Function-typed properties, not methods: parameters are then checked strictly, so an implementation that
  // does not accept every operation or reason does not compile where it is wired (src/main.ts).
  /** The handler was entered (the call is in flight from now on). */
  readonly started: (operation: DraOperation) => void;
  /** One claim of the call was answered with a non-empty `error`. Called before `finished`. */
  readonly claimFailed: (operation: DraOperation, reason: DraClaimErrorReason) => void;
  /**
   * The answer was handed to gRPC (or the call was refused). `seconds`: time since `started` (performance.now,
   * monotonic); `ok`: false when the call was refused (INVALID_ARGUMENT) or any of its claims was answered
   * with an error.
   */
  readonly finished: (operation: DraOperation, seconds: number, ok: boolean) => void;
}

/** An observer that does nothing (no telemetry). */
const NO_OBSERVER: DraCallObserver = { started: () => undefined, claimFailed: () => undefined, finished: () => undefined };

/**
 * Build the DRAPlugin implementation for `version`.
 * @param preparer prepares/unprepares claims; a rejection fails every claim of that batch
 * @param observer told of every call (see {@link DraCallObserver}); none by default
 */
export function createDraService(
  preparer: ClaimPreparer,
  version: DraApiVersion,
  logger: Logger,
  observer: DraCallObserver = NO_OBSERVER,
): grpc.UntypedServiceImplementation {
  const log = logger.child({ api: `dra.${version}` });
  // The hooks are called inline (no closure per call); a throw is logged and never changes an answer.
  const hookFailed = (err: unknown): void => log.error({ err: errorMessage(err) }, 'DRA call observer failed');
  const started = (op: DraOperation): number => {
    try {
      observer.started(op);
    } catch (err) {
      hookFailed(err);
    }
    return performance.now();
  };
  const finished = (op: DraOperation, t0: number, ok: boolean): void => {
    try {
      observer.finished(op, (performance.now() - t0) / 1000, ok);
    } catch (err) {
      hookFailed(err);
    }
  };

  /** Refuse an oversized request at once; true when it was refused. */
  const refused = (op: string, claims: unknown, callback: (err: grpc.ServiceError) => void): boolean => {
    const problem = claimsCountProblem(claims);
    if (problem === undefined) return false;
    log.warn({ claims: Array.isArray(claims) ? claims.length : 0, max: MAX_CLAIMS_PER_REQUEST }, `${op}: request refused, too many claims`);
    callback(Object.assign(new Error(`${op}: ${problem}`), { code: grpc.status.INVALID_ARGUMENT, details: `${op}: ${problem}`, metadata: new grpc.Metadata() }));
    return true;
  };

  /**
   * Log each claim of the answer that carries an error and report it to the observer with its reason:
   * validation, a rejected batch (`results` undefined although claims passed validation), no result, or the
   * claim state's per-claim error (`stateReason`). Returns how many claims failed.
   */
  const reportErrors = (
    op: DraOperation,
    answered: Readonly<Record<string, { readonly error: string }>>,
    v: ValidatedClaims,
    results: ReadonlyMap<string, unknown> | undefined,
    stateReason: DraClaimErrorReason,
  ): number => {
    let failed = 0;
    for (const claimUid of v.uids) {
      const error = answered[claimUid]?.error;
      if (!error) continue;
      failed += 1;
      log.warn({ claimUid, err: error }, `${op} failed for claim`);
      const reason: DraClaimErrorReason = v.errors.has(claimUid)
        ? 'invalid_claim'
        : results === undefined
          ? 'batch_failed'
          : results.has(claimUid)
            ? stateReason
            : 'missing_result';
      try {
        observer.claimFailed(op, reason);
      } catch (err) {
        hookFailed(err);
      }
    }
    return failed;
  };

  const prepare: grpc.handleUnaryCall<WireClaimsRequest, WirePrepareResponse> = (call, callback) => {
    const op: DraOperation = 'NodePrepareResources';
    const t0 = started(op);
    if (refused(op, call.request?.claims, callback)) return finished(op, t0, false);
    const v = validateClaims(call.request?.claims);
    log.debug({ claims: v.uids.length }, op);
    let results: ReadonlyMap<string, unknown> | undefined;
    const fail = (err: unknown) => buildPrepareResponse(v, undefined, version, `preparing claims failed: ${errorMessage(err)}`);
    const run = async (): Promise<WirePrepareResponse> => {
      if (v.valid.length === 0) return buildPrepareResponse(v, undefined, version);
      const r = await preparer.prepare(v.valid);
      results = r;
      return buildPrepareResponse(v, r, version);
    };
    void run()
      .catch(fail)
      .then((res) => {
        const failed = reportErrors(op, res.claims, v, results, 'prepare_devices');
        try {
          callback(null, res);
        } finally {
          finished(op, t0, failed === 0);
        }
      });
  };

  const unprepare: grpc.handleUnaryCall<WireClaimsRequest, WireUnprepareResponse> = (call, callback) => {
    const op: DraOperation = 'NodeUnprepareResources';
    const t0 = started(op);
    if (refused(op, call.request?.claims, callback)) return finished(op, t0, false);
    const v = validateClaims(call.request?.claims);
    log.debug({ claims: v.uids.length }, op);
    let results: ReadonlyMap<string, unknown> | undefined;
    const fail = (err: unknown) => buildUnprepareResponse(v, undefined, `unpreparing claims failed: ${errorMessage(err)}`);
    const run = async (): Promise<WireUnprepareResponse> => {
      if (v.valid.length === 0) return buildUnprepareResponse(v, undefined);
      const r = await preparer.unprepare(v.valid);
      results = r;
      return buildUnprepareResponse(v, r);
    };
    void run()
      .catch(fail)
      .then((res) => {
        const failed = reportErrors(op, res.claims, v, results, 'unprepare_devices');
        try {
          callback(null, res);
        } finally {
          finished(op, t0, failed === 0);
        }
      });
  };

  return { NodePrepareResources: prepare, NodeUnprepareResources: unprepare };
}
