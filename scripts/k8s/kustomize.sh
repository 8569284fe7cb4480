#!/usr/bin/env bash
# Renders a kustomization: `kubectl kustomize DIR` when kubectl is there, otherwise kustomize built
# from the Go module proxy into .cache/k8s/bin (the same kustomize v5 kubectl embeds).
#   scripts/k8s/kustomize.sh k8s/overlays/prod > prod.yaml
# KUSTOMIZE_USE_KUBECTL=0 takes the second way even where kubectl is installed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.5.0}"
if [[ "${KUSTOMIZE_USE_KUBECTL:-1}" == 1 ]] && command -v kubectl >/dev/null 2>&1; then exec kubectl kustomize "$@"; fi
bin="$repo/.cache/k8s/bin/kustomize"
if [[ ! -x "$bin" ]]; then
  command -v go >/dev/null || { echo "kustomize.sh: neither kubectl nor go is installed" >&2; exit 2; }
  echo "kustomize.sh: building kustomize $KUSTOMIZE_VERSION from the Go module proxy" >&2
  scratch="$(mktemp -d)"
  (cd "$scratch" && GOPATH="$repo/.cache/k8s/go" GOBIN="$repo/.cache/k8s/bin" GOFLAGS=-mod=mod \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2)
  rm -rf "$scratch"
fi
exec "$bin" build "$@"
