#!/usr/bin/env bash
# `npm run mutate [-- stryker options]`: Stryker over the decision-making core (stryker.config.mjs,
# docs/testing.md). The clear-text report (per-file scores, every surviving mutant) also goes to
# reports/mutation/mutation.txt; html and json beside it; the incremental file too. reports/ is gitignored.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports/mutation
npx stryker run "$@" 2>&1 | tee reports/mutation/mutation.txt
exit "${PIPESTATUS[0]}"
