#!/usr/bin/env bash
# The k8s/ checks of `make test` (no cluster needed):
#   - the rendered files are what scripts/k8s/render.py makes from deploy/ (one source of truth);
#   - each overlay renders (kustomize) and every object validates: built-in kinds against the
#     Kubernetes schemas, custom resources against the CRDs of the operator versions named
#     (fetched from package registries at test time: scripts/k8s/fetch-crds.sh);
#   - the invariants read from the rendered YAML and the binary (tests/k8s/invariants.py).
#   tests/k8s/k8s_test.sh AGENTLANCER_BIN REPO
set -euo pipefail
bin="$1"
repo="$2"
cd "$repo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
bash tests/k8s/setup.sh >/dev/null
bash scripts/k8s/fetch-crds.sh >/dev/null
python=".cache/k8s/venv/bin/python"
echo "== rendered files"
python3 scripts/k8s/render.py --check || fail=1
overlays=()
for dir in k8s/overlays/*/; do
  overlay="$(basename "$dir")"
  echo "== $overlay: render"
  if ! bash scripts/k8s/kustomize.sh "$dir" >"$work/$overlay.yaml"; then
    echo "FAIL kustomize $dir"; fail=1; continue
  fi
  echo "== $overlay: validate ($(grep -c '^kind:' "$work/$overlay.yaml") objects)"
  "$python" tests/k8s/validate.py --crds .cache/k8s/crds "$work/$overlay.yaml" | grep -v '^ok ' || fail=1
  overlays+=(--overlay "$overlay=$work/$overlay.yaml")
done
echo "== invariants"
"$python" tests/k8s/invariants.py --bin "$bin" --repo "$repo" "${overlays[@]}" | grep -v '^ok ' || fail=1
if (( fail == 0 )); then echo "k8s: ok"; else echo "k8s: FAILED"; fi
exit "$fail"
