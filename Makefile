# Front end in the style of userver's service template.
#   make start   install what is missing, build release, run the embedded stack on 127.0.0.1:$(PORT)
#   make test    install what is missing, build the sanitizer build, run every test through ctest
#   make cluster install what is missing, build release, start the local cluster behind the gateway
#                on 127.0.0.1:$(PORT) (cluster-status, cluster-logs, cluster-stop, cluster-kill SERVICE=…,
#                cluster-restart [SERVICE=…], cluster-faults: the fault suite against it)
#   make image   install what is missing, build the OCI image agentlancer:dev from the Dockerfile
#                with buildah (no Docker engine; base images made locally, scripts/image/)
PORT ?= 8080
DATA_DIR ?= ./data
JOBS ?= 2
CTEST_JOBS ?= 2

.PHONY: cluster cluster-status cluster-logs cluster-stop cluster-kill cluster-restart cluster-faults deps-cluster start test deps deps-test build-release build-debug bench bench-job-service bench-thread-service bench-offer-service bench-notifier bench-webhooks bench-postgres bench-cluster clean image

deps:
	@bash scripts/install-deps.sh build

deps-test:
	@bash scripts/install-deps.sh test
	@bash scripts/kafka/kafka.sh fetch >/dev/null
	@cd tests/socketio && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@cd tests/chain && npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@cd tests/schemathesis && npm ci --no-audit --no-fund --loglevel=error >/dev/null

# ccache (when installed) keeps compiled objects across clones: paths relative to the checkout,
# so a fresh clone of the same sources hits the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
LAUNCHER := $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache,)

build-release: deps
	cmake --preset release $(LAUNCHER) >/dev/null
	cmake --build --preset release -j $(JOBS)

build-debug: deps-test
	cmake --preset debug $(LAUNCHER) >/dev/null
	cmake --build --preset debug -j $(JOBS)

start: build-release
	exec ./build/release/app/agentlancer all --port $(PORT) --data_dir $(DATA_DIR)

test: build-debug
	@CTEST_JOBS=$(CTEST_JOBS) bash scripts/run-tests.sh

deps-cluster:
	@bash scripts/install-deps.sh cluster
	@bash scripts/kafka/kafka.sh fetch >/dev/null

cluster: build-release deps-cluster
	@PORT=$(PORT) bash scripts/cluster/cluster.sh up

cluster-status:
	@PORT=$(PORT) bash scripts/cluster/cluster.sh status

cluster-logs:
	@bash scripts/cluster/cluster.sh logs $(NAME)

cluster-stop:
	@bash scripts/cluster/cluster.sh stop

cluster-kill:
	@bash scripts/cluster/cluster.sh kill $(SERVICE) $(REPLICA)

cluster-restart:
	@bash scripts/cluster/cluster.sh rolling-restart $(SERVICE)

# The fault suite (tests/fault/fault_suite.sh) against the running cluster; it stays up after.
cluster-faults:
	@CLUSTER_DIR=$${CLUSTER_DIR:-data/cluster} FAULT_USE_RUNNING=1 bash tests/fault/fault_suite.sh \
	  "$$(cat $${CLUSTER_DIR:-data/cluster}/agentlancer.bin)" "$(CURDIR)"

bench: bench-job-service bench-thread-service bench-offer-service bench-notifier bench-webhooks

bench-job-service: build-release
	@bash scripts/install-deps.sh bench
	bash tests/load/job-service/run.sh

bench-thread-service: build-release
	@bash scripts/install-deps.sh bench
	bash tests/load/thread-service/run.sh

bench-offer-service: build-release
	@bash scripts/install-deps.sh bench
	bash tests/load/offer-service/run.sh

bench-notifier: build-release
	@bash scripts/install-deps.sh bench
	bash tests/load/notifier/run.sh

# Webhook deliveries beside socket.io deliveries of the same events (tests/load/README.md).
bench-webhooks: build-release
	@bash scripts/install-deps.sh bench
	bash tests/load/webhooks/run.sh

bench-postgres: build-release
	@bash scripts/install-deps.sh bench
	@bash scripts/install-deps.sh test
	bash tests/load/postgres/run.sh

# The cluster through its gateway vs nginx→204 and the embedded default (docs/benchmarks.md).
bench-cluster: build-release deps-cluster
	@bash scripts/install-deps.sh bench
	bash tests/load/cluster/run.sh

clean:
	rm -rf build

# The OCI image (Dockerfile) built with buildah, tagged agentlancer:dev and localhost/agentlancer:<sha>.
image:
	bash scripts/image/build.sh
