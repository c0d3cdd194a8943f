/**
 * DRAPlugin service implementation (NodePrepareResources / NodeUnprepareResources), one per API version
 * (kubernetes/kubelet pkg/apis/dra/v1 and v1beta1), both backed by the same {@link ClaimPreparer}.
 *
 * The handlers fail the RPC only for a request that names more than {@link MAX_CLAIMS_PER_REQUEST} claims
 * (INVALID_ARGUMENT, before any claim is looked at): otherwise a gRPC error would make the kubelet ignore the
 * whole response, so every problem (invalid claim, preparer rejection, missing result) becomes a per-claim
 * `error`, and every claim of the request gets an entry.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../errors.js';
import type { ClaimPreparer } from '../../model/types.js';
import type { DraApiVersion, WireClaimsRequest, WirePrepareResponse, WireUnprepareResponse } from './grpc-protos.js';
import { buildPrepareResponse, buildUnprepareResponse, claimsCountProblem, validateClaims, MAX_CLAIMS_PER_REQUEST } from './grpc-dra-mapping.js';

function logErrors(logger: Logger, op: string, claims: Record<string, { error: string }>): void {
  for (const [claimUid, r] of Object.entries(claims)) {
    if (r.error) logger.warn({ claimUid, err: r.error }, `${op} failed for claim`);
  }
}

/**
 * Build the DRAPlugin implementation for `version`.
 * @param preparer prepares/unprepares claims; a rejection fails every claim of that batch
 */
export function createDraService(
  preparer: ClaimPreparer,
  version: DraApiVersion,
  logger: Logger,
): grpc.UntypedServiceImplementation {
  const log = logger.child({ api: `dra.${version}` });

  /** Refuse an oversized request at once; true when it was refused. */
  const refused = (op: string, claims: unknown, callback: (err: grpc.ServiceError) => void): boolean => {
    const problem = claimsCountProblem(claims);
    if (problem === undefined) return false;
    log.warn({ claims: Array.isArray(claims) ? claims.length : 0, max: MAX_CLAIMS_PER_REQUEST }, `${op}: request refused, too many claims`);
    callback(Object.assign(new Error(`${op}: ${problem}`), { code: grpc.status.INVALID_ARGUMENT, details: `${op}: ${problem}`, metadata: new grpc.Metadata() }));
    return true;
  };

  const prepare: grpc.handleUnaryCall<WireClaimsRequest, WirePrepareResponse> = (call, callback) => {
    if (refused('NodePrepareResources', call.request?.claims, callback)) return;
    const v = validateClaims(call.request?.claims);
    log.debug({ claims: v.uids.length }, 'NodePrepareResources');
    const fail = (err: unknown) => buildPrepareResponse(v, undefined, version, `preparing claims failed: ${errorMessage(err)}`);
    const run = async (): Promise<WirePrepareResponse> =>
      v.valid.length === 0
        ? buildPrepareResponse(v, undefined, version)
        : buildPrepareResponse(v, await preparer.prepare(v.valid), version);
    void run()
      .catch(fail)
      .then((res) => {
        logErrors(log, 'prepare', res.claims);
        callback(null, res);
      });
  };

  const unprepare: grpc.handleUnaryCall<WireClaimsRequest, WireUnprepareResponse> = (call, callback) => {
    if (refused('NodeUnprepareResources', call.request?.claims, callback)) return;
    const v = validateClaims(call.request?.claims);
    log.debug({ claims: v.uids.length }, 'NodeUnprepareResources');
    const fail = (err: unknown) => buildUnprepareResponse(v, undefined, `unpreparing claims failed: ${errorMessage(err)}`);
    const run = async (): Promise<WireUnprepareResponse> =>
      v.valid.length === 0 ? buildUnprepareResponse(v, undefined) : buildUnprepareResponse(v, await preparer.unprepare(v.valid));
    void run()
      .catch(fail)
      .then((res) => {
        logErrors(log, 'unprepare', res.claims);
        callback(null, res);
      });
  };

  return { NodePrepareResources: prepare, NodeUnprepareResources: unprepare };
}
