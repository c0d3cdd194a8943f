/**
 * The `ClaimPreparer` the kubelet plugin gets (src/model/types.ts): the claim state's preparer, plus the
 * claims' `status.devices` (KEP-4817). The answers are the inner preparer's, unchanged and not delayed: a
 * claim prepared successfully is handed to the status writer (`writer.ts`: asynchronous, best effort), and so
 * is a claim unprepared successfully (its entries are removed). A claim whose answer is an error is left alone.
 */
import type { ClaimPreparer, ClaimRef, PrepareResult, UnprepareResult } from '../../model/types.js';
import type { ClaimStatusWriter } from './writer.js';

/** What the decorator needs of the writer. */
export type StatusSink = Pick<ClaimStatusWriter, 'prepared' | 'unprepared'>;

/** `inner`, with each successful prepare and unprepare reported to `status` (see file doc). Never rejects. */
export function withClaimStatus(inner: ClaimPreparer, status: StatusSink): ClaimPreparer {
  /** The first reference of each UID (the one the inner preparer answered). */
  const distinct = (claims: readonly ClaimRef[]): ClaimRef[] => {
    const seen = new Set<string>();
    return claims.filter((c) => !seen.has(c.uid) && (seen.add(c.uid), true));
  };
  return {
    async prepare(claims): Promise<Map<string, PrepareResult>> {
      const out = await inner.prepare(claims);
      for (const ref of distinct(claims)) {
        const result = out.get(ref.uid);
        if (result?.devices !== undefined) status.prepared(ref, result.devices);
      }
      return out;
    },
    async unprepare(claims): Promise<Map<string, UnprepareResult>> {
      const out = await inner.unprepare(claims);
      for (const ref of distinct(claims)) {
        const result = out.get(ref.uid);
        if (result !== undefined && result.error === undefined) status.unprepared(ref);
      }
      return out;
    },
  };
}
