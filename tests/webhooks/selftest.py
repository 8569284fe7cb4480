"""Self-check of the suite's own parts, without the server: the receivers (lib.Receiver) behave as
the tests expect, and `standardwebhooks` verifies what it signs itself (one signature, two during
a rotation) and refuses a wrong secret. run.sh runs it before the suite; alone:
    .cache/webhooks/venv/bin/python tests/webhooks/selftest.py"""

import base64
import http.client
import json
import os
import socket
import sys
import time
import unittest
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import Receiver, free_port  # noqa: E402
from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # noqa: E402


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def post(port, body, headers, timeout=5.0, path="/hook"):
    """POST like the notifier does; returns the status, or the exception raised."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException) as e:
        return e
    finally:
        conn.close()


def signed(secrets, msg_id, payload):
    """Headers for `payload` signed with standardwebhooks' own Webhook.sign by every secret."""
    now = datetime.now(tz=timezone.utc)
    sigs = [Webhook(s).sign(msg_id, now, payload) for s in secrets]
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": " ".join(sigs)}


ROW = {"event_id": 7, "type": "service.published", "subject": "svc_1", "time": "2026-01-01T00:00:00Z",
       "cloudevent_id": "0190-test", "data": {"service": {"id": "svc_1", "title": "caf\u00e9"}}}


class SelfTest(unittest.TestCase):
    def setUp(self):
        self.receivers = []

    def tearDown(self):
        for r in self.receivers:
            r.stop()

    def rec(self, **kw):
        r = Receiver("self", **kw)
        self.receivers.append(r)
        return r

    def test_signature_roundtrip(self):
        rec = self.rec().start()
        secret = new_secret()
        payload = json.dumps(ROW, ensure_ascii=False)
        headers = signed([secret], ROW["cloudevent_id"], payload)
        self.assertEqual(post(rec.port, payload.encode(), headers), 200)
        [req] = rec.requests
        self.assertTrue(req.ok)
        self.assertEqual(req.status, 200)
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.path, "/hook")
        self.assertEqual(req.webhook_id, ROW["cloudevent_id"])
        self.assertEqual(req.body, payload.encode())
        self.assertEqual(Webhook(secret).verify(req.body, req.headers), ROW)
        with self.assertRaises(WebhookVerificationError):
            Webhook(new_secret()).verify(req.body, req.headers)
        tampered = req.body.replace(b"svc_1", b"svc_2")
        with self.assertRaises(WebhookVerificationError):
            Webhook(secret).verify(tampered, req.headers)
        stale = dict(req.headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
        with self.assertRaises(WebhookVerificationError):
            Webhook(secret).verify(req.body, stale)

    def test_two_signatures(self):
        rec = self.rec().start()
        old, new = new_secret(), new_secret()
        payload = json.dumps(ROW)
        self.assertEqual(post(rec.port, payload.encode(), signed([new, old], "id-2", payload)), 200)
        [req] = rec.requests
        self.assertEqual(len(req.headers["webhook-signature"].split(" ")), 2)
        self.assertEqual(Webhook(new).verify(req.body, req.headers), ROW)
        self.assertEqual(Webhook(old).verify(req.body, req.headers), ROW)
        with self.assertRaises(WebhookVerificationError):
            Webhook(new_secret()).verify(req.body, req.headers)

    def test_fail_then_ok(self):
        rec = self.rec().start()
        rec.fail(2, 500)
        self.assertEqual([post(rec.port, b"{}", {"webhook-id": "a"}) for _ in range(3)], [500, 500, 200])
        self.assertEqual([r.ok for r in rec.requests], [False, False, True])
        self.assertEqual(len(rec.delivered()), 1)
        rec.always(503)
        self.assertEqual(post(rec.port, b"{}", {}), 503)
        rec.ok()
        self.assertEqual(post(rec.port, b"{}", {}), 200)

    def test_hang_first(self):
        rec = self.rec().start()
        rec.hang_first(1.5)
        t0 = time.monotonic()
        first = post(rec.port, b"{}", {"webhook-id": "h"}, timeout=0.3)
        self.assertIsInstance(first, (socket.timeout, TimeoutError, OSError), first)
        self.assertLess(time.monotonic() - t0, 1.0)
        # The second request is answered while the first is still held.
        self.assertEqual(post(rec.port, b"{}", {"webhook-id": "h"}), 200)
        self.assertEqual(len(rec.requests), 2)
        self.assertIsNone(rec.requests[0].status)
        time.sleep(1.5)
        self.assertIsNone(rec.requests[0].status, "the held request is closed unanswered")
        self.assertEqual([r.webhook_id for r in rec.delivered()], ["h"])

    def test_hang_forever_released_by_stop(self):
        rec = self.rec().start()
        rec.hang_forever()
        self.assertIsInstance(post(rec.port, b"{}", {}, timeout=0.3), Exception)
        self.assertIsInstance(post(rec.port, b"{}", {}, timeout=0.3), Exception)
        self.assertEqual(len(rec.requests), 2)
        self.assertEqual(rec.delivered(), [])
        t0 = time.monotonic()
        rec.stop()
        self.assertLess(time.monotonic() - t0, 3.0)

    def test_down_then_up_on_the_same_port(self):
        port = free_port()
        rec = self.rec(port=port)
        self.assertEqual(rec.url(), f"http://127.0.0.1:{port}/hook")
        self.assertIsInstance(post(port, b"{}", {}), ConnectionRefusedError)
        rec.start()
        self.assertEqual(rec.port, port)
        self.assertEqual(post(port, b"{}", {}), 200)
        rec.stop()
        self.assertIsInstance(post(port, b"{}", {}), ConnectionRefusedError)
        rec.start()
        self.assertEqual(post(port, b"{}", {}), 200)
        self.assertEqual(len(rec.delivered()), 2)

    def test_keep_alive_and_chunked(self):
        rec = self.rec().start()
        conn = http.client.HTTPConnection("127.0.0.1", rec.port, timeout=5)
        try:
            for i in range(3):  # one connection, several requests
                conn.request("POST", "/k", body=json.dumps({"i": i}).encode(), headers={"content-type": "application/json"})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            conn.request("POST", "/c", body=iter([b'{"chunk', b'ed": true}']), encode_chunked=True,
                         headers={"Transfer-Encoding": "chunked"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            conn.close()
        self.assertEqual([q.json() for q in rec.requests], [{"i": 0}, {"i": 1}, {"i": 2}, {"chunked": True}])

    def test_wait_for_reports_what_it_got(self):
        rec = self.rec().start()
        with self.assertRaises(AssertionError) as cm:
            rec.wait_for(lambda x: len(x.requests) > 0, 0.1, "a request")
        self.assertIn("timed out", str(cm.exception))


if __name__ == "__main__":
    result = unittest.TextTestRunner(verbosity=1).run(unittest.TestLoader().loadTestsFromTestCase(SelfTest))
    print("webhooks selftest:", "OK" if result.wasSuccessful() else "FAILED")
    sys.exit(0 if result.wasSuccessful() else 1)
