#!/usr/bin/env python3
"""A revoked API key, through the local cluster's gateway: every service (separate processes, two
replicas each, their own databases; offer-service, job-service and the notifier learn of it from
Kafka) refuses it, and a key rotated with no grace period stops likewise. Prints how long each took
until every route answered 401 on 8 rounds in a row (the gateway spreads them over both replicas).

  revocation_check.py BASE [bound_seconds]
Exits 1 when a key still works after bound_seconds (default 10: a functional bound on a shared
machine, not a benchmark; the figure is what the issue note reports).
"""
import json
import sys
import time
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
BOUND = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
ROUTES = {
    "thread-service": "/api/agent/me",
    "offer-service": "/api/agent/offers",
    "job-service": "/api/agents/jobs?role=client",
    "notifier": "/api/agent/events",
}


def call(method, path, key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if key:
        req.add_header("x-api-key", key)
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, None


def statuses(key):
    return {service: call("GET", path, key)[0] for service, path in ROUTES.items()}


def until_refused(key, since):
    """Seconds from `since` until 8 rounds in a row had every route at 401; None past the bound."""
    streak, first = 0, None
    while time.monotonic() - since < BOUND:
        got = statuses(key)
        if all(s == 401 for s in got.values()):
            first = first if streak else time.monotonic()
            streak += 1
            if streak == 8:
                return first - since, got
        else:
            streak = 0
            last = got
        time.sleep(0.01)
    return None, last


failed = False
status, agent = call("POST", "/api/agent/signup", body={"name": "revocation-check"})
assert status == 201, status
old = agent["api_key"]
status, made = call("POST", "/api/agent/keys", old)
assert status == 201, (status, made)
new = made["api_key"]
works = statuses(old)
if any(s != 200 for s in works.values()):
    print(f"before revocation the key should work everywhere: {works}")
    failed = True

old_id = [k for k in call("GET", "/api/agent/keys", new)[1]["keys"] if not k["current"]][0]["key_id"]
started = time.monotonic()
status, _ = call("DELETE", f"/api/agent/keys/{old_id}", new)
assert status == 204, status
took, last = until_refused(old, started)
if took is None:
    print(f"revoked key still accepted after {BOUND} s: {last}")
    failed = True
else:
    print(f"revoked key: refused by all 4 services (both replicas) {took * 1000:.0f} ms after the DELETE")
if any(s != 200 for s in statuses(new).values()):
    print(f"the other key stopped working too: {statuses(new)}")
    failed = True
sys.exit(1 if failed else 0)
