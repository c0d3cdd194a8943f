/**
 * The claim state behind NodePrepareResources / NodeUnprepareResources: the `ClaimPreparer` port
 * (src/model/types.ts) the kubelet plugin calls.
 *
 * One batch is one session of the claim store (claim-store.ts: in-process mutex, cross-process state lock,
 * checkpoint re-read), so batches never interleave, here or with another gpulet instance on the node. Every
 * claim of a request gets an entry in the answer, keyed by UID (a duplicated UID is handled and answered
 * once); one claim's failure never fails another. The references are {@link ClaimRef}s, checked where they
 * entered gpulet (the kubelet plugin's request, by `parseClaimRef` of src/model/claim-ref.ts), so none is
 * checked again here. The per-claim steps are claim-ops.ts.
 * A batch that cannot have the state — the lock not taken, the checkpoint unreadable for an I/O error
 * (EMFILE, EIO, EACCES...: nothing is changed, never "corrupt"), the session past its deadline — answers every
 * claim with that error, which names the claim, the file and errno, and says it is retryable (the kubelet
 * retries); so does a batch when the checkpoint cannot be loaded.
 */
import type { ClaimPreparer, ClaimRef, PrepareResult, UnprepareResult } from '../model/types.js';
import { ClaimError } from '../errors.js';
import type { ClaimOps } from './claim-ops.js';
import type { ClaimStore } from './claim-store.js';
import type { SessionError } from './session.js';

/** What the preparer needs of the claim store: sessions, and the first load. */
export type PreparerStore = Pick<ClaimStore, 'lockedOr' | 'ensureInitialized'>;
/** What the preparer needs of the per-claim steps. */
export type PreparerOps = Pick<ClaimOps, 'prepareOne' | 'unprepareOne'>;

/** Options of {@link Preparer}. */
export interface PreparerOptions {
  readonly store: PreparerStore;
  readonly ops: PreparerOps;
}

/** Every claim of a batch answered with the same reason (first occurrence of each UID). */
function answerAll(claims: readonly ClaimRef[], reason: string): Map<string, { error: string }> {
  const out = new Map<string, { error: string }>();
  for (const ref of claims) if (!out.has(ref.uid)) out.set(ref.uid, { error: new ClaimError(ref, reason).message });
  return out;
}

/** Prepares and unprepares claims for the kubelet. Implements `ClaimPreparer`: serialized, idempotent, never rejects. */
export class Preparer implements ClaimPreparer {
  private readonly store: PreparerStore;
  private readonly ops: PreparerOps;

  constructor(options: PreparerOptions) {
    this.store = options.store;
    this.ops = options.ops;
  }

  /**
   * Prepare claims (see file doc and claim-ops.ts). Never rejects.
   * @returns one result per distinct UID: the devices with their CDI IDs, or an error naming the claim.
   */
  prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>> {
    return this.store.lockedOr(async () => {
      const notReady = await this.store.ensureInitialized();
      if (notReady !== undefined) return answerAll(claims, notReady);
      const out = new Map<string, PrepareResult>();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue; // duplicated UID: prepared once, answered once
        out.set(ref.uid, await this.ops.prepareOne(ref));
      }
      return out;
    }, (unavailable: SessionError) => answerAll(claims, unavailable.message));
  }

  /**
   * Unprepare claims: remove spec and entry. Unknown claims succeed. Never rejects.
   * @returns one result per distinct UID: `{}`, or an error naming the claim.
   */
  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>> {
    return this.store.lockedOr(async () => {
      const notReady = await this.store.ensureInitialized();
      if (notReady !== undefined) return answerAll(claims, notReady);
      const out = new Map<string, UnprepareResult>();
      for (const ref of claims) {
        if (out.has(ref.uid)) continue;
        out.set(ref.uid, await this.ops.unprepareOne(ref));
      }
      return out;
    }, (unavailable: SessionError) => answerAll(claims, unavailable.message));
  }
}
