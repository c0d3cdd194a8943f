/**
 * Recovery steps of the claim state: what start-up reconciliation (reconcile.ts), the rebuild after a lost
 * checkpoint (rebuild.ts) and the periodic clean-up (claim-cleanup.ts) do to claims, as opposed to what
 * the kubelet asks (preparer.ts). The policy deciding when to call each step is in those modules.
 *
 * Each step runs in a session of the claim store (claim-store.ts), re-entrantly when its caller already
 * holds one (reconciliation and a clean-up round hold one session across many steps). Prepare and unprepare
 * of one claim are the same steps the preparer uses (claim-ops.ts), fault points included.
 */
import type { ClaimRef, PrepareResult, UnprepareResult } from '../model/types.js';
import type { ObjectUid } from '../model/names.js';
import { ClaimError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClaimOps } from './claim-ops.js';
import type { ClaimStore } from './claim-store.js';
import type { ApiClaim } from './claim-source.js';
import { sameSpec } from './claim-spec.js';

/** Outcome of {@link ClaimRecovery.restoreSpec}. */
export type SpecRestore = 'present' | 'written' | 'rewritten' | 'not-completed';

/** What recovery needs of the claim store. */
export type RecoveryStore = Pick<ClaimStore, 'locked' | 'lockedOr' | 'entries' | 'removeTempFiles' | 'assertLive'>;
/** What recovery needs of the per-claim steps. */
export type RecoveryOps = Pick<ClaimOps, 'prepareOne' | 'unprepareOne' | 'specOf' | 'writeSpec' | 'cdi' | 'driverName' | 'poolName'>;

/** Options of {@link ClaimRecovery}. */
export interface ClaimRecoveryOptions {
  readonly store: RecoveryStore;
  readonly ops: RecoveryOps;
  readonly logger: Logger;
}

/** Rolls back, restores, drops, adopts and sweeps claims (see file doc). */
export class ClaimRecovery {
  private readonly store: RecoveryStore;
  private readonly ops: RecoveryOps;
  private readonly log: Logger;

  constructor(options: ClaimRecoveryOptions) {
    this.store = options.store;
    this.ops = options.ops;
    this.log = options.logger.child({ component: 'claims' });
  }

  /** Our driver name (allocation results for it are ours). */
  get driverName(): string {
    return this.ops.driverName;
  }

  /** Our pool name (the node name). */
  get poolName(): string {
    return this.ops.poolName;
  }

  /**
   * Make sure a PrepareCompleted claim's CDI spec exists and equals what prepare would write now (rebuilt
   * from the checkpoint entry and the current inventory, no API call): writes a missing spec, rewrites a
   * stale or unparsable one.
   * @returns what was done; 'not-completed' when the claim has no PrepareCompleted entry (nothing is touched).
   * @throws CdiError when a device of the entry is no longer in the inventory or the spec cannot be written;
   *   StateIoError when the spec cannot be read (nothing is touched); a SessionError of the session.
   */
  restoreSpec(uid: ObjectUid): Promise<SpecRestore> {
    return this.store.locked(async () => {
      const entry = this.store.entries()[uid];
      if (entry?.state !== 'PrepareCompleted') return 'not-completed';
      const spec = this.ops.specOf(uid, entry);
      const current = await this.ops.cdi.read(uid);
      if (current !== undefined && current !== null && sameSpec(current, spec)) return 'present';
      this.store.assertLive();
      await this.ops.writeSpec(uid, spec);
      return current === undefined ? 'written' : 'rewritten';
    });
  }

  /**
   * Unprepare one recorded claim (spec and entry removed): a rollback, a claim gone after a reboot or from
   * the API server. Never rejects.
   * @returns `{}`, or an error naming the claim (the state lock's when it could not be taken).
   */
  drop(ref: ClaimRef): Promise<UnprepareResult> {
    return this.store.lockedOr(() => this.ops.unprepareOne(ref), (busy) => ({ error: new ClaimError(ref, busy.message).message }));
  }

  /**
   * Prepare a claim read from the API server (a rebuild after the checkpoint was lost), without a GET. Its
   * reference is its metadata, checked where it was read (`claimFromApi`, claim-source.ts). Never rejects.
   * @returns undefined when the claim is already recorded, else the result (an error naming the claim when it
   *   cannot be prepared).
   */
  adopt(claim: ApiClaim): Promise<PrepareResult | undefined> {
    const ref = claim.metadata;
    return this.store.lockedOr(async () => {
      if (this.store.entries()[ref.uid] !== undefined) return undefined;
      return this.ops.prepareOne(ref, claim);
    }, (busy) => ({ error: new ClaimError(ref, busy.message).message }));
  }

  /**
   * UIDs of the CDI specs of ours that no PrepareCompleted entry accounts for (reconcile.ts: one of them means
   * the checkpoint cannot be trusted alone). Call inside a session.
   * @throws StateIoError when the CDI dir cannot be listed.
   */
  async unaccountedSpecs(): Promise<ObjectUid[]> {
    const entries = this.store.entries();
    return (await this.ops.cdi.listClaimUids()).filter((uid) => entries[uid]?.state !== 'PrepareCompleted');
  }

  /**
   * Remove temp files crashes left in the CDI and checkpoint dirs. Call inside a session.
   * @returns how many were removed. Never rejects.
   */
  async removeTempFiles(): Promise<number> {
    return (await this.ops.cdi.removeTempFiles()) + (await this.store.removeTempFiles());
  }

  /**
   * Remove CDI spec files of ours that no PrepareCompleted entry accounts for and whose claim the API server
   * does not hold, and temp files crashes left. `held` is what a LIST that just succeeded says: the UIDs of
   * every claim allocated to this node and reserved (the rule is in reconcile.ts's doc); their specs stay.
   * @returns the UIDs whose spec was removed and the number of temp files removed; `error` when the CDI dir
   *   could not be listed or the session was unavailable (nothing is removed then). Never rejects.
   */
  sweep(held: ReadonlySet<string>): Promise<{ readonly orphans: readonly string[]; readonly tempFiles: number; readonly error?: string }> {
    return this.store.lockedOr(async () => {
      const orphans: string[] = [];
      for (const uid of await this.unaccountedSpecs()) {
        if (held.has(uid)) continue;
        try {
          this.store.assertLive();
          await this.ops.cdi.remove(uid);
          orphans.push(uid);
        } catch (err) {
          this.log.warn({ err, claimUid: uid }, 'cannot remove an orphaned CDI spec');
        }
      }
      return { orphans, tempFiles: await this.removeTempFiles() };
    }, (unavailable) => {
      this.log.warn({ err: unavailable }, 'orphan sweep skipped: nothing removed');
      return { orphans: [], tempFiles: 0, error: unavailable.message };
    });
  }
}
