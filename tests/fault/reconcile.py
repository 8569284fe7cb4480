#!/usr/bin/env python3
"""The fault suite's reconciliation checker.

After a fault (and the load that ran through it), with everything quiet again, it proves from the
sources themselves - each service's PostgreSQL database, the Kafka topics read to their end, the
agents' logs through the gateway, and what the client load recorded (tests/fault/storyload.js):

  acked      every write that got a 2xx is in its service's database (the committed change it made,
             found by the request id the client sent: the outbox row the same transaction wrote)
  kafka      every committed change (outbox row) has its event on Kafka exactly once; no two
             messages for one (aggregate, seq); per aggregate, Kafka holds them in seq order;
             nothing left unpublished
  consumers  every consumer applied every event of its topics once (processed markers, no dead
             letters), and the effects are there once: a job per contract, the offer service's
             thread projection at the thread's last seq, an agent-log entry per audience member
  logs       every load agent's log (GET /api/agent/events through the gateway) holds each of its
             events once, every event whose audience names it, in per-aggregate seq order
  sockets    every socket (which resumed with `since` after each disconnect) saw exactly its
             agent's log: same ids, same order, nothing twice

  reconcile.py --cluster-dir DIR --bin AGENTLANCER --base URL [--quiet-gets PHASE]... LOAD.json...

Prints the figures; exits 1 when anything is lost, duplicated or out of order, or when a phase
named by --quiet-gets saw a failed GET.
"""
import argparse
import collections
import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.request

SERVICES = ["thread-service", "offer-service", "job-service", "notifier"]
PRODUCERS = ["thread-service", "offer-service", "job-service"]
# How long the consumers get, after the load ended, to apply what is on Kafka (a backlog after a fault).
CONSUMER_CATCH_UP_S = 120



def audience_of(event):
    """The agent ids of an event's audience: one space-separated string (an array before)."""
    audience = event.get("audience", "")
    return audience.split() if isinstance(audience, str) else list(audience)

def psql(cluster_dir, service, sql):
    url = open(f"{cluster_dir}/storage.url.{service}").read().strip()
    bindir = open(f"{cluster_dir}/postgres/bindir").read().strip()
    schema = service.replace("-", "_")  # each service keeps its tables in its own schema
    out = subprocess.run([f"{bindir}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                          f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"],
                         check=True, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PGOPTIONS": f"-c search_path={schema}"}).stdout
    return list(csv.reader(io.StringIO(out)))


def kafka_messages(cluster_dir, binary):
    bootstrap = open(f"{cluster_dir}/kafka/bootstrap").read().strip()
    out = subprocess.run([binary, "tail-events", "--bootstrap", bootstrap, "--to-end"],
                         check=True, capture_output=True, text=True, timeout=180).stdout
    messages = []
    for line in out.splitlines():
        topic, key, payload = line.split("\t", 2)
        event = json.loads(payload)
        messages.append({"topic": topic, "key": key, "id": event["id"], "subject": event["subject"],
                         "seq": event["seq"], "type": event["type"], "audience": audience_of(event),
                         "requestid": event.get("requestid", "")})
    return messages


def get_json(url, key):
    request = urllib.request.Request(url, headers={"x-api-key": key})
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=20) as r:
                return json.load(r)
        except Exception:  # a transient gateway error: the checker's own reads are retried
            time.sleep(0.5)
    raise RuntimeError(f"GET {url} kept failing")


def agent_log(base, key):
    entries, since = [], 0
    while True:
        page = get_json(f"{base}/api/agent/events?since_id={since}&limit=500", key)
        if not page["events"]:
            return entries
        entries.extend(page["events"])
        since = page["next_since_id"]


class Report:
    def __init__(self):
        self.figures = collections.OrderedDict()
        self.problems = []

    def fig(self, name, value):
        self.figures[name] = value

    def problem(self, what, examples=()):
        examples = list(examples)
        self.problems.append(what + (f" (e.g. {examples[:3]})" if examples else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cluster-dir", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--quiet-gets", action="append", default=[])
    ap.add_argument("--json-out")
    ap.add_argument("loads", nargs="+")
    args = ap.parse_args()
    rep = Report()
    loads = [json.load(open(f)) for f in args.loads]

    # ---- what the client saw, per phase ---------------------------------------------------------
    print("phase            stories  done  requests    2xx  errors by kind")
    for load in loads:
        reqs = load["requests"]
        kinds = collections.Counter(r["kind"] for r in reqs if r["kind"] != "ok")
        gets_failed = collections.Counter(r["kind"] for r in reqs if r["kind"] != "ok" and r["method"] == "GET")
        done = sum(1 for s in load["stories"] if s["ok"])
        print(f"{load['phase']:<16} {len(load['stories']):>7} {done:>5} {len(reqs):>9} {sum(1 for r in reqs if r['kind'] == 'ok'):>6}  "
              f"{dict(kinds) if kinds else '-'}{'  GET: ' + str(dict(gets_failed)) if gets_failed else ''}")
        for s in load["stories"]:
            if not s["ok"]:
                rep.problem(f"{load['phase']}: story {s['n']} did not complete: {s.get('error')}")
        if load["phase"] in args.quiet_gets and gets_failed:
            rep.problem(f"{load['phase']}: GETs through the gateway failed: {dict(gets_failed)}")
    all_requests = [r for load in loads for r in load["requests"]]
    rep.fig("requests", len(all_requests))
    rep.fig("2xx", sum(1 for r in all_requests if r["kind"] == "ok"))
    rep.fig("errors", sum(1 for r in all_requests if r["kind"] != "ok"))

    # ---- the databases and Kafka ----------------------------------------------------------------
    outbox = {}  # event id -> row
    by_request = collections.defaultdict(set)  # (service, request id) -> event ids
    unpublished = []
    for service in PRODUCERS:
        for event_id, topic, key, payload, pending in psql(
                args.cluster_dir, service, "SELECT event_id, topic, msg_key, payload, published_at IS NULL FROM outbox"):
            event = json.loads(payload)
            outbox[event_id] = {"service": service, "topic": topic, "subject": event["subject"], "seq": event["seq"],
                                "type": event["type"], "audience": audience_of(event)}
            by_request[(service, event.get("requestid", ""))].add(event_id)
            if pending == "t":
                unpublished.append(event_id)
    messages = kafka_messages(args.cluster_dir, args.bin)
    rep.fig("outbox rows", len(outbox))
    rep.fig("kafka messages", len(messages))

    # acked: every 2xx write left its committed change
    acked = [r for r in all_requests if r["write"] and r["kind"] == "ok"]
    missing = [f"{r['method']} {r['route']} {r['request_id']}" for r in acked if not by_request.get((r["service"], r["request_id"]))]
    rep.fig("2xx writes checked", len(acked))
    rep.fig("2xx writes missing", len(missing))
    if missing:
        rep.problem(f"{len(missing)} writes answered 2xx but their change is not in the database", missing)

    # kafka: exactly once, in order, nothing pending
    count_by_id = collections.Counter(m["id"] for m in messages)
    lost = [i for i in outbox if count_by_id[i] == 0]
    duplicated = [i for i, n in count_by_id.items() if n > 1]
    strangers = [i for i in count_by_id if i not in outbox]
    per_aggregate = collections.Counter((m["topic"], m["subject"], m["seq"]) for m in messages)
    seq_twice = [k for k, n in per_aggregate.items() if n > 1]
    last_seq, disorder = {}, []
    for m in messages:  # each partition in order; an aggregate lives in one partition
        k = (m["topic"], m["subject"])
        if m["seq"] <= last_seq.get(k, 0):
            disorder.append(f"{k[1]} seq {m['seq']} after {last_seq[k]}")
        last_seq[k] = max(last_seq.get(k, 0), m["seq"])
    rep.fig("events checked", len(outbox))
    rep.fig("events lost", len(lost))
    rep.fig("events duplicated", len(duplicated))
    if lost:
        rep.problem(f"{len(lost)} committed events are not on Kafka", lost)
    if duplicated:
        rep.problem(f"{len(duplicated)} events are on Kafka more than once", duplicated)
    if seq_twice:
        rep.problem(f"{len(seq_twice)} (aggregate, seq) pairs are on Kafka more than once", seq_twice)
    if strangers:
        rep.problem(f"{len(strangers)} Kafka events have no outbox row", strangers)
    if disorder:
        rep.problem(f"{len(disorder)} events are on Kafka out of their aggregate's order", disorder)
    if unpublished:
        rep.problem(f"{len(unpublished)} outbox rows are still unpublished", unpublished)

    # consumers: applied once, with their effects
    events_by_topic = collections.defaultdict(set)
    for m in messages:
        events_by_topic[m["topic"]].add(m["id"])
    # A consumer may still be working through a backlog (a fault just ended): "never applied" means
    # not applied within CONSUMER_CATCH_UP_S of the load's end; how long it took is a figure.
    def unapplied():
        found, count = {}, 0
        for service in SERVICES:
            processed = collections.defaultdict(set)
            for consumer, event_id in psql(args.cluster_dir, service, "SELECT consumer, event_id FROM processed_events"):
                processed[consumer].add(event_id)
            for consumer, ids in processed.items():
                topics = {outbox[i]["topic"] for i in ids if i in outbox}
                expected = set().union(*(events_by_topic[t] for t in topics)) if topics else set()
                count += len(ids)
                if expected - ids:
                    found[(service, consumer)] = (sorted(topics), expected - ids)
        return found, count
    waited_from = time.monotonic()
    behind, applications = unapplied()
    while behind and time.monotonic() - waited_from < CONSUMER_CATCH_UP_S:
        time.sleep(2)
        behind, applications = unapplied()
    rep.fig("consumers caught up after s", round(time.monotonic() - waited_from, 1))
    for (service, consumer), (topics, not_applied) in sorted(behind.items()):
        rep.problem(f"{service} consumer {consumer}: {len(not_applied)} events of {topics} never applied "
                    f"(within {CONSUMER_CATCH_UP_S} s)", not_applied)
    for service in SERVICES:
        dead = psql(args.cluster_dir, service, "SELECT consumer, error FROM dead_letters")
        if dead:
            rep.problem(f"{service}: {len(dead)} dead letters", dead)
    rep.fig("consumer applications checked", applications)

    contracts = {row[0] for row in psql(args.cluster_dir, "offer-service", "SELECT id FROM contracts")}
    jobs_by_contract = collections.Counter(
        row[0] for row in psql(args.cluster_dir, "job-service", "SELECT contract_id FROM jobs WHERE contract_id IS NOT NULL"))
    jobless = [c for c in contracts if jobs_by_contract[c] != 1]
    if jobless:
        rep.problem(f"{len(jobless)} contracts without exactly one job", jobless)
    thread_seq = {}
    for m in messages:
        if m["topic"] == "agentlancer.threads.v1":
            thread_seq[m["subject"]] = max(thread_seq.get(m["subject"], 0), m["seq"])
    stale = [f"{t} at {s}, thread at {thread_seq.get(t)}"
             for t, s in psql(args.cluster_dir, "offer-service", "SELECT thread_id, seq FROM thread_views")
             if int(s) != thread_seq.get(t)]
    if stale:
        rep.problem(f"{len(stale)} of the offer service's thread views are not at their thread's last seq", stale)
    log_rows = collections.Counter((a, c) for a, c in psql(args.cluster_dir, "notifier", "SELECT agent_id, cloudevent_id FROM agent_events"))
    log_twice = [k for k, n in log_rows.items() if n > 1]
    log_missing = [(a, m["id"]) for m in messages for a in set(m["audience"]) if (a, m["id"]) not in log_rows]
    rep.fig("agent-log entries checked", len(log_rows))
    if log_twice:
        rep.problem(f"{len(log_twice)} events are in an agent's log more than once", log_twice)
    if log_missing:
        rep.problem(f"{len(log_missing)} events are missing from an audience member's log", log_missing)

    # logs and sockets of the load's agents, through the gateway
    by_id = {m["id"]: m for m in messages}
    sockets = {w["agent_id"]: w for load in loads for w in load["sockets"]}
    logs_checked = entries_checked = sockets_checked = resumed = 0
    for load in loads:
        for agent in load["agents"]:
            log = agent_log(args.base, agent["api_key"])
            logs_checked += 1
            entries_checked += len(log)
            ids = [e["event_id"] for e in log]
            ce_ids = [e["cloudevent_id"] for e in log]
            if len(set(ce_ids)) != len(ce_ids) or ids != sorted(set(ids)):
                rep.problem(f"agent {agent['agent_id']}: its log holds an event twice or out of id order", ids)
            wanted = {m["id"] for m in messages if agent["agent_id"] in m["audience"]}
            if wanted - set(ce_ids):
                rep.problem(f"agent {agent['agent_id']}: {len(wanted - set(ce_ids))} of its events are missing from its log",
                            wanted - set(ce_ids))
            last = {}
            for ce in ce_ids:
                m = by_id.get(ce)
                if not m:
                    continue
                if m["seq"] <= last.get(m["subject"], 0):
                    rep.problem(f"agent {agent['agent_id']}: {m['subject']} seq {m['seq']} after {last[m['subject']]} in its log")
                last[m["subject"]] = max(last.get(m["subject"], 0), m["seq"])
            w = sockets.get(agent["agent_id"])
            if w is not None:
                sockets_checked += 1
                resumed += max(0, w["connects"] - 1)
                # What the log held when the socket closed (entries a lagging consumer added later
                # are checked in the log above, not against a socket that was gone by then).
                cutoff = max(w.get("log_head", ids[-1] if ids else 0), w["ids"][-1] if w["ids"] else 0)
                held = [i for i in ids if i <= cutoff]
                if w["ids"] != held or w["redelivered"]:
                    rep.problem(f"agent {agent['agent_id']}: its socket saw {len(w['ids'])} events "
                                f"({w['redelivered']} again after resuming), its log held {len(held)} when it closed",
                                [f"socket {w['ids'][:12]}", f"log {ids[:12]}"])
    rep.fig("agent logs checked", logs_checked)
    rep.fig("log entries checked", entries_checked)
    rep.fig("sockets checked", sockets_checked)
    rep.fig("socket resumes", resumed)

    print("reconciliation: " + ", ".join(f"{k} {v}" for k, v in rep.figures.items()))
    for p in rep.problems:
        print(f"  PROBLEM: {p}")
    print(f"reconciliation: {'ok' if not rep.problems else str(len(rep.problems)) + ' problems'}")
    if args.json_out:
        json.dump({"figures": rep.figures, "problems": rep.problems}, open(args.json_out, "w"), indent=1)
    return 0 if not rep.problems else 1


if __name__ == "__main__":
    sys.exit(main())
