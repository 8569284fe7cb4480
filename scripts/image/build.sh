#!/usr/bin/env bash
# Builds the agentlancer OCI image from the top-level Dockerfile without a Docker engine:
# buildah with chroot isolation, no registry (the Debian base images are made locally by
# base-images.sh and carry the upstream names), layers and the ccache mount kept in the machine's
# container storage between runs.
#
#   scripts/image/build.sh [TAG]     default TAG agentlancer:dev (→ localhost/agentlancer:dev);
#                                    also tagged localhost/agentlancer:<git short sha>[-dirty]
# Environment: IIDFILE=path  also write the image id there.
# Needs root (apt-get, buildah's storage). Installs what is missing: buildah, mmdebstrap.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${1:-agentlancer:dev}"

[ "$(id -u)" -eq 0 ] || { echo "image build: run as root (apt-get, container storage)" >&2; exit 1; }

# The minimal working set here (scripts/install-deps.sh image): buildah (builds, and runs with
# --isolation=chroot: no OCI runtime, no podman, no fuse-overlayfs: root uses the kernel's
# overlay) and mmdebstrap (the base images); only what is missing is installed.
bash "$repo/scripts/install-deps.sh" image

bash "$here/base-images.sh"

revision="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
short="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo nogit)"
# A tree with changes to what goes into the image is not that commit: say so in the tag.
if [ "$short" != nogit ] && ! git -C "$repo" diff --quiet HEAD -- CMakeLists.txt CMakePresets.json Dockerfile .dockerignore \
     VERSION cmake docs/openapi.yaml app common thread-service offer-service job-service notifier 2>/dev/null; then
  short="$short-dirty"
  revision="$revision-dirty"
fi
labels=(--label "org.opencontainers.image.revision=$revision")
# The repository's URL when origin is one (a fresh clone's origin may be a local path: no label).
source_url="$(git -C "$repo" remote get-url origin 2>/dev/null || true)"
case "$source_url" in
  https://*|http://*|git@*|ssh://*) labels+=(--label "org.opencontainers.image.source=$source_url") ;;
esac

iidfile="$(mktemp)"
trap 'rm -f "$iidfile"' EXIT
start=$SECONDS
buildah bud --pull=never --isolation=chroot --layers \
  "${labels[@]}" --build-arg "AGENTLANCER_COMMIT=$short" \
  --iidfile "$iidfile" -t "$tag" -t "localhost/agentlancer:$short" \
  -f "$repo/Dockerfile" "$repo"
id="$(cat "$iidfile")"
[ -n "${IIDFILE:-}" ] && cp "$iidfile" "$IIDFILE"
size="$(buildah images --format '{{.Size}}' "$id" | awk 'NR == 1')"
echo "image: $tag localhost/agentlancer:$short"
echo "image id: ${id#sha256:}"
echo "image size: $size"
echo "image build: $((SECONDS - start)) s"
