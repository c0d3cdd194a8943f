/**
 * Rebuild of the prepared state from the API server, after the checkpoint was lost (corrupt, truncated,
 * unknown apiVersion, unreadable). Used by startup reconciliation (reconcile.ts) and retried by the periodic
 * clean-up (claim-cleanup.ts) while the API server cannot be reached.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApiClaim, ClaimList, ClaimSource } from './claim-source.js';
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
}

/**
 * Rebuild the prepared state from the API server after the checkpoint was lost: list every ResourceClaim,
 * keep those with an allocation result for our driver and pool and a non-empty `status.reservedFor`, and
 * prepare each one again (spec and PrepareCompleted entry) from the listed object. Claims already recorded
 * are left alone. A listed claim whose metadata breaks the rules (`claimFromApi`, claim-source.ts) is
 * skipped with a warning naming it. On success the rebuild is marked done and the specs of ours that no
 * entry accounts for are swept, except those of the listed claims held here (one that could not be prepared
 * again keeps its spec; the next start-up rebuilds again, reconcile.ts). A failed list removes nothing.
 * @returns UIDs prepared again (undefined when the list failed: the rebuild stays due), specs removed, and
 *   per-claim errors. Never rejects.
 */
export async function rebuildFromApi(options: RebuildOptions): Promise<{ readonly rebuilt: readonly string[] | undefined; readonly orphans: readonly string[]; readonly errors: readonly string[] }> {
  const { store, recovery, source } = options;
  const log = options.logger.child({ component: 'reconcile' });
  if (source.list === undefined) {
    const message = 'cannot rebuild the prepared claims: the claim source cannot list ResourceClaims';
    log.error(message);
    return { rebuilt: undefined, orphans: [], errors: [message] };
  }
  let listed: ClaimList;
  try {
    listed = await source.list();
  } catch (err) {
    const message = `cannot rebuild the prepared claims from the API server yet: ${errorMessage(err)}; retrying at the next clean-up`;
    log.error({ err }, message);
    return { rebuilt: undefined, orphans: [], errors: [message] };
  }
  for (const invalid of listed.invalid) log.warn({ err: invalid }, `rebuild: skipped a listed claim: ${invalid.message}`);
  const all = listed.claims;
  const ours = all.filter((c) => allocatedTo(c, recovery.driverName, recovery.poolName) && reserved(c));
  const rebuilt: string[] = [];
  const errors: string[] = [];
  for (const claim of ours) {
    const result = await recovery.adopt(claim);
    if (result === undefined) continue;
    if (result.error !== undefined) {
      errors.push(result.error);
      log.error({ claimUid: claim.metadata.uid, error: result.error }, 'rebuild: claim could not be prepared again');
    } else {
      rebuilt.push(claim.metadata.uid);
    }
  }
  store.rebuilt();
  const swept = await recovery.sweep(new Set(ours.map((c) => c.metadata.uid)));
  if (swept.error !== undefined) errors.push(swept.error);
  const { orphans } = swept;
  log.info({ listed: all.length, skipped: listed.invalid.length, ours: ours.length, rebuilt, orphans, errors: errors.length }, 'prepared claims rebuilt from the API server');
  return { rebuilt, orphans, errors };
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
