import type { ClaimPreparer } from '../model/types.js';

/**
 * `preparer`, calling `changed()` after each prepare and unprepare it answered (the kubelet plugin's calls), so
 * the accounting samples at once (`Telemetry.claimsChanged`). `changed` must not throw; the answers are unchanged.
 */
export function withClaimsChanged(preparer: ClaimPreparer, changed: () => void): ClaimPreparer {
  return {
    prepare: async (claims) => {
      const result = await preparer.prepare(claims);
      changed();
      return result;
    },
    unprepare: async (claims) => {
      const result = await preparer.unprepare(claims);
      changed();
      return result;
    },
  };
}
