"""End-to-end tests of webhooks (the notifier's outbound deliveries) against the real server.

Starts `$AGENTLANCER_BIN all` on a free port (with `--storage.url $STORAGE_URL` when STORAGE_URL
is set: the PostgreSQL twin), registers endpoints pointing at local receivers (lib.Receiver),
makes events happen through the public API, and checks what the receivers got against the agent's
log (GET /api/agent/events). Every signature is verified with the official `standardwebhooks`
package. Run by run.sh (which makes the venv):
    AGENTLANCER_BIN=build/debug/app/agentlancer .cache/webhooks/venv/bin/python tests/webhooks/webhooks_test.py [-k PATTERN]
Exits 0 when every test passed; prints the server's stderr tail on failure. Ends with one
throughput figure (printed, never asserted)."""

import base64
import os
import shutil
import signal
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import Api, Receiver, Server, free_port, wait_until  # noqa: E402
from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # noqa: E402

WAIT = 15  # s: the bound of every wait for something the server does on its own
RETRY_MS = [0, 300, 300, 300]
SERVER_ARGS = [
    "--http.access_log", "false",
    "--rate_limit.signup", "10000/1m",
    "--webhooks.retry_schedule_ms", ",".join(map(str, RETRY_MS)),
    "--webhooks.timeout_ms", "1000",
    "--webhooks.disable_after_ms", "4000",
    "--webhooks.poll_interval_ms", "50",
]

SERVER = None
API = None
RECEIVERS = []  # stopped at the end whatever happens
SUMMARY = []  # figures printed at the end


def receiver(name, port=None, start=True):
    r = Receiver(name, port)
    RECEIVERS.append(r)
    return r.start() if start else r


# ---------------------------------------------------------------------------------------------
# API helpers


class Agent:
    def __init__(self, name, agent_id, key):
        self.name, self.id, self.key = name, agent_id, key

    def __repr__(self):
        return f"<agent {self.name} {self.id}>"


def expect(resp, status, what=""):
    if resp.status != status:
        raise AssertionError(f"{what}: expected HTTP {status}, got {resp!r}")
    return resp.body


def expect_error(tc, resp, status, code, what):
    tc.assertEqual(resp.status, status, f"{what}: {resp!r}")
    tc.assertIsInstance(resp.body, dict, f"{what}: {resp!r}")
    tc.assertEqual(resp.body.get("code"), code, f"{what}: {resp!r}")
    tc.assertIsInstance(resp.body.get("error"), str, f"{what}: {resp!r}")


def events(agent, since=0):
    """The agent's whole log after `since`, by polling."""
    out = []
    while True:
        page = expect(API.get(f"/api/agent/events?since_id={since}&limit=500", agent.key), 200, "GET /api/agent/events")
        out.extend(page["events"])
        if not page["events"]:
            return out
        since = page["next_since_id"]


def signup(name):
    """A new agent whose `agent.registered` is already in its log (so an endpoint made next starts
    after it and every later event is one the test caused)."""
    body = expect(API.post("/api/agent/signup", {"name": name}), 201, "signup")
    agent = Agent(name, body["agent_id"], body["api_key"])
    wait_until(lambda: any(e["type"] == "agent.registered" for e in events(agent)), WAIT,
               f"agent.registered in the log of {name}")
    return agent


_service_n = [0]


def publish_service(agent, headers=None):
    """The provider publishes a service: one `service.published` in its log. Returns the service."""
    _service_n[0] += 1
    n = _service_n[0]
    body = {"title": f"Webhook test service {n}", "description": "A service made by the webhook suite",
            "deliverable": "webhook.md", "price": {"amount": "12", "token": "USDC", "network": "base"},
            "timeline": "1 day", "tags": ["webhooks"]}
    return expect(API.post("/api/agent/services", body, agent.key, headers=headers), 201, "POST /api/agent/services")


def open_thread(requester, service):
    return expect(API.post("/api/agent/threads", {"service_id": service["id"], "mode": "quick_quote", "message": "Please"},
                           requester.key), 201, "POST /api/agent/threads")


def create_webhook(agent, url, event_types=None, description=None, status=201, **kw):
    body = {"url": url}
    if event_types is not None:
        body["event_types"] = event_types
    if description is not None:
        body["description"] = description
    r = API.post("/api/agent/webhooks", body, agent.key, **kw)
    if status is None:
        return r
    return expect(r, status, f"POST /api/agent/webhooks {body}")


def get_webhook(agent, wid):
    return expect(API.get(f"/api/agent/webhooks/{wid}", agent.key), 200, "GET webhook")


def deliveries(agent, wid, limit=200):
    body = expect(API.get(f"/api/agent/webhooks/{wid}/deliveries?limit={limit}", agent.key), 200, "GET deliveries")
    return body["deliveries"]


def wait_events(agent, since, predicate, what):
    """Polls the agent's log after `since` until predicate(rows) holds; returns the rows."""
    return wait_until(lambda: (lambda rows: rows if predicate(rows) else None)(events(agent, since)), WAIT, what)


def wait_rows(agent, since, count, types=None, what="events"):
    """The first `count` rows after `since` (of `types` when given) once they are in the log."""
    def pick():
        rows = [e for e in events(agent, since) if types is None or e["type"] in types]
        return rows[:count] if len(rows) >= count else None
    return wait_until(pick, WAIT, f"{count} {what} in the log of {agent.name}")


def ok_ids(rec, path=None):
    """webhook-ids the receiver answered 2xx, in arrival order."""
    return [r.webhook_id for r in rec.delivered() if path is None or r.path == path]


def wait_delivered(rec, ids, path=None, timeout=WAIT):
    want = set(ids)
    rec.wait_for(lambda x: want <= set(ok_ids(x, path)), timeout, f"2xx deliveries of {sorted(want)}")


def distinct_in_order(ids):
    out = []
    for i in ids:
        if i not in out:
            out.append(i)
    return out


# ---------------------------------------------------------------------------------------------
# The tests


class WebhookTests(unittest.TestCase):
    maxDiff = None

    # ----- shared checks
    def check_request(self, req, secret, row=None, path="/hook"):
        """One delivery request: method, headers, signature (standardwebhooks), body == the row."""
        self.assertEqual(req.method, "POST", req)
        self.assertEqual(req.path, path, req)
        for h in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            self.assertIn(h, req.headers, f"{h} missing: {req.headers}")
        self.assertTrue(req.headers.get("content-type", "").lower().startswith("application/json"), req.headers)
        self.assertTrue(req.headers.get("user-agent", "").startswith("agentlancer-webhooks/"), req.headers)
        self.assertRegex(req.headers["webhook-timestamp"], r"^\d+$")
        payload = Webhook(secret).verify(req.body, req.headers)
        if row is not None:
            self.assertEqual(payload, row, "the body is the polling row")
            self.assertEqual(req.webhook_id, row["cloudevent_id"], "webhook-id is the CloudEvent id")
        self.assertEqual(payload["cloudevent_id"], req.webhook_id)
        return payload

    def check_in_order(self, rec, rows, secret, path="/hook"):
        """The receiver's 2xx deliveries are exactly `rows`, in event_id order, each signed."""
        by_id = {r["cloudevent_id"]: r for r in rows}
        got = distinct_in_order(ok_ids(rec, path))
        self.assertEqual(got, [r["cloudevent_id"] for r in rows], "deliveries in event_id order, nothing else")
        for req in rec.requests:
            if req.path == path:
                self.check_request(req, secret, by_id.get(req.webhook_id), path)

    def assert_no_double_2xx(self, rec):
        counts = {}
        for r in rec.delivered():
            counts[r.webhook_id] = counts.get(r.webhook_id, 0) + 1
        twice = {k: v for k, v in counts.items() if v > 1}
        self.assertEqual(twice, {}, "a webhook-id answered 2xx more than once")

    # ----- 1
    def test_01_happy_path(self):
        rec = receiver("happy")
        agent = signup("wh-happy")
        ep = create_webhook(agent, rec.url(), description="happy path")
        self.assertRegex(ep["id"], r"^whk_[0-9A-Za-z]{26}$")
        self.assertTrue(ep["secret"].startswith("whsec_"), ep)
        self.assertEqual(len(base64.b64decode(ep["secret"][len("whsec_"):])), 24, "24 random bytes")
        self.assertIsNone(ep["event_types"])
        self.assertEqual(ep["status"], "enabled")
        self.assertIsNone(ep["disabled_reason"])
        self.assertIsNone(ep["failing_since"])
        self.assertEqual(ep["url"], rec.url())
        self.assertEqual(ep["description"], "happy path")
        self.assertIsInstance(ep["last_event_id"], int)
        for k in ("created_at", "updated_at"):
            self.assertIsInstance(ep[k], str)
        # The secret is shown once.
        got = get_webhook(agent, ep["id"])
        self.assertNotIn("secret", got)
        stable = lambda w: {k: v for k, v in w.items() if k not in ("secret", "last_event_id", "updated_at")}  # noqa: E731
        self.assertEqual(stable(got), stable(ep))
        listed = expect(API.get("/api/agent/webhooks", agent.key), 200, "list")["webhooks"]
        self.assertEqual([w["id"] for w in listed], [ep["id"]])
        self.assertNotIn("secret", listed[0])

        # The first request is traced (W3C traceparent): its event's delivery continues that trace.
        trace_id = os.urandom(16).hex()
        publish_service(agent, headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"})
        for _ in range(2):
            publish_service(agent)
        rows = wait_rows(agent, ep["last_event_id"], 3, {"service.published"}, "service.published")
        rows = events(agent, ep["last_event_id"])  # every row after the cursor (only ours)
        self.assertTrue(all(r["event_id"] > ep["last_event_id"] for r in rows))
        wait_delivered(rec, [r["cloudevent_id"] for r in rows])
        self.check_in_order(rec, rows, ep["secret"])
        for req in rec.requests:
            self.assertEqual(len(req.headers["webhook-signature"].split(" ")), 1, "one signature outside a rotation")
        first = next(r for r in rec.requests if r.headers["webhook-id"] == rows[0]["cloudevent_id"])
        self.assertRegex(first.headers.get("traceparent", ""), rf"^00-{trace_id}-[0-9a-f]{{16}}-01$",
                         "the delivery continues the trace of the request that caused the event")
        traces = {r.headers.get("traceparent", "")[3:35] for r in rec.requests}
        self.assertEqual(len(traces), 3, "untraced requests start traces of their own")
        self.assert_no_double_2xx(rec)
        # A wrong secret does not verify (the check above is not vacuous).
        with self.assertRaises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(os.urandom(24)).decode()).verify(rec.requests[0].body, rec.requests[0].headers)

        # The delivery log: one delivered attempt per event, newest first.
        want = {r["event_id"]: r for r in rows}
        dl = wait_until(lambda: (lambda d: d if {x["event_id"] for x in d if x["status"] == "delivered"} >= set(want) else None)(
            deliveries(agent, ep["id"])), WAIT, "the delivery log")
        self.assertEqual([d["event_id"] for d in dl], sorted((d["event_id"] for d in dl), reverse=True), "newest first")
        for d in dl:
            row = want[d["event_id"]]
            self.assertEqual(d["webhook_id"], row["cloudevent_id"])
            self.assertEqual(d["type"], row["type"])
            self.assertEqual(d["attempt"], 1)
            self.assertEqual(d["status"], "delivered")
            self.assertEqual(d["response_code"], 200)
            self.assertIsNone(d["error"])
            self.assertIsInstance(d["latency_ms"], (int, float))
            self.assertIsInstance(d["attempted_at"], str)
        one = deliveries(agent, ep["id"], limit=1)
        self.assertEqual(len(one), 1)
        self.assertEqual(one[0]["event_id"], max(want))
        # The cursor: the last event delivered.
        wait_until(lambda: get_webhook(agent, ep["id"])["last_event_id"] == max(want), WAIT, "last_event_id at the last row")

    # ----- 2
    def test_02_event_types_filter(self):
        rec = receiver("filter")
        provider = signup("wh-filter-provider")
        req1, req2 = signup("wh-filter-requester-1"), signup("wh-filter-requester-2")
        ep = create_webhook(provider, rec.url(), event_types=["thread.opened", "thread.opened"])
        self.assertEqual(ep["event_types"], ["thread.opened"], "duplicates are dropped")
        service = publish_service(provider)
        thread = open_thread(req1, service)
        expect(API.post(f"/api/agent/threads/{thread['id']}/messages", {"type": "text", "body": "hello"}, provider.key),
               201, "post a message")
        open_thread(req2, service)  # the last event is one it takes: once it is delivered, all before were handled
        rows = wait_rows(provider, ep["last_event_id"], 2, {"thread.opened"}, "thread.opened")
        all_rows = events(provider, ep["last_event_id"])
        self.assertTrue({"service.published", "thread.message_posted"} <= {r["type"] for r in all_rows}, all_rows)
        wait_delivered(rec, [r["cloudevent_id"] for r in rows])
        self.check_in_order(rec, rows, ep["secret"])
        self.assertEqual({r.json()["type"] for r in rec.requests}, {"thread.opened"})

    # ----- 3
    def test_03_retried_after_500s(self):
        rec = receiver("fail-twice")
        rec.fail(2, 500)
        agent = signup("wh-retry")
        ep = create_webhook(agent, rec.url())
        publish_service(agent)
        [row] = wait_rows(agent, ep["last_event_id"], 1, what="event")
        wid = row["cloudevent_id"]
        wait_delivered(rec, [wid])
        mine = [r for r in rec.requests if r.webhook_id == wid]
        self.assertEqual([r.status for r in mine], [500, 500, 200], mine)
        self.assertEqual(sum(r.ok for r in mine), 1, "one 2xx answer for the webhook-id")
        for r in mine:
            self.check_request(r, ep["secret"], row)
        dl = wait_until(lambda: (lambda d: d if any(x["status"] == "delivered" for x in d) else None)(
            [x for x in deliveries(agent, ep["id"]) if x["event_id"] == row["event_id"]]), WAIT, "the delivered row")
        by_attempt = {d["attempt"]: d for d in dl}
        self.assertEqual(sorted(by_attempt), [1, 2, 3], dl)
        for n in (1, 2):
            self.assertEqual(by_attempt[n]["status"], "failed", dl)
            self.assertEqual(by_attempt[n]["response_code"], 500, dl)
            self.assertIsInstance(by_attempt[n]["error"], str, dl)
            self.assertEqual(by_attempt[n]["webhook_id"], wid)
        self.assertEqual(by_attempt[3]["status"], "delivered", dl)
        self.assertEqual(by_attempt[3]["response_code"], 200, dl)
        self.assertEqual(by_attempt[3]["webhook_id"], wid)

    # ----- 4
    def test_04_timeout_then_retried(self):
        rec = receiver("hang-first")
        rec.hang_first(3.0)  # > webhooks.timeout_ms (1 s); then the connection closes unanswered
        agent = signup("wh-hang")
        ep = create_webhook(agent, rec.url())
        publish_service(agent)
        [row] = wait_rows(agent, ep["last_event_id"], 1, what="event")
        wid = row["cloudevent_id"]
        wait_delivered(rec, [wid])
        mine = [r for r in rec.requests if r.webhook_id == wid]
        self.assertGreaterEqual(len(mine), 2, mine)
        self.assertIsNone(mine[0].status, "the first request was never answered")
        self.assertEqual(sum(r.ok for r in mine), 1)
        for r in mine:
            self.check_request(r, ep["secret"], row)
        dl = wait_until(lambda: (lambda d: d if any(x["status"] == "delivered" for x in d) else None)(
            [x for x in deliveries(agent, ep["id"]) if x["event_id"] == row["event_id"]]), WAIT, "the delivered row")
        first = [d for d in dl if d["attempt"] == 1]
        self.assertEqual(len(first), 1, dl)
        self.assertEqual(first[0]["status"], "failed")
        self.assertIsNone(first[0]["response_code"])
        self.assertIn("timeout", (first[0]["error"] or "").lower(), first[0])
        done = [d for d in dl if d["status"] == "delivered"]
        self.assertEqual(len(done), 1, dl)
        self.assertGreaterEqual(done[0]["attempt"], 2)

    # ----- 5
    def test_05_receiver_down_then_caught_up(self):
        rec = receiver("down-then-up", port=free_port(), start=False)  # nothing listens there yet
        agent = signup("wh-down")
        ep = create_webhook(agent, rec.url())
        for _ in range(4):
            publish_service(agent)
        rows = wait_rows(agent, ep["last_event_id"], 4, {"service.published"}, "service.published")
        rows = events(agent, ep["last_event_id"])
        # Attempts fail while it is down (connection refused) ...
        failed = wait_until(lambda: [d for d in deliveries(agent, ep["id"]) if d["status"] == "failed"], WAIT,
                            "a failed attempt while the receiver is down")
        self.assertIsNone(failed[-1]["response_code"], failed)
        self.assertEqual(failed[-1]["event_id"], rows[0]["event_id"], "the first event holds the others")
        time.sleep(0.5)  # a few more refused attempts, well within webhooks.disable_after_ms (4 s)
        self.assertEqual(get_webhook(agent, ep["id"])["status"], "enabled", "disabled before the receiver came up")
        rec.start()  # ... then it listens on the same port
        wait_delivered(rec, [r["cloudevent_id"] for r in rows])
        self.check_in_order(rec, rows, ep["secret"])
        self.assert_no_double_2xx(rec)

    # ----- 6
    def test_06_secret_rotation(self):
        rec = receiver("rotation")
        agent = signup("wh-rotate")
        ep = create_webhook(agent, rec.url())
        old = ep["secret"]
        publish_service(agent)
        [row1] = wait_rows(agent, ep["last_event_id"], 1, what="event")
        wait_delivered(rec, [row1["cloudevent_id"]])
        first = rec.delivered()[0]
        self.check_request(first, old, row1)
        self.assertEqual(len(first.headers["webhook-signature"].split(" ")), 1)

        rot = expect(API.post(f"/api/agent/webhooks/{ep['id']}/rotate-secret", {}, agent.key), 200, "rotate-secret")
        self.assertEqual(rot["id"], ep["id"])
        new = rot["secret"]
        self.assertTrue(new.startswith("whsec_"))
        self.assertNotEqual(new, old)
        self.assertIsInstance(rot["previous_secret_expires_at"], str)

        publish_service(agent)
        [row2] = wait_rows(agent, row1["event_id"], 1, what="event after the rotation")
        wait_delivered(rec, [row2["cloudevent_id"]])
        req = [r for r in rec.delivered() if r.webhook_id == row2["cloudevent_id"]][0]
        sigs = req.headers["webhook-signature"].split(" ")
        self.assertEqual(len(sigs), 2, f"two signatures during the overlap: {sigs}")
        self.assertTrue(all(s.startswith("v1,") for s in sigs), sigs)
        self.assertEqual(Webhook(new).verify(req.body, req.headers), row2)
        self.assertEqual(Webhook(old).verify(req.body, req.headers), row2)
        # Each of the two is a real signature: one by the new secret, the other by the old one.
        signers = []
        for s in sigs:
            alone = dict(req.headers, **{"webhook-signature": s})
            by = [name for name, secret in (("new", new), ("old", old)) if self._verifies(secret, req.body, alone)]
            signers.append(by)
        self.assertEqual(sorted(map(tuple, signers)), [("new",), ("old",)], signers)
        with self.assertRaises(WebhookVerificationError):
            Webhook("whsec_" + base64.b64encode(os.urandom(24)).decode()).verify(req.body, req.headers)
        # The secret is still never listed.
        self.assertNotIn("secret", get_webhook(agent, ep["id"]))

    @staticmethod
    def _verifies(secret, body, headers):
        try:
            Webhook(secret).verify(body, headers)
            return True
        except WebhookVerificationError:
            return False

    # ----- 7
    def test_07_ssrf(self):
        agent = signup("wh-ssrf")
        for url in ("http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "http://[fd00::1]/x",
                    "http://192.168.1.10/x", "http://100.64.0.1/x", "http://0.0.0.0/x"):
            expect_error(self, create_webhook(agent, url, status=None), 422, "url_not_allowed", url)
        r = create_webhook(agent, "http://no-such-host.invalid/", status=None)
        expect_error(self, r, 422, "url_unresolvable", "an unresolvable host")
        for url in ("ftp://example.com/x", "not a url", "/relative/path", "http://user:pw@127.0.0.1/x",
                    "http://127.0.0.1/x#frag"):
            expect_error(self, create_webhook(agent, url, status=None), 400, "validation_error", url)
        port = free_port()
        ep = create_webhook(agent, f"http://127.0.0.1:{port}/", status=201)
        self.assertEqual(ep["url"], f"http://127.0.0.1:{port}/")
        # PATCH applies the same checks.
        expect_error(self, API.patch(f"/api/agent/webhooks/{ep['id']}", {"url": "http://10.0.0.1/hook"}, agent.key),
                     422, "url_not_allowed", "PATCH to a private address")
        expect_error(self, API.patch(f"/api/agent/webhooks/{ep['id']}", {"url": "ftp://example.com/"}, agent.key),
                     400, "validation_error", "PATCH to ftp://")
        self.assertEqual(get_webhook(agent, ep["id"])["url"], f"http://127.0.0.1:{port}/")

    # ----- 8
    def test_08_failing_endpoint_disabled_then_reenabled(self):
        rec = receiver("always-500")
        rec.always(500)
        agent = signup("wh-disable")
        ep = create_webhook(agent, rec.url())
        publish_service(agent)
        [held] = wait_rows(agent, ep["last_event_id"], 1, {"service.published"}, "service.published")
        got = wait_until(lambda: (lambda w: w if w["status"] == "disabled" else None)(get_webhook(agent, ep["id"])),
                         WAIT, "the failing endpoint disabled (webhooks.disable_after_ms 4 s)")
        self.assertEqual(got["disabled_reason"], "failing")
        self.assertIsInstance(got["failing_since"], str)
        self.assertTrue(all(r.status == 500 for r in rec.requests if r.status is not None))
        self.assertEqual({r.webhook_id for r in rec.requests}, {held["cloudevent_id"]}, "only the held event was tried")
        [note] = wait_rows(agent, held["event_id"], 1, {"webhook.endpoint_disabled"}, "webhook.endpoint_disabled")
        self.assertEqual(note["data"]["webhook_id"], ep["id"], note)
        self.assertEqual(note["data"]["url"], rec.url(), note)
        self.assertIn("failing_since", note["data"])
        self.assertIn("last_error", note["data"])
        # Disabled: no more attempts.
        n = len(rec.requests)
        time.sleep(1.0)
        self.assertEqual(len(rec.requests), n, "a disabled endpoint is not called")

        rec.ok()
        again = expect(API.patch(f"/api/agent/webhooks/{ep['id']}", {"enabled": True}, agent.key), 200, "re-enable")
        self.assertEqual(again["status"], "enabled")
        self.assertIsNone(again["disabled_reason"])
        self.assertIsNone(again["failing_since"], "failures are forgotten")
        wait_delivered(rec, [held["cloudevent_id"]])
        first_ok = rec.delivered()[0]
        self.assertEqual(first_ok.webhook_id, held["cloudevent_id"], "delivery resumes at the event it stopped at")
        self.check_request(first_ok, ep["secret"], held)
        later = distinct_in_order(ok_ids(rec))
        self.assertEqual(later[0], held["cloudevent_id"])

        # Paused by the agent once it has caught up (the note itself is delivered or skipped); {} changes nothing.
        wait_until(lambda: get_webhook(agent, ep["id"])["last_event_id"] >= note["event_id"], WAIT,
                   "the re-enabled endpoint past the webhook.endpoint_disabled row")
        paused = expect(API.patch(f"/api/agent/webhooks/{ep['id']}", {"enabled": False}, agent.key), 200, "pause")
        self.assertEqual((paused["status"], paused["disabled_reason"]), ("disabled", "by_agent"))
        same = expect(API.patch(f"/api/agent/webhooks/{ep['id']}", {}, agent.key), 200, "PATCH {}")
        self.assertEqual({k: v for k, v in same.items() if k != "updated_at"},
                         {k: v for k, v in paused.items() if k != "updated_at"})

    # ----- 9
    def test_09_replay(self):
        rec = receiver("replay")
        agent = signup("wh-replay")
        ep = create_webhook(agent, rec.url())
        for _ in range(3):
            publish_service(agent)
        rows = wait_rows(agent, ep["last_event_id"], 3, {"service.published"}, "service.published")
        rows = events(agent, ep["last_event_id"])
        ids = [r["cloudevent_id"] for r in rows]
        wait_delivered(rec, ids)
        self.check_in_order(rec, rows, ep["secret"])
        before = len(rec.delivered())

        expect_error(self, API.post(f"/api/agent/webhooks/{ep['id']}/replay", {}, agent.key), 400, "validation_error",
                     "replay without since_event_id")
        since = rows[0]["event_id"] - 1
        r = API.post(f"/api/agent/webhooks/{ep['id']}/replay", {"since_event_id": since}, agent.key)
        body = expect(r, 202, "replay")
        self.assertEqual(body["id"], ep["id"])
        self.assertEqual(body["since_event_id"], since)
        rec.wait_for(lambda x: len(x.delivered()) >= before + len(rows), WAIT, "the replayed deliveries")
        replayed = rec.delivered()[before:]
        self.assertEqual(distinct_in_order([q.webhook_id for q in replayed]), ids, "the same webhook-ids, in order")
        by_id = {row["cloudevent_id"]: row for row in rows}
        for q in replayed:
            self.check_request(q, ep["secret"], by_id[q.webhook_id])

    # ----- 10
    def test_10_slow_endpoint_holds_only_itself(self):
        slow, fast, other = receiver("hangs-forever"), receiver("fast"), receiver("other-agent")
        slow.hang_forever()
        a, b = signup("wh-iso-a"), signup("wh-iso-b")
        types = ["service.published"]
        ep_slow = create_webhook(a, slow.url(), event_types=types)
        ep_fast = create_webhook(a, fast.url(), event_types=types)
        ep_other = create_webhook(b, other.url(), event_types=types)
        for _ in range(5):
            publish_service(a)
            publish_service(b)
        rows_a = wait_rows(a, ep_fast["last_event_id"], 5, set(types), "service.published")
        rows_b = wait_rows(b, ep_other["last_event_id"], 5, set(types), "service.published")
        slow.wait_for(lambda x: len(x.requests) >= 1, WAIT, "the slow endpoint called")
        wait_delivered(fast, [r["cloudevent_id"] for r in rows_a], timeout=5)
        wait_delivered(other, [r["cloudevent_id"] for r in rows_b], timeout=5)
        self.check_in_order(fast, rows_a, ep_fast["secret"])
        self.check_in_order(other, rows_b, ep_other["secret"])
        self.assertEqual(slow.delivered(), [])
        self.assertLess(get_webhook(a, ep_slow["id"])["last_event_id"], rows_a[0]["event_id"], "the slow one is still stuck")
        self.assertEqual({q.webhook_id for q in slow.requests}, {rows_a[0]["cloudevent_id"]},
                         "the slow endpoint is stuck on its first event")
        for ep, agent in ((ep_slow, a), (ep_fast, a), (ep_other, b)):
            self.assertEqual(API.delete(f"/api/agent/webhooks/{ep['id']}", agent.key).status, 204)

    # ----- 11
    def test_11_ownership(self):
        owner, other = signup("wh-owner"), signup("wh-stranger")
        ep = create_webhook(owner, f"http://127.0.0.1:{free_port()}/hook")
        wid = ep["id"]
        calls = [
            ("GET", f"/api/agent/webhooks/{wid}", None),
            ("PATCH", f"/api/agent/webhooks/{wid}", {"enabled": False}),
            ("DELETE", f"/api/agent/webhooks/{wid}", None),
            ("POST", f"/api/agent/webhooks/{wid}/rotate-secret", {}),
            ("POST", f"/api/agent/webhooks/{wid}/replay", {"since_event_id": 0}),
            ("GET", f"/api/agent/webhooks/{wid}/deliveries", None),
        ]
        for method, path, body in calls:
            r = API.call(method, path, key=other.key, **({} if body is None else {"body": body}))
            expect_error(self, r, 404, "webhook_not_found", f"{method} {path} by another agent")
            self.assertEqual(r.body["error"], "Webhook endpoint not found")
        self.assertEqual(expect(API.get("/api/agent/webhooks", other.key), 200, "list")["webhooks"], [])
        # Untouched by the stranger.
        still = get_webhook(owner, wid)
        self.assertEqual(still["status"], "enabled")
        self.assertEqual(still["url"], ep["url"])
        # Unknown ids are the same 404.
        expect_error(self, API.get("/api/agent/webhooks/whk_" + "A" * 26, owner.key), 404, "webhook_not_found", "unknown id")
        # Without a key: 401.
        self.assertEqual(API.get(f"/api/agent/webhooks/{wid}").status, 401)
        self.assertEqual(API.delete(f"/api/agent/webhooks/{wid}", owner.key).status, 204)
        expect_error(self, API.get(f"/api/agent/webhooks/{wid}", owner.key), 404, "webhook_not_found", "GET after DELETE")
        expect_error(self, API.delete(f"/api/agent/webhooks/{wid}", owner.key), 404, "webhook_not_found", "DELETE again")
        self.assertEqual(expect(API.get("/api/agent/webhooks", owner.key), 200, "list")["webhooks"], [])

    # ----- 12
    def test_12_limits_and_validation(self):
        agent = signup("wh-limits")
        port = free_port()
        made = [create_webhook(agent, f"http://127.0.0.1:{port}/hook/{i}")["id"] for i in range(10)]
        r = create_webhook(agent, f"http://127.0.0.1:{port}/hook/10", status=None)
        expect_error(self, r, 422, "too_many_webhooks", "the 11th endpoint")
        listed = expect(API.get("/api/agent/webhooks", agent.key), 200, "list")["webhooks"]
        self.assertEqual([w["id"] for w in listed], made, "oldest first")
        # Deleting one makes room.
        self.assertEqual(API.delete(f"/api/agent/webhooks/{made[0]}", agent.key).status, 204)
        create_webhook(agent, f"http://127.0.0.1:{port}/hook/11")

        fresh = signup("wh-validation")
        url = f"http://127.0.0.1:{port}/v"
        r = create_webhook(fresh, url, event_types=["thread.opened", "no.such_type"], status=None)
        expect_error(self, r, 400, "validation_error", "an unknown event type")
        self.assertIn("event_types[1]", str(r.body.get("details")), r.body)
        for bad in ({"url": url, "surprise": 1}, {}, {"url": 5}, {"url": url, "event_types": []},
                    {"url": url, "event_types": "thread.opened"}, {"url": url, "description": "x" * 501},
                    {"url": "http://127.0.0.1/" + "a" * 2048}):
            expect_error(self, API.post("/api/agent/webhooks", bad, fresh.key), 400, "validation_error", f"body {str(bad)[:80]}")
        self.assertEqual(expect(API.get("/api/agent/webhooks", fresh.key), 200, "list")["webhooks"], [])

        # Idempotency-Key: the same POST twice is one endpoint, the answer replayed.
        key = str(uuid.uuid4())
        body = {"url": url, "event_types": ["offer.created"], "description": "idempotent"}
        first = API.post("/api/agent/webhooks", body, fresh.key, headers={"Idempotency-Key": key})
        second = API.post("/api/agent/webhooks", body, fresh.key, headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 201, first)
        self.assertNotIn("idempotent-replayed", first.headers)
        self.assertEqual(second.status, 201, second)
        self.assertEqual(second.headers.get("idempotent-replayed"), "true", second.headers)
        self.assertEqual(second.body, first.body)
        listed = expect(API.get("/api/agent/webhooks", fresh.key), 200, "list")["webhooks"]
        self.assertEqual([w["id"] for w in listed], [first.body["id"]], "only one endpoint was created")
        other = API.post("/api/agent/webhooks", dict(body, description="other"), fresh.key, headers={"Idempotency-Key": key})
        expect_error(self, other, 422, "idempotency_key_reused", "the same key with another body")

    # ----- the figure
    # ----- 13
    def test_13_two_replicas_deliver_each_event_once(self):
        """Two notifiers on one PostgreSQL database: each endpoint is leased by one of them at a
        time, so each event is POSTed once (the normal case), in order."""
        if not os.environ.get("STORAGE_URL"):
            self.skipTest("needs PostgreSQL (the webhooks_pg run): replicas share one database")
        other = Server(SERVER.binary, SERVER.args)
        other.start()
        try:
            rec = receiver("replicas")
            agent = signup("wh-replicas")
            ep = create_webhook(agent, rec.url())
            apis = [API, Api(other.url)]
            for i in range(30):
                body = {"title": f"Replicated {i}", "description": "Through either replica", "deliverable": "x.md",
                        "price": {"amount": "3", "token": "USDC", "network": "base"}, "timeline": "1 day"}
                expect(apis[i % 2].post("/api/agent/services", body, agent.key), 201, "POST /api/agent/services")
            rows = wait_rows(agent, ep["last_event_id"], 30, {"service.published"}, "service.published")
            rows = events(agent, ep["last_event_id"])
            wait_delivered(rec, [r["cloudevent_id"] for r in rows], timeout=30)
            time.sleep(1)  # a second delivery, were there one, would come now
            self.check_in_order(rec, rows, ep["secret"])
            self.assertEqual(len(rec.requests), len(rows), "each event POSTed once by the two replicas together")
            per_replica = []
            for api in apis:
                text = api.get("/metrics").raw.decode()
                per_replica.append(sum(float(l.split()[1]) for l in text.splitlines()
                                       if l.startswith("webhook_deliveries_delivered_total")))
            print(f"webhooks: two replicas delivered {len(rows)} events once each (per replica, all endpoints so far: "
                  f"{per_replica})", flush=True)
        finally:
            other.stop()
            shutil.rmtree(other.dir, ignore_errors=True)

    def test_99_throughput(self):
        """Deliveries per second to one fast local receiver for a burst of events of a few agents
        (printed, never asserted)."""
        agents_n, per_agent = 4, 50
        rec = receiver("throughput")
        agents = [signup(f"wh-burst-{i}") for i in range(agents_n)]
        eps = [create_webhook(a, rec.url(f"/burst/{i}"), event_types=["service.published"]) for i, a in enumerate(agents)]
        errors = []

        def burst(a):
            try:
                for _ in range(per_agent):
                    publish_service(a)
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=burst, args=(a,)) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        posted = time.monotonic() - t0
        self.assertEqual(errors, [])
        total = agents_n * per_agent
        rec.wait_for(lambda x: len(set(ok_ids(x))) >= total, 60, f"{total} deliveries")
        ok = rec.delivered()
        first_seen = {}
        for q in ok:
            first_seen.setdefault(q.webhook_id, q.at)
        done = max(first_seen.values()) - t0
        spread = max(first_seen.values()) - min(first_seen.values())
        for i, (a, ep) in enumerate(zip(agents, eps)):
            rows = [r for r in events(a, ep["last_event_id"]) if r["type"] == "service.published"]
            self.assertEqual(distinct_in_order(ok_ids(rec, f"/burst/{i}")), [r["cloudevent_id"] for r in rows])
        for q in ok:
            Webhook(eps[int(q.path.rsplit("/", 1)[1])]["secret"]).verify(q.body, q.headers)
        SUMMARY.append(
            f"throughput: {total} events of {agents_n} agents posted in {posted:.2f} s; all {total} delivered "
            f"{done:.2f} s after the first post = {total / done:.0f} deliveries/s "
            f"(first to last delivery {spread:.2f} s = {total / max(spread, 1e-3):.0f}/s)")


# ---------------------------------------------------------------------------------------------


def main():
    binary = os.environ.get("AGENTLANCER_BIN", "")
    if not binary:
        print("webhooks: AGENTLANCER_BIN is not set: it must name the agentlancer binary "
              "(e.g. AGENTLANCER_BIN=build/debug/app/agentlancer, or run tests/webhooks/run.sh BINARY REPO)",
              file=sys.stderr)
        return 2
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"webhooks: AGENTLANCER_BIN={binary} is not an executable file (build it first)", file=sys.stderr)
        return 2
    args = list(SERVER_ARGS)
    if os.environ.get("STORAGE_URL"):
        # A second replica (test 13) shares the database, so both sign and check keys alike.
        args += ["--storage.url", os.environ["STORAGE_URL"], "--auth.secrets", "k1:" + os.urandom(32).hex()]
    loader = unittest.TestLoader()
    if sys.argv[1:2] == ["-k"] and len(sys.argv) > 2:  # -k PATTERN: only the tests whose name contains it
        loader.testNamePatterns = [f"*{sys.argv[2]}*"]
    suite = loader.loadTestsFromTestCase(WebhookTests)

    global SERVER, API
    backend = "postgres" if os.environ.get("STORAGE_URL") else "sqlite"
    print(f"webhooks: starting {binary} all ({backend})", flush=True)
    SERVER = Server(binary, args)
    result = None
    try:
        try:
            SERVER.start()
        except RuntimeError as e:
            print(f"webhooks: {e}", file=sys.stderr)
            return 1
        API = Api(SERVER.url)
        print(f"webhooks: server ready on {SERVER.url}", flush=True)
        result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    finally:
        for r in RECEIVERS:
            r.stop()
        alive = SERVER.alive()
        code = SERVER.stop()
    failed = result is None or not result.wasSuccessful()
    problems = []
    if not alive:
        problems.append("the server died during the run")
    reports = SERVER.sanitizer_reports()
    if reports:
        problems.append("sanitizer reports in the server log:\n  " + "\n  ".join(reports[:20]))
    for line in SUMMARY:
        print(f"webhooks: {line}")
    print(f"webhooks: server stopped with SIGTERM, exit code {code}")
    if failed or problems:
        for p in problems:
            print(f"webhooks: {p}")
        print(f"webhooks: server exit code {code}; its stderr tail ({SERVER.log_path}):")
        print(SERVER.log_tail(80))
        print(f"webhooks: FAILED ({len(result.failures) + len(result.errors) if result else '?'} failing tests, "
              f"{len(problems)} other problems)")
        return 1
    print(f"webhooks: OK, {result.testsRun} tests passed")
    return 0


def on_sigterm(signum, _frame):
    """ctest's timeout (or a user) stops the run: stop the server before going (a SystemExit would
    only fail the current test and let the suite go on)."""
    print(f"webhooks: signal {signum}: stopping the server", file=sys.stderr, flush=True)
    if SERVER is not None:
        SERVER.stop(timeout=10)
        print(SERVER.log_tail(40), file=sys.stderr, flush=True)
        shutil.rmtree(SERVER.dir, ignore_errors=True)
    os._exit(128 + signum)


def run():
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, on_sigterm)
    try:
        return main()
    finally:
        if SERVER is not None and not SERVER.alive():
            shutil.rmtree(SERVER.dir, ignore_errors=True)  # its log tail was printed when it mattered


if __name__ == "__main__":
    sys.exit(run())
