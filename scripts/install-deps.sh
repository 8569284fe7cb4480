#!/usr/bin/env bash
# Installs the Debian packages the build (and optionally the benchmarks) need; only what is missing.
#   scripts/install-deps.sh [build|test|bench|cluster|image]
set -euo pipefail
what="${1:-build}"
packages=(cmake ninja-build g++ pkg-config libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
          librdkafka-dev libsqlite3-dev libpq-dev libssl-dev)
case "$what" in
  build) ;;
  # clang-14 + libclang-rt-14-dev: libFuzzer and the sanitizers of the fuzz preset (ctest fuzz).
  # python3-venv: the virtualenvs of tests/k8s and tests/schemathesis (pip into .cache/).
  test) packages+=(ccache libgtest-dev maven default-jre-headless python3 python3-venv jq curl openssl postgresql-15 nginx-light
                   clang-14 libclang-rt-14-dev) ;;
  cluster) packages+=(maven default-jre-headless python3 curl openssl postgresql-15 nginx-light) ;;
  bench) packages+=(nginx-light golang-go curl) ;;
  # The OCI image (scripts/image/): buildah builds and runs it with chroot isolation (no podman,
  # no OCI runtime, no fuse-overlayfs as root), mmdebstrap makes the Debian base images.
  image) packages=(buildah mmdebstrap) ;;
  *) echo "usage: $0 [build|test|bench|cluster|image]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  # java/mvn/go may come from elsewhere on the machine: accept the command instead of the package.
  case "$p" in
    default-jre-headless) command -v java >/dev/null && continue ;;
    maven) command -v mvn >/dev/null && continue ;;
    golang-go) command -v go >/dev/null && continue ;;
    python3) command -v python3 >/dev/null && continue ;;
    python3-venv) python3 -c 'import ensurepip, venv' 2>/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
