#!/usr/bin/env bash
# `npm run cluster`: build the upstream Kubernetes cluster of test/upstream/ (Go; a no-op when the binary is
# current) and run it in the foreground on loopback, its files in .gpulet/cluster/ (made anew each start):
# kubeconfig, nodes/<node>/plugins_registry and plugins/, logs/. It prints one JSON line when it is ready and
# stops cleanly on Ctrl-C or SIGTERM. Extra arguments go to the cluster (e.g. --nodes node-a,node-b).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null; then
  echo "npm run cluster: needs Go (go.mod in test/upstream/ names the version)" >&2
  exit 1
fi
echo "cluster: building test/upstream (the first build takes minutes; later ones reuse Go's build cache)" >&2
start=$(date +%s)
(cd test/upstream && go build -o bin/cluster ./cmd/cluster)
echo "cluster: built in $(( $(date +%s) - start )) s; starting (ready line follows)" >&2
exec test/upstream/bin/cluster up --dir .gpulet/cluster "$@"
