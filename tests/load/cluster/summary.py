#!/usr/bin/env python3
"""Tables of the cluster benchmark (tests/load/cluster/run.sh) from its loadgen JSON results.

  summary.py OUT_DIR

CPU µs per request = the CPU time (user+system, from /proc) every process of the system under
test used during the measured schedule / the requests completed in it. The capacity table turns
the cluster's per-service figures into cores per 10,000 requests/s of each kind, and replicas of
one core each kept at 70% busy.
"""
import json
import math
import os
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.loads(f.readline())


def idle(name):
    path = os.path.join(out, name + ".idle.json")
    return json.load(open(path)) if os.path.exists(path) else {}


IDLE = {"embedded": idle("embedded"), "cluster": idle("cluster")}


def per_request(run):
    """CPU µs per completed request, by label, less what the label uses when idle."""
    cpu = run.get("server_cpu_ms") or {}
    done = run["overall"]["count"] or 1
    base = IDLE.get(run.get("label"), {})
    elapsed = run.get("elapsed_s", 0)
    return {label: max(0.0, ms - base.get(label, 0.0) * elapsed) * 1000.0 / done for label, ms in cpu.items()}, done


SERVICES = ["thread-service", "offer-service", "job-service", "notifier"]
print("## Throughput and latency (open model, fixed rate)\n")
print("| run | asked/s | done/s | 2xx | non-2xx + errors | p50 ms | p99 ms | p99.9 ms |")
print("|---|---|---|---|---|---|---|---|")
runs = {}
for name in ["floor-get", "embedded-job-get", "cluster-job-get", "embedded-job-create", "cluster-job-create",
             "embedded-offer-flow", "cluster-offer-flow"]:
    r = load(name)
    if not r:
        continue
    runs[name] = r
    o = r["overall"]
    print(f"| {name} | {r['request_rate_target']:.0f} | {o['per_sec']:.0f} | {o['ok_2xx']} | "
          f"{o['non_2xx'] + o['errors']} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['p99_9_ms']:.2f} |")

print("\n## CPU µs per request (all processes of the system under test, less their idle use)\n")
for name, rates in IDLE.items():
    if rates:
        print(f"Idle ({name}): " + ", ".join(f"{k} {v:.0f} ms/s" for k, v in sorted(rates.items())) + "  ")
print()
print("| scenario | embedded (1 process) | cluster services | + PostgreSQL | + Kafka | + gateway | cluster total | total ÷ embedded | services+PostgreSQL ÷ embedded |")
print("|---|---|---|---|---|---|---|---|---|")
capacity = {}
for scenario in ["job-get", "job-create", "offer-flow"]:
    c = runs.get(f"cluster-{scenario}")
    if not c:
        continue
    cl, _ = per_request(c)
    e = runs.get(f"embedded-{scenario}")
    emb = sum(per_request(e)[0].values()) if e else float("nan")
    services = sum(cl.get(s, 0) for s in SERVICES)
    pg, kafka, gw = cl.get("postgresql", 0), cl.get("kafka", 0), cl.get("gateway", 0)
    total = services + pg + kafka + gw
    capacity[scenario] = cl
    print(f"| {scenario} | {emb:.0f} | {services:.0f} | {pg:.0f} | {kafka:.0f} | {gw:.0f} | {total:.0f} | "
          f"{total / emb:.2f}× | {(services + pg) / emb:.2f}× |")
floor = runs.get("floor-get")
if floor and "job-get" in capacity:
    f, _ = per_request(floor)
    floor_total = sum(f.values())
    cl = capacity["job-get"]
    gw_get = sum(cl.values())
    print(f"\nGateway GET: the 204 floor (same gateway configuration + an nginx answering 204) costs "
          f"{floor_total:.0f} µs per request ({f.get('gateway', 0):.0f} of them the gateway); the cluster's "
          f"authenticated job GET costs {gw_get:.0f} µs through the same gateway. At equal CPU the cluster "
          f"serves {floor_total / gw_get:.2f}× the floor's GETs (capacity ratio).")

ws = load("cluster-ws")
if ws:
    lat = ws["latency"]
    print("\n## Commit → socket through the gateway\n")
    print(f"{ws['rate_target']:.0f} job creations/s for {ws['duration_s']:.0f} s, each an onNewTask to the client's "
          f"and the provider's socket ({ws['agents']} agents, one socket each through the gateway): "
          f"{ws['delivered']} of {ws['expected']} delivered ({ws['lost']} lost, {ws['duplicates']} duplicates, "
          f"{ws['out_of_order']} out of order), {ws['delivered_per_sec']:.0f} events/s; latency from the 201 to the "
          f"socket p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, p99.9 {lat['p99_9_ms']:.1f} ms "
          f"(max {lat['max_ms']:.1f} ms).")

if capacity:
    print("\n## Capacity: cores and replicas per 10,000 requests/s\n")
    print("Replicas of one core each at 70% busy, from the CPU µs per request each component used above "
          "(PostgreSQL and Kafka are the shared ones).\n")
    labels = SERVICES + ["gateway", "postgresql", "kafka"]
    print("| per 10,000 req/s of | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for scenario, cl in capacity.items():
        cells = []
        for label in labels:
            cores = cl.get(label, 0) * 10000 / 1e6
            cells.append(f"{cores:.2f} cores → {max(1, math.ceil(cores / 0.7)) if cores > 0.005 else 0}")
        print(f"| {scenario} | " + " | ".join(cells) + " |")
