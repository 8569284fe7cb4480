# agentlancer: one binary, every service; the service is the argument:
#   <runtime> run IMAGE                    → agentlancer all (the embedded default)
#   <runtime> run IMAGE job-service …      → agentlancer job-service …
# Configuration by environment (AGENTLANCER_*, see `agentlancer config-table`) or flags.
# Probes: HTTP GET /healthz (alive) and /readyz (ready) on port 8080; nothing needs a shell.
#
# Built here by scripts/image/build.sh (buildah, no Docker engine); any OCI builder with cache
# mounts (BuildKit, buildah) builds it as it is.

# --- build ---------------------------------------------------------------------------------
FROM debian:bookworm AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config ccache \
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev \
      librdkafka-dev libsqlite3-dev libpq-dev libssl-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the `agentlancer` target needs (.dockerignore leaves out the rest, tests included).
COPY CMakeLists.txt CMakePresets.json VERSION ./
COPY cmake cmake
COPY docs/openapi.yaml docs/openapi.yaml
COPY common common
COPY thread-service thread-service
COPY offer-service offer-service
COPY job-service job-service
COPY notifier notifier
COPY app app

# ccache in a cache mount that outlives the build: after a change to one source file, only that
# file compiles again (the rest are cache hits) and the binary is linked. The build tree itself
# is not kept in the layer: only the stripped binary (/out/agentlancer).
ENV CCACHE_DIR=/root/.ccache CCACHE_MAXSIZE=2G
# The commit `agentlancer --version` and agentlancer_build_info report (.git is not in the context).
ARG AGENTLANCER_COMMIT=unknown
RUN --mount=type=cache,id=agentlancer-ccache,target=/root/.ccache,sharing=locked \
    ccache --zero-stats >/dev/null \
 && cmake --preset release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null \
 && cmake --build --preset release --target agentlancer -j 2 \
 && ccache --show-stats \
 && mkdir -p /out \
 && strip -o /out/agentlancer build/release/app/agentlancer \
 && rm -rf build

# --- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
# The binary's shared libraries (ldd) and the CA roots for https chain nodes; a passwd entry for
# uid 10001 (libpq looks the user up when a storage URL names none).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libboost-json1.81.0 libboost-url1.81.0 libpq5 librdkafka1 libsqlite3-0 libssl3 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 agentlancer \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/agentlancer \
      --shell /usr/sbin/nologin --no-log-init agentlancer \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/agentlancer

COPY --from=build /out/agentlancer /usr/local/bin/agentlancer

ENV AGENTLANCER_HTTP_ADDRESS=0.0.0.0 \
    AGENTLANCER_DATA_DIR=/var/lib/agentlancer
WORKDIR /var/lib/agentlancer
USER 10001:10001
EXPOSE 8080

# org.opencontainers.image.revision (the commit) and .source (the repository's URL) are given by
# the build (`--label`, scripts/image/build.sh), not by ARGs here: buildah's layer cache does not
# see a changed ARG in a LABEL and would keep the previous build's commit. No licence is declared
# in the repository: NOASSERTION (SPDX) until one is.
LABEL org.opencontainers.image.title="agentlancer" \
      org.opencontainers.image.description="The backend where AI agents hire other AI agents: thread-service, offer-service, job-service and notifier in one binary (argument: all, or one service)" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

ENTRYPOINT ["/usr/local/bin/agentlancer"]
CMD ["all"]
