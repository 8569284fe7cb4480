#!/usr/bin/env bash
# Proves that tests/k8s/validate.py catches broken manifests: writes small sample objects, valid
# ones and ones with one planted break each, validates them, and asserts `ok` or `FAIL` for each
# object, and for each FAIL that the reason names the break. Fails when the validator stops
# catching any of them (or starts rejecting a valid one), and checks the exit codes.
#
#   tests/k8s/validate_selftest.sh
#
# Runs tests/k8s/setup.sh (venv) and scripts/k8s/fetch-crds.sh (CRDs into $K8S_CRDS, default
# <repo>/.cache/k8s/crds) first; both are cached, so a warm run does no network work.
# K8S_VALIDATE=path tests another copy of validate.py (how the selftest itself was tested: each
# check of the validator switched off in a copy makes this script fail).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
crds="${K8S_CRDS:-$repo/.cache/k8s/crds}"
validate="${K8S_VALIDATE:-$here/validate.py}"   # another validator to test (e.g. a mutated copy)

python="$("$here/setup.sh")"
"$repo/scripts/k8s/fetch-crds.sh" "$crds"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
# Samples. Each object has its own name; `expect` below says what the validator must say of it.
cat >"$work/core.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: agentlancer
  labels: {app.kubernetes.io/name: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app.kubernetes.io/name: web}
  template:
    metadata:
      labels: {app.kubernetes.io/name: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0.0
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: http}}
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-replica-typo
spec:
  replica: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0.0
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-selector-mismatch
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: other}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0.0
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app.kubernetes.io/name: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web-v1-style}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 6
  targetCPUUtilizationPercentage: 70
---
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {name: web-removed-api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 6
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: web}}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: 8080, protocol: TCP}]
EOF

cat >"$work/gateway.yaml" <<'EOF'
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: example
  listeners:
    - name: http
      protocol: HTTP
      port: 80
      allowedRoutes: {namespaces: {from: Same}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: gw}]
  hostnames: [api.example.com]
  rules:
    - matches:
        - path: {type: PathPrefix, value: /api}
      backendRefs: [{name: web, port: 80}]
      timeouts: {request: 10s, backendRequest: 5s}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api-bad-path-type}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches:
        - path: {type: Prefix, value: /api}
      backendRefs: [{name: web, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api-bad-match-value}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches:
        - path: {type: PathPrefix, value: api}
      backendRefs: [{name: web, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api-bad-header-match-type}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches:
        - headers: [{type: Prefix, name: x-version, value: v1}]
      backendRefs: [{name: web, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api-bad-timeouts}
spec:
  parentRefs: [{name: gw}]
  rules:
    - backendRefs: [{name: web, port: 80}]
      timeouts: {request: 5s, backendRequest: 10s}
EOF

cat >"$work/cnpg.yaml" <<'EOF'
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg}
spec:
  instances: 3
  postgresql:
    parameters: {max_connections: "200"}
  bootstrap:
    initdb: {database: app, owner: app}
  storage: {size: 10Gi}
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: pg-instances-string}
spec:
  instances: "three"
  storage: {size: 10Gi}
---
apiVersion: postgresql.cnpg.io/v1
kind: Pooler
metadata: {name: pg-pooler-rw}
spec:
  cluster: {name: pg}
  instances: 2
  type: rw
  pgbouncer:
    poolMode: transaction
EOF

cat >"$work/strimzi.yaml" <<'EOF'
apiVersion: kafka.strimzi.io/v1
kind: KafkaNodePool
metadata:
  name: dual-role
  labels: {strimzi.io/cluster: kafka}
spec:
  replicas: 3
  roles: [controller, broker]
  storage:
    type: jbod
    volumes:
      - {id: 0, type: persistent-claim, size: 20Gi, deleteClaim: false, kraftMetadata: shared}
---
apiVersion: kafka.strimzi.io/v1
kind: Kafka
metadata: {name: kafka}
spec:
  kafka:
    listeners:
      - {name: plain, port: 9092, type: internal, tls: false}
    config:
      default.replication.factor: 3
      min.insync.replicas: 2
  entityOperator:
    topicOperator: {}
---
apiVersion: kafka.strimzi.io/v1
kind: Kafka
metadata: {name: kafka-with-zookeeper}
spec:
  kafka:
    replicas: 3
    listeners:
      - {name: plain, port: 9092, type: internal, tls: false}
  zookeeper: {replicas: 3}
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: job-events
  labels: {strimzi.io/cluster: kafka}
spec:
  partitions: 6
  replicas: 3
  config: {retention.ms: 604800000}
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: job-events-typo
  labels: {strimzi.io/cluster: kafka}
spec:
  partitions: 6
  replicationFactor: 3
---
apiVersion: kafka.strimzi.io/v1beta2
kind: KafkaTopic
metadata:
  name: job-events-v1beta2
  labels: {strimzi.io/cluster: kafka}
spec:
  partitions: 6
EOF

# A small CRD of our own, for what the real ones may not show: int-or-string, preserve-unknown-
# fields, nullable, defaults (applied before the CEL rules see the object), list-type map, a version
# that is not served.
mkdir -p "$work/crds"
cat >"$work/crds/gadgets.yaml" <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.selftest.example.com}
spec:
  group: selftest.example.com
  scope: Namespaced
  names: {kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}
  versions:
    - name: v1alpha1
      served: false
      storage: false
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [port]
              properties:
                port:
                  x-kubernetes-int-or-string: true
                  anyOf: [{type: integer}, {type: string}]
                share: {x-kubernetes-int-or-string: true}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
                note: {type: string, nullable: true}
                mode: {type: string, enum: [fast, safe], default: fast}
                parts:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items:
                    type: object
                    required: [name]
                    properties:
                      name: {type: string}
                      size: {type: integer, minimum: 1}
              x-kubernetes-validations:
                - rule: "self.mode == 'fast' || has(self.parts)"
                  message: safe mode needs parts
EOF

cat >"$work/gadgets.yaml" <<'EOF'
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget}
spec:
  port: 8080
  share: 50%
  mode: null
  note: null
  extra: {anything: {nested: [1, two]}}
  parts: [{name: a, size: 1}, {name: b}]
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-named-port}
spec:
  port: http
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-bool-port}
spec:
  port: true
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-list-share}
spec:
  port: 80
  share: [50]
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-unknown-field}
spec:
  port: 80
  extras: {}
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-duplicate-parts}
spec:
  port: 80
  parts: [{name: a}, {name: a, size: 2}]
---
apiVersion: selftest.example.com/v1
kind: Gadget
metadata: {name: gadget-safe-without-parts}
spec:
  port: 80
  mode: safe
---
apiVersion: selftest.example.com/v1alpha1
kind: Gadget
metadata: {name: gadget-not-served}
spec: {port: 80}
EOF

cat >"$work/unknown.yaml" <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: gizmo}
spec: {size: 3}
EOF

# ---------------------------------------------------------------------------------------------
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "selftest FAIL: $*"; }

out="$work/out.txt"
set +e
"$python" "$validate" --crds "$crds" --crds "$work/crds" "$work/core.yaml" "$work/gateway.yaml" \
    "$work/cnpg.yaml" "$work/strimzi.yaml" "$work/gadgets.yaml" "$work/unknown.yaml" >"$out" 2>"$work/err.txt"
rc=$?
set -e
sed 's/^/  | /' "$out"
[[ -s "$work/err.txt" ]] && sed 's/^/  ! /' "$work/err.txt"

# expect ok|FAIL Kind/name [text the FAIL reason must contain]
expect() {
    local status="$1" obj="$2" needle="${3:-}" line
    line="$(grep -E "^(ok|FAIL) ${obj//./\\.}( |:|$)" "$out" || true)"
    if [[ -z "$line" ]]; then
        fail "$obj: no line for it"
    elif [[ "$(printf '%s\n' "$line" | wc -l)" -ne 1 ]]; then
        fail "$obj: more than one line"
    elif [[ "${line%% *}" != "$status" ]]; then
        fail "$obj: expected $status, got: $line"
    elif [[ -n "$needle" && "$line" != *"$needle"* ]]; then
        fail "$obj: the reason does not name the break ($needle): $line"
    else
        pass
    fi
}

expect ok   Deployment/web
expect FAIL Deployment/web-replica-typo 'unknown field "spec.replica"'
expect FAIL Deployment/web-selector-mismatch 'selector` does not match template `labels'
expect ok   Service/web
expect ok   HorizontalPodAutoscaler/web
expect FAIL HorizontalPodAutoscaler/web-v1-style 'targetCPUUtilizationPercentage'
expect FAIL HorizontalPodAutoscaler/web-removed-api 'no schema for autoscaling/v2beta2'
expect ok   PodDisruptionBudget/web
expect ok   NetworkPolicy/web
expect ok   Gateway/gw
expect ok   HTTPRoute/api
expect FAIL HTTPRoute/api-bad-path-type "spec.rules[0].matches[0].path.type: 'Prefix' is not one of"
expect FAIL HTTPRoute/api-bad-match-value "must be an absolute path and start with '/'"
expect FAIL HTTPRoute/api-bad-header-match-type "headers[0].type: 'Prefix' is not one of"
expect FAIL HTTPRoute/api-bad-timeouts 'backendRequest timeout cannot be longer than request timeout'
expect ok   Cluster/pg
expect FAIL Cluster/pg-instances-string "spec.instances: 'three' is not of type 'integer'"
expect ok   Pooler/pg-pooler-rw
expect ok   KafkaNodePool/dual-role
expect ok   Kafka/kafka
expect FAIL Kafka/kafka-with-zookeeper 'unknown field "spec.zookeeper"'
expect ok   KafkaTopic/job-events
expect FAIL KafkaTopic/job-events-typo 'unknown field "spec.replicationFactor"'
expect FAIL KafkaTopic/job-events-v1beta2 'apiVersion kafka.strimzi.io/v1beta2 is not served'
expect ok   Gadget/gadget
expect ok   Gadget/gadget-named-port
expect FAIL Gadget/gadget-bool-port 'spec.port: True is not valid under any of the given schemas'
expect FAIL Gadget/gadget-list-share "spec.share: [50] is not of type 'integer', 'string'"
expect FAIL Gadget/gadget-unknown-field 'unknown field "spec.extras"'
expect FAIL Gadget/gadget-duplicate-parts 'spec.parts[1]: duplicate entry with name="a"'
expect FAIL Gadget/gadget-safe-without-parts 'spec: safe mode needs parts'
expect FAIL Gadget/gadget-not-served 'apiVersion selftest.example.com/v1alpha1 is not served'
expect FAIL Widget/gizmo 'no schema for example.com/v1 Widget'

# every object has exactly one line, and the run failed as a whole
objects="$(grep -cE '^(ok|FAIL) ' "$out" || true)"
if [[ "$objects" -eq 33 ]]; then pass; else fail "expected 33 object lines, got $objects"; fi
if [[ "$rc" -eq 1 ]]; then pass; else fail "exit code $rc with failures, expected 1"; fi

# only the valid objects, from standard input: exit 0
set +e
"$python" - "$work/gateway.yaml" <<'PY' >"$work/valid.yaml"
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
print("\n---\n".join(d for d in docs if "name: api-bad" not in d))
PY
"$python" "$validate" --crds "$crds" - <"$work/valid.yaml" >"$work/out2.txt" 2>&1
rc2=$?
set -e
if [[ "$rc2" -eq 0 ]] && grep -q '^ok HTTPRoute/api$' "$work/out2.txt" && grep -q '^ok Gateway/gw$' "$work/out2.txt"; then
    pass
else
    fail "valid objects on stdin: exit $rc2: $(tr '\n' ' ' <"$work/out2.txt")"
fi

# no documents at all is a failure, not a pass
set +e
printf '# nothing\n' | "$python" "$validate" --crds "$crds" - >"$work/out3.txt" 2>&1
rc3=$?
set -e
if [[ "$rc3" -eq 1 ]]; then pass; else fail "empty input: exit $rc3, expected 1"; fi

echo "k8s-selftest: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
