#!/usr/bin/env bash
# The container image, end to end (ctest `image`): builds it from the Dockerfile with
# scripts/image/build.sh (buildah, no Docker engine), then checks what a cluster would rely on:
#   - the image config: USER 10001:10001, ENTRYPOINT ["/usr/local/bin/agentlancer"], CMD ["all"],
#     ENV AGENTLANCER_HTTP_ADDRESS=0.0.0.0 and AGENTLANCER_DATA_DIR=/var/lib/agentlancer,
#     EXPOSE 8080/tcp, the OCI labels;
#   - the root filesystem (buildah mount): the binary stripped, no compiler, no CMake, no headers,
#     no apt lists, the data directory owned by 10001, a passwd entry for it, the CA roots;
#     `ldd` in the image resolves every library; size under IMAGE_MAX_MB;
#   - the binary run from the image (buildah run --isolation=chroot, which shares the host's
#     network: the image's own ENTRYPOINT + CMD, i.e. `agentlancer all`, with its default data
#     directory, then `agentlancer job-service --http.port … --data_dir /tmp/…`): /healthz → 200,
#     /readyz → 200 from the host, the process runs as uid 10001, SIGTERM stops it with status 0.
# Loopback only: the runs bind 127.0.0.1 (AGENTLANCER_HTTP_ADDRESS overridden for the run alone).
#
#   scripts/image/image_test.sh [REPO]
# Environment: IMAGE_MAX_MB (default 150), READY_TIMEOUT (seconds, default 90).
# Needs root. Exit status non-zero, with the reason, on any failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${1:-$here/../..}" && pwd)"
IMAGE_MAX_MB="${IMAGE_MAX_MB:-150}"
READY_TIMEOUT="${READY_TIMEOUT:-90}"
tag="localhost/agentlancer:image-test-$$"
work="$(mktemp -d /tmp/agentlancer-image-test.XXXXXX)"
start_all=$SECONDS

containers=()
mounted=()
run_pgids=()
failures=0

cleanup() {
  local status=$?
  local g c
  for g in "${run_pgids[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
  for c in "${mounted[@]}"; do buildah umount "$c" >/dev/null 2>&1 || true; done
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  # Only the test's own tag: the layers stay cached for the next build.
  buildah rmi "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
  if [ "$status" -ne 0 ] || [ "$failures" -ne 0 ]; then
    echo "image test: FAILED ($failures failed checks, exit $status) after $((SECONDS - start_all)) s" >&2
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
die() { echo "FAIL: $*" >&2; failures=$((failures + 1)); exit 1; }
# check DESCRIPTION COMMAND…: one assertion; the test goes on and fails at the end.
check() {
  local what="$1"; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

for tool in python3 curl readelf; do
  command -v "$tool" >/dev/null || die "$tool is missing on the host"
done

# --- build ----------------------------------------------------------------------------------
echo "image test: building (scripts/image/build.sh $tag)"
build_start=$SECONDS
if ! IIDFILE="$work/iid" bash "$here/build.sh" "$tag" >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log" >&2
  die "the image build failed (last lines above)"
fi
grep -E '^(base-images:|image|  Hits|  Misses)' "$work/build.log" || true
echo "image test: build took $((SECONDS - build_start)) s"
image_id="$(cat "$work/iid")"
[ -n "$image_id" ] || die "build.sh wrote no image id"
buildah inspect --type image "$tag" >/dev/null || die "no image tagged $tag after the build"

# --- image config ---------------------------------------------------------------------------
buildah inspect --type image "$tag" | python3 -c 'import json, sys; json.dump(json.load(sys.stdin)["OCIv1"]["config"], sys.stdout)' >"$work/config.json"
head="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
python3 - "$work/config.json" "$head" <<'EOF' || fail "image config (lines above)"
import json, sys
config = json.load(open(sys.argv[1]))
head = sys.argv[2]
env = dict(e.split("=", 1) for e in config.get("Env") or [])
labels = config.get("Labels") or {}
expect = [
    ("User", config.get("User"), "10001:10001"),
    ("Entrypoint", config.get("Entrypoint"), ["/usr/local/bin/agentlancer"]),
    ("Cmd", config.get("Cmd"), ["all"]),
    ("Env AGENTLANCER_HTTP_ADDRESS", env.get("AGENTLANCER_HTTP_ADDRESS"), "0.0.0.0"),
    ("Env AGENTLANCER_DATA_DIR", env.get("AGENTLANCER_DATA_DIR"), "/var/lib/agentlancer"),
    ("ExposedPorts", sorted((config.get("ExposedPorts") or {}).keys()), ["8080/tcp"]),
    ("WorkingDir", config.get("WorkingDir"), "/var/lib/agentlancer"),
    ("label org.opencontainers.image.title", labels.get("org.opencontainers.image.title"), "agentlancer"),
]
bad = 0
for name, got, want in expect:
    if got == want:
        print(f"ok: config {name} = {got!r}")
    else:
        print(f"FAIL: config {name} = {got!r}, expected {want!r}", file=sys.stderr)
        bad += 1
for key in ("description", "licenses"):
    if not labels.get("org.opencontainers.image." + key):
        print(f"FAIL: label org.opencontainers.image.{key} missing", file=sys.stderr)
        bad += 1
# The commit built, not a stale one from the layer cache (build.sh gives it with --label).
revision = labels.get("org.opencontainers.image.revision")
if revision not in (head, head + "-dirty"):
    print(f"FAIL: label org.opencontainers.image.revision = {revision!r}, expected {head!r}[-dirty]", file=sys.stderr)
    bad += 1
else:
    print(f"ok: label org.opencontainers.image.revision = {revision!r}")
if "/usr/local/bin" not in env.get("PATH", ""):
    print(f"FAIL: PATH {env.get('PATH')!r}", file=sys.stderr)
    bad += 1
sys.exit(1 if bad else 0)
EOF

# --- root filesystem ------------------------------------------------------------------------
c="$(buildah from --pull=never --name "agentlancer-image-test-fs-$$" "$tag")"
containers+=("$c")
root="$(buildah mount "$c")"
mounted+=("$c")
# Positive controls first: the checks of absence below look into the image, not into nothing.
[ -x "$root/usr/local/bin/agentlancer" ] || die "no executable /usr/local/bin/agentlancer in the image (mount $root)"
[ -e "$root/usr/bin/ldd" ] || die "no /usr/bin/ldd in the image: the library check below needs it"
grep -q 'VERSION_CODENAME=bookworm' "$root/etc/os-release" || die "the runtime image is not Debian bookworm"
ok "the image root is mounted ($root) and holds the binary"

for path in /usr/bin/g++ /usr/bin/gcc /usr/bin/c++ /usr/bin/cc /usr/bin/cmake /usr/bin/ninja /usr/bin/ccache \
            /usr/bin/ld /usr/bin/make /usr/include/boost /usr/include/librdkafka /usr/include/postgresql /src /out; do
  check "no $path in the runtime image" test ! -e "$root$path"
done
lists="$(find "$root/var/lib/apt/lists" -mindepth 1 -maxdepth 1 -type f ! -name lock 2>/dev/null | wc -l)"
check "no apt lists left in the image ($lists files)" test "$lists" -eq 0
debs="$(find "$root/var/cache/apt/archives" -name '*.deb' 2>/dev/null | wc -l)"
check "no .deb files left in the image ($debs)" test "$debs" -eq 0
check "the binary is stripped (no .symtab)" bash -c "! readelf -S '$root/usr/local/bin/agentlancer' | grep -q '\.symtab'"
check "the binary belongs to root, not to the service user" test "$(stat -c %u "$root/usr/local/bin/agentlancer")" = 0
check "/var/lib/agentlancer is owned by 10001:10001" test "$(stat -c %u:%g "$root/var/lib/agentlancer")" = 10001:10001
check "/etc/passwd names uid 10001" grep -q '^[^:]*:[^:]*:10001:10001:' "$root/etc/passwd"
check "the CA roots are there" test -s "$root/etc/ssl/certs/ca-certificates.crt"
buildah umount "$c" >/dev/null
mounted=()

# ldd inside the image (its own loader and libraries).
if buildah run --isolation=chroot "$c" -- /usr/bin/ldd /usr/local/bin/agentlancer >"$work/ldd.txt" 2>&1; then
  if grep -q 'not found' "$work/ldd.txt"; then
    grep 'not found' "$work/ldd.txt" >&2
    fail "ldd in the image: libraries not found (above)"
  elif ! grep -q 'libboost_json' "$work/ldd.txt" || ! grep -q 'librdkafka' "$work/ldd.txt"; then
    cat "$work/ldd.txt" >&2
    fail "ldd in the image listed neither libboost_json nor librdkafka (output above)"
  else
    ok "ldd in the image resolves all $(grep -c '=>' "$work/ldd.txt") libraries"
  fi
else
  cat "$work/ldd.txt" >&2
  fail "ldd in the image failed"
fi

size="$(buildah images --noheading --format '{{.Size}}' "$image_id" | awk 'NR == 1')"
root="$(buildah mount "$c")"
mounted+=("$c")
size_mb="$(du -sm "$root" | cut -f1)"
buildah umount "$c" >/dev/null
mounted=()
echo "image size: $size (root filesystem on disk: $size_mb MB)"
check "root filesystem under ${IMAGE_MAX_MB} MB ($size_mb MB)" test "$size_mb" -lt "$IMAGE_MAX_MB"

# --- the binary from the image --------------------------------------------------------------
# run_service NAME PORT CMD…: runs CMD in a new container of the image, in its own process group
# (setsid), with the HTTP server on 127.0.0.1:PORT; waits for /healthz and /readyz → 200, checks
# the process's uid, stops it with SIGTERM and wants exit status 0.
run_service() {
  local name="$1" port="$2"; shift 2
  local rc ctr log="$work/$name.log"
  ctr="$(buildah from --pull=never --name "agentlancer-image-test-$name-$$" "$tag")"
  containers+=("$ctr")
  LAST_CONTAINER="$ctr"
  setsid buildah run --isolation=chroot \
    --env AGENTLANCER_HTTP_ADDRESS=127.0.0.1 --env AGENTLANCER_HTTP_PORT="$port" \
    "$ctr" -- "$@" >"$log" 2>&1 </dev/null &
  local runner=$!
  run_pgids+=("$runner")
  echo "image test: $name: buildah run … $* (127.0.0.1:$port)"

  local deadline=$((SECONDS + READY_TIMEOUT)) healthz="" readyz=""
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$runner" 2>/dev/null; then
      tail -n 30 "$log" >&2
      fail "$name: the process ended before it was ready (log above)"
      return 0
    fi
    healthz="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/healthz" || true)"
    readyz="$(curl -s -o "$work/$name.readyz" -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz" || true)"
    [ "$healthz" = 200 ] && [ "$readyz" = 200 ] && break
    sleep 0.5
  done
  if [ "$healthz" = 200 ] && [ "$readyz" = 200 ]; then
    ok "$name: GET /healthz 200, GET /readyz 200 $(cat "$work/$name.readyz") after $((SECONDS - deadline + READY_TIMEOUT)) s"
    if [ "$name" = all ]; then
      check "all: GET /openapi.yaml serves the embedded document" \
        bash -c "curl -s --max-time 5 'http://127.0.0.1:$port/openapi.yaml' | cmp -s - '$repo/docs/openapi.yaml'"
      local commit
      commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
      check "all: agentlancer_build_info names the commit $commit" \
        bash -c "curl -s --max-time 5 'http://127.0.0.1:$port/metrics' | grep -Eq '^agentlancer_build_info\\{version=\"[^\"]+\",commit=\"$commit(-dirty)?\"\\} 1$'"
    fi
  else
    tail -n 30 "$log" >&2
    fail "$name: not ready within ${READY_TIMEOUT} s (/healthz $healthz, /readyz $readyz; log above)"
  fi

  # The service process: in the runner's process group (buildah's chroot isolation shares the
  # host's PID namespace).
  local pid
  pid="$(pgrep -g "$runner" -x agentlancer | awk "NR == 1" || true)"
  if [ -z "$pid" ]; then
    fail "$name: no agentlancer process in the runner's process group"
  else
    check "$name: runs as uid 10001 and gid 10001" \
      bash -c "grep -q '^Uid:[[:space:]]*10001[[:space:]]' /proc/$pid/status && grep -q '^Gid:[[:space:]]*10001[[:space:]]' /proc/$pid/status"
    kill -TERM "$pid"
  fi
  rc=0
  local waited=0
  while kill -0 "$runner" 2>/dev/null && [ $waited -lt 60 ]; do sleep 0.5; waited=$((waited + 1)); done
  if kill -0 "$runner" 2>/dev/null; then
    fail "$name: still running 30 s after SIGTERM"
    kill -KILL -- "-$runner" 2>/dev/null || true
  fi
  wait "$runner" || rc=$?
  if [ "$rc" -eq 0 ]; then ok "$name: SIGTERM → exit status 0"; else tail -n 20 "$log" >&2; fail "$name: exit status $rc after SIGTERM (log above)"; fi
  grep -q '"level":"error"' "$log" && { grep '"level":"error"' "$log" | head -5 >&2; fail "$name: error lines in its log (above)"; }
  return 0
}

read -r port_all port_job <<<"$(python3 "$repo/scripts/free-port.py" 2)"

# 1. Exactly what a runtime starts with no arguments: ENTRYPOINT + CMD from the image config,
#    with the image's own data directory (AGENTLANCER_DATA_DIR).
mapfile -t default_cmd < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("\n".join((c.get("Entrypoint") or []) + (c.get("Cmd") or [])))' "$work/config.json")
[ "${#default_cmd[@]}" -ge 2 ] || die "no ENTRYPOINT + CMD to run: ${default_cmd[*]:-(none)}"
run_service all "$port_all" "${default_cmd[@]}"
all_ctr="$LAST_CONTAINER"
root="$(buildah mount "$all_ctr")"
mounted+=("$all_ctr")
written="$(find "$root/var/lib/agentlancer" -mindepth 1 -maxdepth 1 | wc -l)"
check "all: wrote its data under /var/lib/agentlancer ($written entries, owned by 10001)" \
  bash -c "[ $written -gt 0 ] && [ -z \"\$(find '$root/var/lib/agentlancer' -mindepth 1 ! -uid 10001 -print -quit)\" ]"
buildah umount "$all_ctr" >/dev/null
mounted=()

# 2. One service by argument, configured by flags.
run_service job-service "$port_job" /usr/local/bin/agentlancer job-service --http.port "$port_job" --data_dir /tmp/job-service

echo "image test: $((SECONDS - start_all)) s in all"
if [ "$failures" -ne 0 ]; then
  echo "image test: $failures checks failed" >&2
  exit 1
fi
echo "image test: all checks passed"
