/**
 * Rebuild of the prepared state from the API server, after the checkpoint was lost (corrupt, truncated,
 * unknown apiVersion, unreadable). Used by startup reconciliation (reconcile.ts) and retried by the periodic
 * clean-up (claim-cleanup.ts) while the API server cannot be reached.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApiClaim, ClaimSource } from './claim-source.js';
import type { ClaimStore } from './claim-store.js';
import { isJsonObject } from './opaque-config.js';
import type { ClaimRecovery } from './recovery.js';

/** What a rebuild needs of the claim store: marking it done. */
export type RebuildStore = Pick<ClaimStore, 'rebuilt'>;
/** What a rebuild needs of recovery: our driver and pool, adopting a listed claim, the confirmed orphan sweep. */
export type RebuildRecovery = Pick<ClaimRecovery, 'driverName' | 'poolName' | 'adopt' | 'sweep'>;

/** Options of {@link rebuildFromApi}. */
export interface RebuildOptions {
  readonly store: RebuildStore;
  readonly recovery: RebuildRecovery;
  readonly source: ClaimSource;
  readonly logger: Logger;
  /** Stops the rebuild between claims and between pages (shutdown); it stays due. */
  readonly signal?: AbortSignal | undefined;
}

/** What {@link rebuildFromApi} did. */
export interface RebuildOutcome {
  /** UIDs prepared again; undefined when the rebuild did not complete (the list failed, or `signal` fired): it stays due. */
  readonly rebuilt: readonly string[] | undefined;
  /** Specs of ours removed after the list confirmed no claim held here accounts for them. */
  readonly orphans: readonly string[];
  /** Why it did not complete, and per-claim errors. */
  readonly errors: readonly string[];
  /** `signal` fired before the end. */
  readonly aborted: boolean;
}

/**
 * Rebuild the prepared state from the API server after the checkpoint (or entries of it) was lost: list every
 * ResourceClaim page by page (`ClaimSource.listPages`), keep of each page only the claims with an allocation
 * result for our driver and pool and a non-empty `status.reservedFor`, and prepare each one again (spec and
 * PrepareCompleted entry) from the listed object before the next page is asked for, so no more than one page
 * of other claims is held (and the UIDs of ours). Claims already recorded are left alone. A listed claim whose
 * metadata breaks the rules (`claimFromApi`, claim-source.ts) is skipped with a warning naming it. `signal` is
 * checked before each claim is prepared and before each page: what was prepared stays prepared (each step is
 * whole), the rest waits for the next rebuild. When every page was read the rebuild is marked done and the
 * specs of ours that no entry accounts for are swept, except those of the listed claims held here (one that
 * could not be prepared again keeps its spec; the next start-up rebuilds again, reconcile.ts); otherwise
 * (the list failed, or `signal` fired) it stays due and nothing is removed.
 * @returns what was done (see {@link RebuildOutcome}). Never rejects.
 */
export async function rebuildFromApi(options: RebuildOptions): Promise<RebuildOutcome> {
  const { store, recovery, source, signal } = options;
  const log = options.logger.child({ component: 'reconcile' });
  if (source.listPages === undefined) {
    const message = 'cannot rebuild the prepared claims: the claim source cannot list ResourceClaims';
    log.error(message);
    return { rebuilt: undefined, orphans: [], errors: [message], aborted: false };
  }
  const rebuilt: string[] = [];
  const errors: string[] = [];
  const counts = { listed: 0, skipped: 0, ours: 0 };
  /** UIDs of the listed claims held here (ours, reserved): their specs are never swept. */
  const held = new Set<string>();
  try {
    for await (const page of source.listPages()) {
      counts.listed += page.claims.length + page.invalid.length;
      counts.skipped += page.invalid.length;
      for (const invalid of page.invalid) log.warn({ err: invalid }, `rebuild: skipped a listed claim: ${invalid.message}`);
      for (const claim of page.claims.filter((c) => allocatedTo(c, recovery.driverName, recovery.poolName) && reserved(c))) {
        if (signal?.aborted) break;
        counts.ours++;
        held.add(claim.metadata.uid);
        const result = await recovery.adopt(claim);
        if (result === undefined) continue;
        if (result.error !== undefined) {
          errors.push(result.error);
          log.error({ claimUid: claim.metadata.uid, error: result.error }, 'rebuild: claim could not be prepared again');
        } else {
          rebuilt.push(claim.metadata.uid);
        }
      }
      if (signal?.aborted) break; // leaves the iteration: no further page is asked for
    }
  } catch (err) {
    const message = `cannot rebuild the prepared claims from the API server yet: ${errorMessage(err)}; retrying at the next clean-up`;
    log.error({ err, ...counts, rebuilt }, message);
    return { rebuilt: undefined, orphans: [], errors: [message, ...errors], aborted: false };
  }
  if (signal?.aborted) {
    log.warn({ ...counts, rebuilt }, 'rebuild from the API server stopped by shutdown; it stays due');
    return { rebuilt: undefined, orphans: [], errors, aborted: true };
  }
  store.rebuilt();
  const swept = await recovery.sweep(held);
  if (swept.error !== undefined) errors.push(swept.error);
  const { orphans } = swept;
  log.info({ ...counts, rebuilt, orphans, errors: errors.length }, 'prepared claims rebuilt from the API server');
  return { rebuilt, orphans, errors, aborted: false };
}

/** `status.reservedFor` is a non-empty list (resource.k8s.io/v1 ResourceClaimStatus). */
export function reserved(claim: Pick<ApiClaim, 'status'>): boolean {
  const status = isJsonObject(claim.status) ? claim.status : {};
  return Array.isArray(status['reservedFor']) && status['reservedFor'].length > 0;
}

/** Some `status.allocation.devices.results[]` names our driver and pool (docs/contracts.md §5). */
export function allocatedTo(claim: Pick<ApiClaim, 'status'>, driverName: string, poolName: string): boolean {
  const status = isJsonObject(claim.status) ? claim.status : {};
  const allocation = status['allocation'];
  const devices = isJsonObject(allocation) ? allocation['devices'] : undefined;
  const results = isJsonObject(devices) ? devices['results'] : undefined;
  if (!Array.isArray(results)) return false;
  return results.some((r: unknown) => isJsonObject(r) && r['driver'] === driverName && r['pool'] === poolName);
}
