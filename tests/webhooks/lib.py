"""Helpers of the webhook end-to-end suite (webhooks_test.py): the agentlancer server it starts,
a small JSON client of its API, and local webhook receivers whose behaviour a test sets.

Standard library only; signatures are verified by the tests with the official `standardwebhooks`
package, never here."""

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port():
    """A free loopback TCP port below the kernel's ephemeral range (as scripts/free-port.py): a
    free ephemeral port may be taken by any outgoing connection before the bind; one below the
    range only by another listener."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    while True:
        port = random.randint(10000, max(10001, low - 1))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        return port


def wait_until(fn, timeout, what, interval=0.05):
    """Polls fn() until it returns something truthy (returned); AssertionError after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# The API client


class Response:
    def __init__(self, status, body, headers, raw):
        self.status = status
        self.body = body
        self.headers = headers  # lower-case names
        self.raw = raw

    def __repr__(self):
        return f"HTTP {self.status} {self.raw[:500]!r}"


_NO_BODY = object()


class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")
        rest = self.base.split("://", 1)[1]
        host, _, port = rest.partition(":")
        self.host, self.port = host, int(port or 80)

    def call(self, method, path, body=_NO_BODY, key=None, headers=None, timeout=30):
        h = {"accept": "application/json"}
        data = None
        if body is not _NO_BODY:
            data = json.dumps(body).encode()
            h["content-type"] = "application/json"
        if key:
            h["x-api-key"] = key
        h.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            raw = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(r.status, parsed, hdrs, raw)

    def get(self, path, key=None, **kw):
        return self.call("GET", path, key=key, **kw)

    def post(self, path, body=_NO_BODY, key=None, **kw):
        return self.call("POST", path, body=body, key=key, **kw)

    def patch(self, path, body=_NO_BODY, key=None, **kw):
        return self.call("PATCH", path, body=body, key=key, **kw)

    def delete(self, path, key=None, **kw):
        return self.call("DELETE", path, key=key, **kw)


# ---------------------------------------------------------------------------------------------
# The server


def _die_with_parent():
    """In the child before exec: SIGTERM it when the test process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Server:
    """One `agentlancer all` process on a free port with its own data directory; its stderr goes
    to a file whose tail is shown on failure."""

    def __init__(self, binary, args):
        self.binary = binary
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="agentlancer-webhooks-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout=60):
        # The port was free when chosen; another listener may take it before the bind: try another.
        for _attempt in range(3):
            self.port = free_port()
            cmd = [self.binary, "all", "--port", str(self.port), "--data_dir", os.path.join(self.dir, "data")]
            cmd += self.args
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                             preexec_fn=_die_with_parent)
            finally:
                log.close()
            api = Api(self.url)
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if api.get("/readyz", timeout=2).status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"agentlancer did not become ready (GET /readyz != 200)\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM (the server drains and stops), SIGKILL after `timeout` s; returns the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def sanitizer_reports(self):
        text = self.log_text()
        return [line for line in text.splitlines() if "ERROR: AddressSanitizer" in line or "runtime error:" in line]


# ---------------------------------------------------------------------------------------------
# Receivers


class Request:
    """One request a receiver got: arrival time, method, path, headers (lower-case names), the raw
    body, and what it was answered (status None while pending or when never answered; ok once a
    2xx answer was written)."""

    def __init__(self, seq, method, path, headers, body):
        self.seq = seq
        self.at = time.monotonic()
        self.wall = time.time()
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.status = None
        self.ok = False
        self.error = None

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.method} {self.path} webhook-id={self.webhook_id} status={self.status} ok={self.ok}>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver
    server_version = "webhook-receiver"

    def log_message(self, *args):
        pass

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _any(self):
        self.server.receiver._handle(self)

    do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _any


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Receiver:
    """A local HTTP server on 127.0.0.1 that records every request. Behaviours (set any time;
    counts run from the moment they are set):
      ok()                 answer 200
      fail(n, status=500)  answer `status` to the next n requests, then 200
      always(status)       answer `status` to every request
      hang_first(seconds)  the next request gets no answer for `seconds` (then the connection is
                           closed without one); later ones 200
      hang_forever()       every request is held unanswered until the receiver stops
    A receiver made with a port and not started yet is "down" (nothing listens there); start()
    later binds that same port."""

    def __init__(self, name="receiver", port=None):
        self.name = name
        self.port = port
        self._lock = threading.Lock()
        self._requests = []
        self._mode = ("ok",)
        self._count = 0
        self._stop = threading.Event()
        self._server = None
        self._thread = None

    # behaviours
    def ok(self):
        with self._lock:
            self._mode = ("ok",)

    def fail(self, n, status=500):
        with self._lock:
            self._mode, self._count = ("fail", status), n

    def always(self, status):
        with self._lock:
            self._mode = ("always", status)

    def hang_first(self, seconds):
        with self._lock:
            self._mode, self._count = ("hang", seconds), 1

    def hang_forever(self):
        with self._lock:
            self._mode = ("hang_forever",)

    def _decide(self):
        with self._lock:
            kind = self._mode[0]
            if kind == "fail" and self._count > 0:
                self._count -= 1
                return ("answer", self._mode[1])
            if kind == "always":
                return ("answer", self._mode[1])
            if kind == "hang" and self._count > 0:
                self._count -= 1
                return ("hang", self._mode[1])
            if kind == "hang_forever":
                return ("hang", None)
            return ("answer", 200)

    # life
    def start(self):
        self._stop.clear()
        self._server = _HTTPServer(("127.0.0.1", self.port or 0), _Handler)
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"receiver-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()  # releases held requests
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._thread.join(5)

    @property
    def running(self):
        return self._server is not None

    def url(self, path="/hook"):
        assert self.port, "the receiver has no port yet: start it or make it with one"
        return f"http://127.0.0.1:{self.port}{path}"

    # what it got
    def _handle(self, h):
        body = h._read_body()
        headers = {}
        for k, v in h.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        with self._lock:
            req = Request(len(self._requests) + 1, h.command, h.path, headers, body)
            self._requests.append(req)
        action, arg = self._decide()
        if action == "hang":
            self._stop.wait(arg if arg is not None else 3600)
            h.close_connection = True  # never answered
            return
        payload = b"ok" if 200 <= arg < 300 else b"failing on purpose"
        with self._lock:  # recorded before the answer leaves, so a sender that has it finds it here
            req.status = arg
            req.ok = 200 <= arg < 300
        try:
            h.send_response(arg)
            h.send_header("Content-Type", "text/plain")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except OSError as e:  # the sender gave up (timeout) before the answer: not answered
            with self._lock:
                req.status, req.ok, req.error = None, False, repr(e)
            h.close_connection = True

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def delivered(self):
        """The requests answered 2xx, in arrival order."""
        return [r for r in self.requests if r.ok]

    def wait_for(self, predicate, timeout, what):
        try:
            return wait_until(lambda: predicate(self), timeout, what, interval=0.02)
        except AssertionError as e:
            raise AssertionError(f"{self.name}: {e}; it got: {self.requests}") from None
