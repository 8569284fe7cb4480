"""Schemathesis hooks for docs/openapi.yaml against the embedded stack (loaded by run.sh).

Three agents signed up by seed.py: a provider (publishes services, quotes, locks, answers offers,
works the jobs), a requester (opens threads, makes offers, pays, creates jobs for the provider)
and an outsider who belongs to nothing. Each operation is sent with the key of the role that can
perform it, so the stateful phase can walk the document's links through a whole negotiation
(service → thread → quote → lock → offer → accept → contract) and a whole job. A key a link put
in the request (signup → me) is kept.

`non_member_is_refused` adds what `object_level_authorization` needs several identities for: a
member's successful read of a thread, offer or job is replayed with the outsider's key and must
be refused (403), never answered with the object.
"""

import datetime
import decimal
import math
import os
import re
import uuid

import requests
import schemathesis

KEYS = {
    "provider": os.environ["SCHEMATHESIS_PROVIDER_KEY"],
    "requester": os.environ["SCHEMATHESIS_REQUESTER_KEY"],
}
OUTSIDER_KEY = os.environ["SCHEMATHESIS_OUTSIDER_KEY"]

# Operations only the provider side can perform; every other authenticated operation is sent as
# the requester (client of the jobs it creates, buyer of the contracts).
PROVIDER_OPERATIONS = {
    "POST /api/agent/services",
    "GET /api/agent/services",
    "PATCH /api/agent/services/{id}",
    "POST /api/agent/services/{id}/deactivate",
    "POST /api/agent/threads/{id}/messages",
    "POST /api/agent/threads/{id}/lock-quote",
    "POST /api/agent/offers/{id}/respond",
    "POST /api/agents/providers/jobs/{id}/accept",
    "POST /api/agents/providers/jobs/{id}/negotiation",
    "POST /api/agents/providers/jobs/{id}/requirement",
    "POST /api/agents/providers/jobs/{id}/deliverable",
}

# Member-only reads: (path template) → the error a non-member gets.
MEMBER_READS = {
    "/api/agent/threads/{id}": "Not authorized to access this thread",
    "/api/agent/threads/{id}/tx-status": "Not authorized to access this thread",
    "/api/agent/offers/{id}": "Not authorized to access this offer",
    "/api/agents/jobs/{id}": "Not authorized to view this job",
}


@schemathesis.auth(refresh_interval=None)
class RoleKey:
    """The key of the role that performs the operation (see PROVIDER_OPERATIONS)."""

    def get(self, case, context):
        for name, value in (case.headers or {}).items():
            if name.lower() == "x-api-key":
                return value  # A link supplied the key (signup → me): it is the one to send.
        if context.operation.definition.raw.get("security") == []:
            return None  # A public operation: no key, as its callers send none.
        role = "provider" if context.operation.label in PROVIDER_OPERATIONS else "requester"
        return KEYS[role]

    def set(self, case, data, context):
        case.headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "x-api-key"}
        case.headers["x-api-key"] = data


# JSON Schema cannot say what "Decimal amounts" in docs/openapi.yaml says about numbers: a body's
# number must be one a binary double carries exactly as written (a 64-bit integer, or a literal
# that is the double's shortest form), and an amount sent as a number at most 15 significant and
# 18 fractional digits. Generated numbers are brought inside that before they are sent, toward
# zero so no bound of the schema is crossed; schemathesis then re-validates the case against the
# schema (a bound that is crossed stays crossed).
_FIFTEEN_DIGITS = decimal.Context(prec=15, rounding=decimal.ROUND_DOWN)
_ATTO = decimal.Decimal("1e-18")


def _exact_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    d = _FIFTEEN_DIGITS.create_decimal(decimal.Decimal(value) if isinstance(value, int) else decimal.Decimal(repr(value)))
    if d.as_tuple().exponent < -18:
        rounded = d.quantize(_ATTO, rounding=decimal.ROUND_DOWN)
        d = rounded if rounded != 0 else _ATTO.copy_sign(d)
    return float(max(min(d, decimal.Decimal("1e300")), decimal.Decimal("-1e300")))


def _exact_numbers(value):
    if isinstance(value, dict):
        return {key: _exact_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_exact_numbers(item) for item in value]
    return _exact_number(value)


# Nor what the clock says: a job's expiredAt must lie in the future and before the year 10000
# UTC. A generated one that has the documented form but not such an instant is moved to a
# month from now (one not of that form is left alone: it is what a negative case is made of).
_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$"
)
_LATEST = 253402300799.999  # 9999-12-31T23:59:59.999Z, in Unix seconds


def _days_from_civil(year, month, day):  # proleptic Gregorian, year 0 included
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _instant(text):
    """Unix seconds of an RFC 3339 date-time of the documented form, or None."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]:
        return None  # no such day: the server says so, and so does a negative case
    offset = (int(m.group(8) or 0) * 60 + int(m.group(9) or 0)) * 60 * (-1 if m.group(7) == "+" else 1)
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + min(second, 59) + offset


def _future_expiry(body):
    text = body.get("expiredAt")
    instant = _instant(text) if isinstance(text, str) else None
    now = datetime.datetime.now(datetime.timezone.utc)
    if instant is None or now.timestamp() + 300 < instant <= _LATEST:
        return body
    later = (now + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**body, "expiredAt": later}


def _close_upgraded(response, *args, **kwargs):
    # After a 101 the connection speaks WebSocket: back in the client's pool, the next request
    # sent on it would read the server's WebSocket frames as its answer.
    if response.status_code == 101:
        response.raw.close()


def _valid_idempotency_key(value):
    return isinstance(value, str) and 1 <= len(value) <= 255 and all("!" <= c <= "~" for c in value)


@schemathesis.hook
def before_call(ctx, case, kwargs):
    # A generated Idempotency-Key is often short ("0", "A") and so repeats across cases with other
    # bodies: the documented 422 idempotency_key_reused, not what the case means to test. A valid
    # one becomes unique per call; an invalid one is kept (400 invalid_idempotency_key).
    for name in list((case.headers or {}).keys()):
        if name.lower() == "idempotency-key" and _valid_idempotency_key(case.headers[name]):
            case.headers[name] = "st-" + uuid.uuid4().hex
    if isinstance(case.body, (dict, list)):
        body = _exact_numbers(case.body)
        if case.operation.label == "POST /api/agents/jobs" and isinstance(body, dict):
            body = _future_expiry(body)
        # The document's example receiver (agent.example.com) does not resolve here (422
        # url_unresolvable): pointed at a local port instead, so the stateful links reach the
        # endpoint's other operations. Generated URLs stay as they are.
        if case.operation.label == "POST /api/agent/webhooks" and isinstance(body, dict):
            url = body.get("url")
            if isinstance(url, str) and ".example.com" in url:
                body = {**body, "url": "http://127.0.0.1:9/schemathesis-hook"}
        if body != case.body:
            case.body = body
    if case.operation.label == "GET /ws/agent":
        kwargs["hooks"] = {"response": [_close_upgraded]}


@schemathesis.check
def non_member_is_refused(ctx, response, case):
    """A member's 200 read of a thread, offer or job, replayed by an outsider, must be a 403."""
    expected = MEMBER_READS.get(case.operation.path)
    if case.method.upper() != "GET" or expected is None or response.status_code != 200:
        return None
    probe = requests.get(response.request.url, headers={"x-api-key": OUTSIDER_KEY}, timeout=10)
    try:
        body = probe.json()
    except ValueError:
        body = None
    if probe.status_code != 403 or not isinstance(body, dict) or body.get("error") != expected:
        raise AssertionError(
            f"A non-member read {response.request.url}: expected 403 {expected!r}, "
            f"got {probe.status_code} {probe.text[:200]!r}"
        )
    return True
