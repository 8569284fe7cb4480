"""Reads agentlancer's events from a real Kafka broker with the CloudEvents Python SDK.

The `cloudevents` package (PyPI; its Kafka protocol binding, cloudevents.core.bindings.kafka) turns
each message into an event; confluent-kafka (PyPI) reads the topics. Each message is checked
against the wire contract (docs/events, CloudEvents 1.0 Kafka binding, structured mode).

    python cereader.py --bootstrap HOST:PORT --schemas docs/events [--topics a,b]
                       [--from offsets.json] [--idle 3]

--from takes the start offsets printed by the Go reader's `watermarks` ({"topic": {"0": n}});
without it every partition is read from its oldest offset. Each partition is read up to its end as
it is when the read starts. Prints a JSON summary like the Go reader's; exit 1 on any failure or
when no event was read, 2 on a usage or broker error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

DEFAULT_TOPICS = ("agentlancer.agents.v1,agentlancer.services.v1,agentlancer.threads.v1,"
                  "agentlancer.offers.v1,agentlancer.contracts.v1,agentlancer.jobs.v1")
STRUCTURED = "application/cloudevents+json"
CONTEXT_ATTRIBUTES = {"specversion", "id", "type", "source", "subject", "time", "datacontenttype",
                      "dataschema", "data", "data_base64"}
# The contract's extensions: name -> required. Any other extension is only type-checked.
CONTRACT_EXTENSIONS = {"seq": True, "audience": True, "requestid": True, "traceparent": False}
# from_structured adds the message key as this extension (the binding's partitionkey); not ours.
PARTITIONKEY = ce_kafka.PARTITIONKEY_ATTR
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
INT32 = (-(2 ** 31), 2 ** 31 - 1)
KIND = re.compile(r"'[^']*'|\[[^\]]*\]|\b(?:agt|thr|svc|off|ctr|key)_[a-z0-9]{16,}\b|(?<=docs/events/)[a-z_.]+(?=\.schema\.json)")


def schema_ids(folder: Path) -> dict[str, str]:
    files = sorted(folder.glob("*.schema.json"))
    if not files:
        sys.exit(f"cereader.py: no *.schema.json in {folder}")
    return {f.name[: -len(".schema.json")]: json.loads(f.read_text()).get("$id", "") for f in files}


def ce_type_problem(value) -> str:
    """'' when a JSON extension value maps to a CloudEvents type (String, Boolean, Integer)."""
    if value is None or isinstance(value, (str, bool)):
        return ""
    if isinstance(value, int):
        return "" if INT32[0] <= value <= INT32[1] else f"{value} is outside the CloudEvents Integer range"
    if isinstance(value, float):
        return f"{value!r} is not an integer"
    kind = "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    return f"{kind} ({json.dumps(value)[:80]}), not a CloudEvents type"


def check(msg, ids: dict[str, str]) -> tuple[list[str], str, list[str]]:
    """The reasons one Kafka message fails the contract (none: it passes), its type, its extensions."""
    reasons: list[str] = []
    headers = {k.lower(): (v or b"") for k, v in (msg.headers() or [])}
    km = ce_kafka.KafkaMessage(headers=headers, key=msg.key(), value=msg.value() or b"")
    raw_type = ""
    try:
        raw = json.loads(km.value)
        raw_type = raw.get("type", "") if isinstance(raw, dict) else ""
    except ValueError:
        raw = None

    # The content mode comes from the content-type header (the Kafka protocol binding, 3.1/3.2).
    ct = headers.get("content-type", b"").decode("utf-8", "replace")
    media = ct.split(";", 1)[0].strip().lower()
    if media.startswith("application/cloudevents"):
        if media != STRUCTURED:
            reasons.append(f"content-type header {ct!r}, want {STRUCTURED!r}")
        reader = ce_kafka.from_structured
    elif any(k.startswith(ce_kafka.CE_PREFIX) for k in headers):
        reasons.append(f"binary mode (ce_ headers, content-type {ct!r}), want structured mode")
        reader = ce_kafka.from_binary
    else:
        reasons.append(f"not structured mode: content-type header {ct!r}, want {STRUCTURED!r} "
                       f"(headers: {sorted(headers) or 'none'})")
        reader = ce_kafka.from_structured  # still try the value, to report what else is wrong
    try:
        event = reader(km, JSONFormat(), CloudEvent)
    except Exception as e:  # the SDK's validation errors and JSON errors alike
        reasons.append(f"the SDK cannot convert the message: {type(e).__name__}: {e}")
        return reasons, raw_type, []

    attrs = event.get_attributes()
    etype = event.get_type()
    # The SDK fills in a missing specversion, id and time (a new UUID, now): they must be on the wire.
    if media.startswith("application/cloudevents") or not any(k.startswith(ce_kafka.CE_PREFIX) for k in headers):
        for name in ("specversion", "id", "time"):
            if not isinstance(raw, dict) or name not in raw:
                reasons.append(f"no {name} in the message (the SDK made one up)")
    if event.get_specversion() != "1.0":
        reasons.append(f"specversion {event.get_specversion()!r}, want 1.0")
    if not isinstance(event.get_time(), datetime):
        reasons.append("no time")
    subject = event.get_subject()
    if not subject:
        reasons.append("no subject")
    key = msg.key().decode("utf-8", "replace") if msg.key() is not None else None
    if key != subject:
        reasons.append(f"message key {key!r} != subject {subject!r}")
    if event.get_datacontenttype() != "application/json":
        reasons.append(f"datacontenttype {event.get_datacontenttype()!r}, want application/json")
    if not event.get_dataschema():
        reasons.append("no dataschema")
    if etype not in ids:
        reasons.append(f"no docs/events/{etype}.schema.json")
    elif not ids[etype]:
        reasons.append(f"docs/events/{etype}.schema.json has no $id")
    elif event.get_dataschema() and event.get_dataschema() != ids[etype]:
        reasons.append(f"dataschema {event.get_dataschema()!r} != $id {ids[etype]!r} of docs/events/{etype}.schema.json")
    if not isinstance(event.get_data(), dict):
        reasons.append(f"data is {type(event.get_data()).__name__}, not a JSON object")

    exts = sorted(k for k in attrs if k not in CONTEXT_ATTRIBUTES and k != PARTITIONKEY)
    for name in exts:
        why = ce_type_problem(attrs[name])
        if why:
            reasons.append(f"extension {name}: {why}")
    for name, required in CONTRACT_EXTENSIONS.items():
        if name not in attrs:
            if required:
                reasons.append(f"extension {name} missing")
            continue
        v = attrs[name]
        if name == "seq" and (isinstance(v, bool) or not isinstance(v, int)):
            reasons.append(f"seq is {type(v).__name__}, want an Integer")
        elif name == "audience":
            if not isinstance(v, str):
                reasons.append(f"audience is {type(v).__name__}, want a String (space-separated agent ids)")
            elif v.strip() != v or "  " in v:
                reasons.append(f"audience {v!r} is not single-space separated")
        elif name == "requestid" and not isinstance(v, str):
            reasons.append(f"requestid is {type(v).__name__}, want a String")
        elif name == "traceparent" and not (isinstance(v, str) and TRACEPARENT.match(v)):
            reasons.append(f"traceparent {v!r} is not a W3C traceparent")
    return reasons, etype, exts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--schemas", required=True, type=Path)
    ap.add_argument("--topics", default=DEFAULT_TOPICS)
    ap.add_argument("--from", dest="start", type=Path)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds without a message that end the read")
    args = ap.parse_args()
    started = time.monotonic()
    ids = schema_ids(args.schemas)
    start_offsets = json.loads(args.start.read_text()) if args.start else {}
    topics = [t.strip() for t in args.topics.split(",") if t.strip()]

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "cloudevents-sdk-python-check",  # no offsets are committed: assign() only
        "enable.auto.commit": False,
        "isolation.level": "read_committed",  # what the services' consumers see
        "client.id": "cloudevents-sdk-python-check",
    })
    try:
        meta = consumer.list_topics(timeout=30)
        assignment, ends = [], {}
        for topic in topics:
            if topic not in meta.topics or meta.topics[topic].error is not None:
                print(f"cereader.py: topic {topic} not found", file=sys.stderr)
                return 2
            for p in sorted(meta.topics[topic].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                begin = max(low, int(start_offsets.get(topic, {}).get(str(p), low)))
                if begin < high:
                    assignment.append(TopicPartition(topic, p, begin))
                    ends[(topic, p)] = high
        consumer.assign(assignment)

        types, per_topic, ext_counts = Counter(), Counter(), Counter()
        failures, failure_count, messages, events = [], 0, 0, 0
        kinds = Counter()  # each reason with its quoted values and lists elided
        read_counts = Counter()
        pending = set(ends)
        last_progress = time.monotonic()
        while pending and time.monotonic() - last_progress < args.idle:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                failure_count += 1
                kinds["consumer error"] += 1
                if len(failures) < 60:
                    failures.append({"topic": msg.topic(), "partition": msg.partition(), "offset": -1,
                                     "reason": f"consumer: {msg.error()}"})
                continue
            last_progress = time.monotonic()
            tp = (msg.topic(), msg.partition())
            messages += 1
            per_topic[msg.topic()] += 1
            read_counts[tp] += 1
            reasons, etype, exts = check(msg, ids)
            if etype:
                types[etype] += 1
            ext_counts.update(exts)
            if not reasons:
                events += 1
            for r in reasons:
                failure_count += 1
                kinds[KIND.sub("…", r)] += 1
                if len(failures) < 60:
                    failures.append({"topic": msg.topic(), "partition": msg.partition(),
                                     "offset": msg.offset(), "type": etype, "reason": r})
            if msg.offset() + 1 >= ends[tp]:
                pending.discard(tp)
    except KafkaException as e:
        print(f"cereader.py: {e}", file=sys.stderr)
        return 2
    finally:
        consumer.close()

    import cloudevents
    import confluent_kafka
    summary = {
        "sdk": f"cloudevents {cloudevents.__version__} (cloudevents.core.bindings.kafka) + "
               f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})",
        "messages": messages,
        "events": events,
        "types": dict(sorted(types.items())),
        "distinct_types": len(types),
        "topics": dict(sorted(per_topic.items())),
        "extensions": dict(sorted(ext_counts.items())),
        "failure_count": failure_count,
        "failure_kinds": dict(kinds.most_common()),
        "failures": sorted(failures, key=lambda f: (f["topic"], f["partition"], f["offset"])),
        "partitions_read": {t: {str(p): read_counts[(t, p)] for (tt, p) in sorted(ends) if tt == t}
                            for t in topics},
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(summary, indent=2))
    return 1 if failure_count or events == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
