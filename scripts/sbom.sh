#!/usr/bin/env bash
# CycloneDX SBOM of gpulet's production dependencies (npm run sbom → dist/sbom.cdx.json, or $SBOM_OUT).
# `npm sbom --omit dev` drops production packages that dev packages also use (npm/cli#7909), so the SBOM is
# taken from a scratch copy holding only the production tree: package.json + lock, `npm ci --omit=dev` from
# the cache, devDependencies removed, then `npm sbom`.
set -euo pipefail
out="${SBOM_OUT:-$PWD/dist/sbom.cdx.json}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
work="$scratch/gpulet"
mkdir -p "$work" "$(dirname "$out")"
cp package.json package-lock.json "$work/"
cd "$work"
npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error
npm pkg delete devDependencies
npm sbom --sbom-format cyclonedx --sbom-type application > "$out"
