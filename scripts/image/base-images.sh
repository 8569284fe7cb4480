#!/usr/bin/env bash
# Makes the two Debian base images the Dockerfile starts from, when container storage lacks them:
# no registry is reachable here, so they are built from Debian's packages with mmdebstrap and
# tagged with the upstream names (docker.io/library/debian:bookworm and :bookworm-slim, plus
# localhost/debian:…), and the Dockerfile stays exactly what it would be anywhere else.
#
#   scripts/image/base-images.sh            make what is missing (storage first, then the tarball cache)
#   REBUILD_BASE=1 scripts/image/base-images.sh   make both again from Debian's packages
#
#   debian:bookworm       mmdebstrap --variant=apt      (apt, no docs trimmed: the build stage)
#   debian:bookworm-slim  mmdebstrap --variant=minbase  (man pages, docs and locales excluded by
#                         dpkg path-exclude, kept for later installs too, as upstream -slim does)
# Root filesystems are cached as tarballs under <repo>/.cache/images/ (git-ignored).
# Needs: buildah, mmdebstrap (scripts/image/build.sh installs them), root.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${IMAGE_CACHE_DIR:-$repo/.cache/images}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# The same sources an upstream debian:bookworm image has: the release, its updates and security.
sources=("deb $mirror $suite main" "deb $mirror $suite-updates main" "deb $security_mirror $suite-security main")

for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "base-images: $tool is missing (scripts/image/build.sh installs it)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "base-images: run as root (mmdebstrap root mode, buildah storage)" >&2; exit 1; }

have_image() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# make_tarball NAME VARIANT [mmdebstrap options…]: $cache/NAME.tar, unless it is there already.
make_tarball() {
  local name="$1" variant="$2"; shift 2
  local tar="$cache/$name.tar"
  if [ -s "$tar" ] && [ -z "${REBUILD_BASE:-}" ]; then return 0; fi
  mkdir -p "$cache"
  echo "base-images: mmdebstrap --variant=$variant $suite → $tar"
  local start=$SECONDS
  # Written beside, then renamed: an interrupted run never leaves a truncated tarball behind.
  # merged /usr as debootstrap (and so upstream's images) make it: directory symlinks set up
  # first, instead of the usrmerge package, which would pull perl into the image.
  if ! mmdebstrap --quiet --variant="$variant" --mode=root --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "$@" \
      "$suite" "$tar.part" "${sources[@]}" >"$cache/$name.log" 2>&1; then
    tail -n 40 "$cache/$name.log" >&2
    rm -f "$tar.part"
    echo "base-images: mmdebstrap failed for $name (log: $cache/$name.log)" >&2
    exit 1
  fi
  mv -f "$tar.part" "$tar"
  echo "base-images: $name.tar $(du -h "$tar" | cut -f1) in $((SECONDS - start)) s"
}

# import NAME TAG…: a single-layer image from $cache/NAME.tar, with upstream's config (PATH, bash).
import() {
  local name="$1"; shift
  local c
  c="$(buildah from scratch)"
  # shellcheck disable=SC2064
  trap "buildah rm '$c' >/dev/null 2>&1 || true" RETURN
  local mnt
  mnt="$(buildah mount "$c")"
  tar -xpf "$cache/$name.tar" -C "$mnt" --numeric-owner
  buildah umount "$c" >/dev/null
  buildah config --os linux --arch amd64 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' \
    --label org.opencontainers.image.description="Debian $suite ($name), made locally with mmdebstrap" \
    "$c"
  buildah commit --quiet --rm "$c" "$1" >/dev/null
  trap - RETURN
  local tag
  for tag in "${@:2}"; do buildah tag "$1" "$tag"; done
  echo "base-images: $* ($(buildah inspect --type image --format '{{.FromImageID}}' "$1" | cut -c1-12))"
}

slim_excludes=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/linda/*'
)

if [ -n "${REBUILD_BASE:-}" ] || ! have_image docker.io/library/debian:$suite; then
  make_tarball "debian-$suite" apt
  import "debian-$suite" docker.io/library/debian:$suite localhost/debian:$suite
fi
if [ -n "${REBUILD_BASE:-}" ] || ! have_image docker.io/library/debian:$suite-slim; then
  make_tarball "debian-$suite-slim" minbase "${slim_excludes[@]}"
  import "debian-$suite-slim" docker.io/library/debian:$suite-slim localhost/debian:$suite-slim
fi
