#!/usr/bin/env python3
"""Deployment invariants, read from the rendered overlays and from the binary itself.

  invariants.py --bin AGENTLANCER --repo ROOT --overlay NAME=RENDERED.yaml [--overlay ...]

For every overlay:
  - every route the binary's router registers (`agentlancer routes`) reaches the service that owns
    it, and only it, through the overlay's gateway (HTTPRoutes or Ingress), and the gateway routes
    nothing the router does not have; the same for the local cluster's nginx
    (scripts/cluster/gateway.py) and deploy/gateway/routes.tsv;
  - every topic the code uses (`agentlancer topics`) has a KafkaTopic, with the partitions,
    replication and min.insync.replicas of deploy/topics.tsv (prod) or at least 1 (dev);
  - every probe path is a GET route of the binary; every env var a container sets, and every key
    of the ConfigMaps it reads, is a config key's variable (`agentlancer config-table`);
  - every container has readiness, liveness and startup probes, requests and limits, runs as
    non-root with a read-only root filesystem, no privilege escalation, every capability dropped
    and the RuntimeDefault seccomp profile; a preStop hook, and a grace period covering the preStop
    pause plus the drain (AGENTLANCER_SHUTDOWN_DRAIN_MS) plus the relay's flush;
  - every Deployment (and the notifier's StatefulSet) has a Service, a PodDisruptionBudget and a
    HorizontalPodAutoscaler; the namespace denies ingress by default; the ServiceAccount mounts
    no token;
  - sticky socket.io sessions: the notifier is a StatefulSet whose pods take their pod name as
    node tag (AGENTLANCER_NOTIFIER_WS_NODE_TAG from metadata.name, a tag the binary accepts: it is
    started with it and its handshake's sid is read); for every pod the StatefulSet or its
    autoscaler can make, a Service selects that pod alone, and with HTTPRoutes a request of its
    session (`/ws/agent?sid=<pod>.…`, the sid the binary made) reaches that Service only, while
    one without a sid (or another replica's) does not; with an Ingress, the socket path has
    cookie affinity (ingress-nginx cannot match the query).
Prints one line per check and `k8s-invariants: N passed, N failed`; exits 1 on any failure.
"""
import argparse
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

SAMPLE_SEGMENT = "abc_123"


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}{': ' + detail if detail else ''}")
        return ok


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def binary_routes(binary):
    routes = []  # (method, pattern, service)
    for line in run(binary, "routes").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            routes.append((parts[0], parts[1], parts[2]))
    return routes


def config_envs(binary):
    envs = set()
    for line in run(binary, "config-table").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        envs.update(re.findall(r"`([A-Z0-9_]+)`", cells[2]))
    return envs


def sample_path(pattern):
    return re.sub(r"\{[^/}]+\}", SAMPLE_SEGMENT, pattern)


def docs_of(path):
    return [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


# --- the gateways: which service does a request path reach? ---------------------------------------

def regex_hit(regex, value):
    """A RegularExpression match of Gateway API: implementation-specific. Envoy takes a whole-value
    (RE2) match, others a search; a regex here must mean the same under both."""
    full, search = re.fullmatch(regex, value) is not None, re.search(regex, value) is not None
    return full if full == search else None


def httproute_targets(docs, path, query=None):
    """The backends a request reaches: among the matching rules (of every HTTPRoute) those that rank
    first by Gateway API's precedence (an Exact path, then a longer prefix, then more query
    matches; regular expressions last), all of them, so that a tie shows as two targets."""
    query = query or {}
    ranked = []
    for route in by_kind(docs, "HTTPRoute"):
        for rule in route["spec"].get("rules", []):
            for match in rule.get("matches", []):
                p = match.get("path", {})
                kind, value = p.get("type", "PathPrefix"), p.get("value", "/")
                if kind == "Exact":
                    hit, rank = path == value, (2, len(value))
                elif kind == "PathPrefix":
                    hit, rank = path == value or path.startswith(value.rstrip("/") + "/"), (1, len(value))
                else:  # RegularExpression: RE2, a full match (Envoy's)
                    hit, rank = re.fullmatch(value, path) is not None, (0, 0)
                for q in match.get("queryParams", []):
                    got = query.get(q["name"])
                    if got is None:
                        hit = False
                    elif q.get("type", "Exact") == "Exact":
                        hit = hit and got == q["value"]
                    else:
                        got = regex_hit(q["value"], got)
                        if got is None and hit:  # shown as a target of its own: the check fails
                            ranked.append(((9,), [f"(full match and search disagree: {q['value']})"]))
                        hit = hit and bool(got)
                if hit:
                    ranked.append((rank + (len(match.get("queryParams", [])),), [b["name"] for b in rule.get("backendRefs", [])]))
    if not ranked:
        return []
    best = max(r for r, _ in ranked)
    return [name for r, names in ranked if r == best for name in names]


def ingress_targets(docs, path):
    hits = []
    for ingress in by_kind(docs, "Ingress"):
        regex = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/use-regex") == "true"
        for rule in ingress["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                value = p["path"]
                # ingress-nginx: `location ~* "^<path>"` with use-regex, else a prefix.
                hit = re.match("^" + value, path, re.IGNORECASE) if regex else path.startswith(value)
                if hit:
                    hits.append(p["backend"]["service"]["name"])
    return hits


def nginx_targets(conf, path):
    hits = []
    # A socket route proxies to the session's replica: $<service>_session_upstream (a map on the sid).
    for regex, upstream in re.findall(r"location ~ (\S+) \{\s*proxy_pass http://\$?([a-z_-]+?)(?:-websocket|_session_upstream)?;", conf):
        if re.search(regex, path):
            hits.append(upstream.replace("_", "-"))
    return hits


def check_routes(report, name, targets, routes, gateway_paths=None):
    for method, pattern, service in routes:
        if service == "*":
            continue
        hits = targets(sample_path(pattern))
        report.check(hits == [service], f"{name}: {method} {pattern} reaches {service} only", f"reaches {hits}")


# --- containers -----------------------------------------------------------------------------------

def check_workloads(report, overlay, docs, routes, envs):
    get_paths = {p for m, p, _ in routes if m == "GET"}
    config_maps = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    deployments = by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet")
    report.check(len(deployments) == 4, f"{overlay}: four workloads (Deployments, StatefulSets)",
                 str([d["metadata"]["name"] for d in deployments]))
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        pod_sc = pod.get("securityContext", {})
        report.check(pod.get("automountServiceAccountToken") is False, f"{overlay}/{name}: no service account token")
        drain_ms = None
        for c in pod["containers"]:
            where = f"{overlay}/{name}/{c['name']}"
            report.check(c.get("args", [None])[0] == name, f"{where}: runs `agentlancer {name}`", str(c.get("args")))
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                http_get = c.get(probe, {}).get("httpGet")
                ok = http_get is not None and http_get["path"].split("?")[0] in get_paths
                report.check(ok, f"{where}: {probe} on a route the binary serves", str(http_get))
            res = c.get("resources", {})
            report.check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and "memory" in res.get("limits", {}),
                         f"{where}: requests (cpu, memory) and a memory limit", str(res))
            sc = c.get("securityContext", {})
            report.check((sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) is True, f"{where}: runAsNonRoot")
            report.check(sc.get("readOnlyRootFilesystem") is True, f"{where}: read-only root filesystem")
            report.check(sc.get("allowPrivilegeEscalation") is False, f"{where}: no privilege escalation")
            report.check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: every capability dropped")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
            report.check(seccomp == "RuntimeDefault", f"{where}: seccomp RuntimeDefault", str(seccomp))
            set_envs = [e["name"] for e in c.get("env", [])]
            for ref in c.get("envFrom", []):
                cm = config_maps.get(ref.get("configMapRef", {}).get("name"))
                report.check(cm is not None, f"{where}: its ConfigMap {ref} is rendered")
                if cm:
                    set_envs.extend(cm.get("data", {}).keys())
                    drain_ms = cm["data"].get("AGENTLANCER_SHUTDOWN_DRAIN_MS", drain_ms)
            unknown = sorted(set(set_envs) - envs)
            report.check(not unknown and set_envs, f"{where}: every env var is a config key ({len(set_envs)})", str(unknown))
            pre_stop = c.get("lifecycle", {}).get("preStop", {})
            pause = pre_stop.get("sleep", {}).get("seconds")
            report.check(pause is not None, f"{where}: preStop pause", str(pre_stop))
            drain_s = int(drain_ms or 10000) / 1000
            grace = pod.get("terminationGracePeriodSeconds", 30)
            # The relay flushes what is in flight for up to 5 s after the drain.
            report.check(pause is not None and grace >= pause + drain_s + 5,
                         f"{where}: grace period {grace}s covers preStop {pause}s + drain {drain_s:g}s + flush 5s")
        # One Service load-balances over its pods (a headless one only names them: DNS).
        services = [s for s in by_kind(docs, "Service") if s["spec"].get("selector", {}).items() <= labels.items()
                    and s["spec"].get("selector") and s["spec"].get("clusterIP") != "None"]
        report.check(len(services) == 1, f"{overlay}/{name}: one Service selects it", str([s["metadata"]["name"] for s in services]))
        if dep["kind"] == "StatefulSet":
            governing = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == dep["spec"].get("serviceName")]
            report.check(len(governing) == 1 and governing[0]["spec"].get("clusterIP") == "None"
                         and governing[0]["spec"].get("selector", {}).items() <= labels.items(),
                         f"{overlay}/{name}: its serviceName is a headless Service selecting its pods", str(dep["spec"].get("serviceName")))
        pdbs = [p for p in by_kind(docs, "PodDisruptionBudget") if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        report.check(len(pdbs) == 1, f"{overlay}/{name}: a PodDisruptionBudget")
        hpas = [h for h in by_kind(docs, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == name
                and h["spec"]["scaleTargetRef"]["kind"] == dep["kind"]]
        report.check(len(hpas) == 1 and any(m.get("resource", {}).get("name") == "cpu" for m in hpas[0]["spec"]["metrics"]),
                     f"{overlay}/{name}: a HorizontalPodAutoscaler on CPU")
    policies = by_kind(docs, "NetworkPolicy")
    report.check(any(p["spec"].get("podSelector") == {} and p["spec"].get("policyTypes") == ["Ingress"] and not p["spec"].get("ingress")
                     for p in policies), f"{overlay}: ingress denied by default")
    for sa in by_kind(docs, "ServiceAccount"):
        report.check(sa.get("automountServiceAccountToken") is False, f"{overlay}: ServiceAccount {sa['metadata']['name']} mounts no token")


# --- sticky socket.io sessions ---------------------------------------------------------------------

NODE_TAG_ENV = "AGENTLANCER_NOTIFIER_WS_NODE_TAG"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary_sid(binary, node_tag):
    """Starts `agentlancer notifier` (embedded defaults) with the node tag a pod gets from its
    name, opens a long-polling session and returns its sid; None when the binary refuses the tag
    or never answers."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, NODE_TAG_ENV: node_tag}
        proc = subprocess.Popen([binary, "notifier", "--http.port", str(port), "--data_dir", data],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ws/agent/?EIO=4&transport=polling", timeout=2) as r:
                        body = r.read().decode()
                    return re.search(r'"sid":"([^"]+)"', body).group(1)
                except OSError:
                    time.sleep(0.2)
            return None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def check_sticky(report, overlay, docs, routes, binary, sids):
    socket_patterns = sorted({(p, s) for _, p, s in routes if p.startswith("/ws/")})
    config_maps = by_kind(docs, "ConfigMap")
    for service in sorted({s for _, s in socket_patterns}):
        sets = [d for d in by_kind(docs, "StatefulSet") if d["metadata"]["name"] == service]
        if not report.check(len(sets) == 1, f"{overlay}/{service}: a StatefulSet (stable pod names for sticky sessions)"):
            continue
        sts = sets[0]
        labels = sts["spec"]["template"]["metadata"]["labels"]
        for c in sts["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in c.get("env", [])}
            field = env.get(NODE_TAG_ENV, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
            report.check(field == "metadata.name", f"{overlay}/{service}/{c['name']}: {NODE_TAG_ENV} is the pod name (fieldRef metadata.name)",
                         str(env.get(NODE_TAG_ENV)))
            report.check(not any(NODE_TAG_ENV in cm.get("data", {}) for cm in config_maps),
                         f"{overlay}/{service}: no ConfigMap sets {NODE_TAG_ENV} for every pod alike")
        hpa_max = max([h["spec"]["maxReplicas"] for h in by_kind(docs, "HorizontalPodAutoscaler")
                       if h["spec"]["scaleTargetRef"]["name"] == service] + [0])
        count = max(sts["spec"].get("replicas", 1), hpa_max)
        pods = [f"{service}-{i}" for i in range(count)]
        # The binary takes the last (longest) of these names as its tag and makes `<pod>.<random>`.
        longest = pods[-1]
        if longest not in sids:
            sids[longest] = binary_sid(binary, longest)
        sid = sids[longest]
        if not report.check(sid is not None and sid.startswith(longest + "."),
                            f"{overlay}/{service}: the binary, with {NODE_TAG_ENV}={longest}, makes sids `{longest}.…`", str(sid)):
            continue
        random = sid[len(longest) + 1:]
        httproutes = bool(by_kind(docs, "HTTPRoute"))
        for pod in pods:
            selecting = [s for s in by_kind(docs, "Service")
                         if s["spec"].get("selector", {}).get(POD_NAME_LABEL) == pod
                         and {k: v for k, v in s["spec"]["selector"].items() if k != POD_NAME_LABEL}.items() <= labels.items()]
            if not report.check(len(selecting) == 1, f"{overlay}/{service}: pod {pod} has a Service of its own (up to the autoscaler's {count})",
                                str([s["metadata"]["name"] for s in selecting])):
                continue
            own = selecting[0]["metadata"]["name"]
            if not httproutes:
                continue
            for pattern, _ in socket_patterns:
                for path in (pattern, pattern + "/"):
                    hits = httproute_targets(docs, path, {"EIO": "4", "transport": "polling", "sid": f"{pod}.{random}"})
                    report.check(hits == [own], f"{overlay} HTTPRoutes: {path}?sid={pod}.… reaches {own} only", f"reaches {hits}")
        if httproutes:
            for pattern, _ in socket_patterns:
                for sid_value in (None, f"p8080.{random}", f"{service}-{count}x.{random}"):
                    query = {"EIO": "4", "transport": "polling", **({"sid": sid_value} if sid_value else {})}
                    hits = httproute_targets(docs, pattern, query)
                    report.check(hits == [service], f"{overlay} HTTPRoutes: {pattern} with sid {sid_value} reaches the pool ({service}) only",
                                 f"reaches {hits}")
        for ingress in by_kind(docs, "Ingress"):
            ann = ingress["metadata"].get("annotations", {})
            backends = {p["backend"]["service"]["name"] for r in ingress["spec"].get("rules", [])
                        for p in r.get("http", {}).get("paths", []) if any(re.match("^" + p["path"], pat) for pat, _ in socket_patterns)}
            if service not in backends:
                continue
            # ingress-nginx cannot route on the query; a hash of the sid picks some pod, not the one
            # that made it. Cookie affinity, persistent (scaling up moves no session).
            report.check(ann.get("nginx.ingress.kubernetes.io/affinity") == "cookie"
                         and ann.get("nginx.ingress.kubernetes.io/affinity-mode") == "persistent"
                         and ann.get("nginx.ingress.kubernetes.io/session-cookie-path")
                         and "nginx.ingress.kubernetes.io/upstream-hash-by" not in ann,
                         f"{overlay}: Ingress {ingress['metadata']['name']} pins socket sessions by cookie (persistent)", str(ann))


def check_topics(report, overlay, docs, code_topics, declared, replicated):
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in by_kind(docs, "KafkaTopic")}
    for name in code_topics:
        t = topics.get(name)
        if not report.check(t is not None, f"{overlay}: topic {name} has a KafkaTopic"):
            continue
        partitions, replicas, min_isr = declared[name]
        spec = t["spec"]
        report.check(spec.get("partitions") == partitions, f"{overlay}: {name} has {partitions} partitions", str(spec.get("partitions")))
        if replicated:
            report.check(spec.get("replicas") == replicas and int(spec.get("config", {}).get("min.insync.replicas", 0)) == min_isr,
                         f"{overlay}: {name} replicated {replicas}, min.insync.replicas {min_isr}")
    extra = sorted(set(topics) - set(code_topics))
    report.check(not extra, f"{overlay}: no KafkaTopic the code does not use", str(extra))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--overlay", action="append", default=[], help="NAME=RENDERED.yaml")
    args = ap.parse_args()
    repo = pathlib.Path(args.repo)
    report = Report()

    routes = binary_routes(args.bin)
    report.check(len([r for r in routes if r[2] != "*"]) > 30, f"the binary lists its routes ({len(routes)})")
    envs = config_envs(args.bin)
    report.check(len(envs) > 40, f"the binary lists its config variables ({len(envs)})")
    code_topics = run(args.bin, "topics").split()
    declared = {}
    for line in (repo / "deploy/topics.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, partitions, replicas, min_isr = line.split("\t")
            declared[name] = (int(partitions), int(replicas), int(min_isr))
    report.check(sorted(declared) == sorted(code_topics), "deploy/topics.tsv declares exactly the code's topics",
                 f"{sorted(declared)} vs {sorted(code_topics)}")

    # The one table: deploy/gateway/routes.tsv names each route pattern's service.
    table = {}
    for line in (repo / "deploy/gateway/routes.tsv").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            path, service = line.split("\t")
            table[path] = service
    patterns = {(p, s) for _, p, s in routes if s != "*"}
    report.check(patterns == set(table.items()), "routes.tsv is the router's table (path → service)",
                 f"only in the router: {sorted(patterns - set(table.items()))}; only in routes.tsv: {sorted(set(table.items()) - patterns)}")

    conf = run(sys.executable, str(repo / "scripts/cluster/gateway.py"), str(repo / "deploy/gateway/routes.tsv"), "/tmp",
               "8080", *[f"{s}=127.0.0.1:1" for s in ("thread-service", "offer-service", "job-service", "notifier")])
    check_routes(report, "local nginx", lambda p: sorted(set(nginx_targets(conf, p))), routes)

    sids = {}  # node tag -> a sid the binary made with it
    for spec in args.overlay:
        overlay, path = spec.split("=", 1)
        docs = docs_of(path)
        if by_kind(docs, "HTTPRoute"):
            check_routes(report, f"{overlay} HTTPRoutes", lambda p, d=docs: httproute_targets(d, p), routes)
            # Nothing routed that the router does not serve (a path of every HTTPRoute match).
            # (or to a Service of one of its pods: the notifier's sticky sessions).
            for route in by_kind(docs, "HTTPRoute"):
                name = route["metadata"]["name"]
                own = {name} | {s["metadata"]["name"] for s in by_kind(docs, "Service")
                                if s["spec"].get("selector", {}).get("app.kubernetes.io/name") == name}
                report.check(all(b["name"] in own for r in route["spec"]["rules"] for b in r["backendRefs"]),
                             f"{overlay}: HTTPRoute {name} sends to its own service")
        if by_kind(docs, "Ingress"):
            check_routes(report, f"{overlay} Ingress", lambda p, d=docs: ingress_targets(d, p), routes)
        report.check(bool(by_kind(docs, "HTTPRoute") or by_kind(docs, "Ingress")), f"{overlay}: has a gateway")
        report.check(not ingress_targets(docs, "/api/nothing-here") and not httproute_targets(docs, "/api/nothing-here"),
                     f"{overlay}: an unknown path reaches no service")
        check_workloads(report, overlay, docs, routes, envs)
        check_sticky(report, overlay, docs, routes, args.bin, sids)
        check_topics(report, overlay, docs, code_topics, declared, replicated=(overlay != "dev"))

    print(f"k8s-invariants: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
