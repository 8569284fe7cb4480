#!/usr/bin/env python3
"""An agentlancer requester agent: it hires a provider found in the public catalogue, twice.

1. Through the marketplace: a thread on the provider's service, the provider's quote (locked),
   an offer from it, the contract the provider's acceptance makes, the payment (a sandbox tx
   hash), the contract's job, its deliverable, the evaluation.
2. Directly: a job for the same provider, the escrow once the provider accepted it, the
   deliverable, the evaluation.

It learns what the provider did from its webhook: a small receiver on 127.0.0.1 that verifies
every request with the official `standardwebhooks` package and hands the events to the story,
which waits on them (it never polls the API for a state change). Exit 0 once both jobs are
COMPLETED; 1 on any failure or timeout.

Environment:
  AGENTLANCER_BASE    the server (default http://127.0.0.1:8080)
  REQUESTER_API_KEY   use this agent instead of signing up a new one
  SERVICE_TAG         the catalogue tag to look for (default shouting)
  SERVICE_ID          hire this service (default: the newest affordable one with the tag)
  REQUEST_TEXT        the text to have shouted (the direct job shouts a second one)
  MAX_BUDGET          the most it pays for a job (default 10)
  STEP_TIMEOUT        seconds to wait for any one event (default 30)
"""

import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE = os.environ.get("AGENTLANCER_BASE", "http://127.0.0.1:8080").rstrip("/")
TAG = os.environ.get("SERVICE_TAG", "shouting")
SERVICE_ID = os.environ.get("SERVICE_ID")
TEXT = os.environ.get("REQUEST_TEXT", "Our agents hire other agents, and now everyone knows it")
MAX_BUDGET = Decimal(os.environ.get("MAX_BUDGET", "10"))
STEP_TIMEOUT = float(os.environ.get("STEP_TIMEOUT", "30"))

T0 = time.monotonic()


def log(*args):
    print(f"[requester +{time.monotonic() - T0:6.2f}s]", *args, flush=True)


class Failed(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The API


class Api:
    """JSON over httpx. Every write carries an Idempotency-Key, so the one retry after a lost
    answer (or a 503 `unavailable`) can never act twice."""

    def __init__(self, base, key=None):
        headers = {"x-api-key": key} if key else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=15)

    def call(self, method, path, body=None, expect=(200, 201, 204), **params):
        headers = {"idempotency-key": str(uuid.uuid4())} if method != "GET" else {}
        for attempt in (1, 2):
            try:
                r = self.http.request(method, path, json=body, params=params or None, headers=headers)
            except httpx.TransportError as e:
                if attempt == 2:
                    raise Failed(f"{method} {path}: {e!r}") from e
                time.sleep(1)
                continue
            if r.status_code == 503 and attempt == 1:
                time.sleep(float(r.headers.get("retry-after", "1")))
                continue
            if r.status_code not in expect:
                raise Failed(f"{method} {path}: HTTP {r.status_code} {r.text}")
            return r.json() if r.content else None
        raise AssertionError("not reached")

    def get(self, path, **params):
        return self.call("GET", path, **params)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, {} if body is None else body, **kw)


# ---------------------------------------------------------------------------------------------
# The webhook receiver


class Inbox:
    """The verified events, in the order they arrived, and a way to wait for one."""

    def __init__(self):
        self.events = []
        self.types = Counter()
        self.verified = 0
        self.refused = 0
        self.duplicates = 0
        self.seen_ids = set()
        self.cond = threading.Condition()

    def add(self, webhook_id, event):
        with self.cond:
            self.verified += 1
            if webhook_id in self.seen_ids:  # at least once: a retry or a replay
                self.duplicates += 1
                return
            self.seen_ids.add(webhook_id)
            self.events.append(event)
            self.types[event["type"]] += 1
            self.cond.notify_all()

    def wait(self, what, predicate, timeout=STEP_TIMEOUT):
        """The first event (oldest first) for which predicate(event) is true; Failed on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(f"{e['event_id']}:{e['type']}" for e in self.events[-15:])
                    raise Failed(f"timed out after {timeout:.0f} s waiting for {what}; last webhooks: {seen}")
                self.cond.wait(left)


class Receiver:
    """An HTTP server on 127.0.0.1 (a port the kernel picks) whose every request must carry a
    valid Standard Webhooks signature of the endpoint's secret."""

    def __init__(self, inbox):
        self.inbox = inbox
        self.webhook = None
        self.secret_set = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))  # the raw bytes
                # The first delivery may race the registration's answer that holds the secret.
                if not receiver.secret_set.wait(10):
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    event = receiver.webhook.verify(body, {k.lower(): v for k, v in self.headers.items()})
                except WebhookVerificationError:
                    receiver.inbox.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.inbox.add(self.headers["webhook-id"], event)
                self.send_response(204)  # answer at once: the story does the work
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/agentlancer"
        threading.Thread(target=self.server.serve_forever, name="webhooks", daemon=True).start()

    def set_secret(self, secret):
        self.webhook = Webhook(secret)  # the whole whsec_… string
        self.secret_set.set()

    def close(self):
        self.server.shutdown()


# ---------------------------------------------------------------------------------------------
# The story


def is_job(event, phase_name, job_id=None, contract_id=None):
    """A job event (any job.* type carries the whole job) showing the job at phase_name."""
    job = event["data"].get("job") if event["type"].startswith("job.") else None
    if not job or job["phaseName"] != phase_name:
        return False
    if job_id is not None and job["id"] != job_id:
        return False
    return contract_id is None or job["contractId"] == contract_id


def random_tx_hash():
    return "0x" + secrets.token_hex(32)  # the embedded default's sandbox chain takes any but zeros


class Requester:
    def __init__(self):
        self.inbox = Inbox()
        self.receiver = Receiver(self.inbox)
        self.timings = {}
        key = os.environ.get("REQUESTER_API_KEY")
        if key:
            self.agent_id = Api(BASE, key).get("/api/agent/me")["agent_id"]
        else:
            agent = Api(BASE).post("/api/agent/signup", {"name": "loud-requester-py",
                                                         "description": "Example requester (examples/requester-py)"})
            key, self.agent_id = agent["api_key"], agent["agent_id"]
            log(f"signed up as {self.agent_id}")
        self.api = Api(BASE, key)
        # Every event of the agent's log, from now on, to the receiver.
        hook = self.api.post("/api/agent/webhooks", {"url": self.receiver.url, "description": "examples/requester-py"})
        self.receiver.set_secret(hook["secret"])
        log(f"webhook {hook['id']} -> {self.receiver.url}")

    def find_service(self):
        # The catalogue is public and has no events for strangers: look it up (for a while, in
        # case the provider is still publishing).
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            if SERVICE_ID:
                services = [self.api.get(f"/api/services/{SERVICE_ID}")]
            else:
                services = self.api.get("/api/services", tag=TAG, limit=100)["services"]
            affordable = [s for s in services if s["active"] and Decimal(s["price"]["amount"]) <= MAX_BUDGET]
            if affordable:
                service = max(affordable, key=lambda s: s["created_at"])  # the newest listing
                log(f"found {service['id']} \"{service['title']}\" by {service['provider_id']}: "
                    f"{service['price']['amount']} {service['price']['token']} on {service['price']['network']}")
                return service
            if time.monotonic() > deadline:
                raise Failed(f"no service tagged {TAG!r} within {MAX_BUDGET} in the catalogue")
            time.sleep(1)

    def evaluate(self, job):
        """Accept the deliverable when it is what we asked for: our text, upper-cased."""
        deliverable = json.loads(job["deliverable"])
        good = deliverable.get("type") == "text" and deliverable.get("value") == job["serviceRequirement"].upper()
        body = {"accept": True} if good else {"accept": False, "reason": "Not our text in upper case"}
        self.api.post(f"/api/agents/jobs/{job['id']}/evaluate", body, expect=(204,))
        log(f"job {job['id']}: deliverable {deliverable.get('value')!r} -> {'accepted' if good else 'rejected'}")
        if not good:
            raise Failed(f"job {job['id']}: the deliverable was wrong: {job['deliverable']}")

    def hire_through_marketplace(self, service):
        t = time.monotonic()
        thread = self.api.post("/api/agent/threads", {"service_id": service["id"], "mode": "quick_quote",
                                                      "message": TEXT})
        log(f"thread {thread['id']} opened ({thread['status']})")
        locked = self.inbox.wait("the provider's locked quote",
                                 lambda e: e["type"] == "thread.quote_locked" and e["subject"] == thread["id"])
        terms = locked["data"]["terms"]
        log(f"quote locked: {terms['budget']['amount']} {terms['budget']['token']}, {terms['timeline']}, "
            f"\"{terms['acceptance_criteria']}\"")
        # A real check before committing money: the price, and that the quote is for our text.
        if Decimal(terms["budget"]["amount"]) > MAX_BUDGET or terms["deliverable"] != TEXT:
            self.api.post(f"/api/agent/threads/{thread['id']}/close", {"reason": "Not what we asked for"})
            raise Failed(f"the quote is over our budget of {MAX_BUDGET} or not for our text: {terms}")
        offer = self.api.post(f"/api/agent/threads/{thread['id']}/create-offer")
        log(f"offer {offer['id']} made ({offer['status']})")
        accepted = self.inbox.wait("the provider's acceptance",
                                   lambda e: e["type"] == "offer.accepted" and e["subject"] == offer["id"])
        contract_id = accepted["data"]["offer"]["contract_id"]
        self.token_address = accepted["data"]["offer"]["token_address"]
        contract = self.api.get(f"/api/contracts/{contract_id}/tx-status")
        log(f"contract {contract_id}: pay {contract['amount']} {contract['token']} on {contract['network']} "
            f"to {contract['pay_to']} ({contract['chain_adapter']} chain, {contract['required_confirmations']} confirmation(s))")
        paid = self.api.post(f"/api/contracts/{contract_id}/payment", {"tx_hash": random_tx_hash()})
        log(f"contract {contract_id}: payment submitted ({paid['status']})")
        self.inbox.wait("the contract funded", lambda e: e["type"] == "contract.funded" and e["subject"] == contract_id)
        log(f"contract {contract_id}: funded")
        evaluation = self.inbox.wait("the contract's job at EVALUATION",
                                     lambda e: is_job(e, "EVALUATION", contract_id=contract_id))
        job = evaluation["data"]["job"]
        self.evaluate(job)
        self.inbox.wait(f"job {job['id']} COMPLETED", lambda e: is_job(e, "COMPLETED", job_id=job["id"]))
        self.inbox.wait("the contract completed", lambda e: e["type"] == "contract.completed" and e["subject"] == contract_id)
        log(f"job {job['id']} COMPLETED, contract {contract_id} completed")
        self.timings["marketplace_s"] = round(time.monotonic() - t, 3)
        return job["id"]

    def hire_directly(self, service):
        t = time.monotonic()
        job = self.api.post("/api/agents/jobs", {
            "providerId": service["provider_id"],
            "serviceRequirement": f"{TEXT}, and again without a thread",
            "budget": service["price"]["amount"],
            "tokenAddress": self.token_address,
            "clientOperationId": f"requester-py-{uuid.uuid4()}",  # a retried create makes one job
        }, expect=(201,))
        log(f"job {job['id']} requested ({job['phaseName']})")
        self.inbox.wait(f"job {job['id']} accepted by the provider", lambda e: is_job(e, "NEGOTIATION", job_id=job["id"]))
        escrowed = self.api.post(f"/api/agents/jobs/{job['id']}/escrow", {"txHash": random_tx_hash()})
        log(f"job {job['id']}: escrow deposited (verified: {escrowed['escrowVerified']})")
        evaluation = self.inbox.wait(f"job {job['id']} at EVALUATION", lambda e: is_job(e, "EVALUATION", job_id=job["id"]))
        self.evaluate(evaluation["data"]["job"])
        self.inbox.wait(f"job {job['id']} COMPLETED", lambda e: is_job(e, "COMPLETED", job_id=job["id"]))
        log(f"job {job['id']} COMPLETED")
        self.timings["direct_s"] = round(time.monotonic() - t, 3)
        return job["id"]

    def run(self):
        service = self.find_service()
        jobs = [self.hire_through_marketplace(service), self.hire_directly(service)]
        # The API agrees with what the webhooks said.
        for job_id in jobs:
            job = self.api.get(f"/api/agents/jobs/{job_id}")
            if job["phaseName"] != "COMPLETED":
                raise Failed(f"job {job_id} is {job['phaseName']}, not COMPLETED")
        return jobs


def main():
    requester = None
    ok = False
    try:
        requester = Requester()
        jobs = requester.run()
        ok = True
        log(f"both jobs COMPLETED: {jobs}")
    except Failed as e:
        log(f"FAILED: {e}")
    finally:
        if requester:
            inbox = requester.inbox
            summary = {
                "ok": ok,
                "agent_id": requester.agent_id,
                "story_s": round(time.monotonic() - T0, 3),
                **requester.timings,
                "webhooks_verified": inbox.verified,
                "webhooks_refused": inbox.refused,
                "webhooks_duplicates": inbox.duplicates,
                "events": dict(sorted(inbox.types.items())),
            }
            print(f"requester summary {json.dumps(summary)}", flush=True)
            requester.receiver.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
