"""The readers' own check (no agentlancer): a correct message must pass both, and each kind of wrong
one must fail both for its own reason, so that a broken reader cannot pass for a correct server.

    python selftest.py --bootstrap HOST:PORT --go-reader PATH

Writes eight messages to a new single-partition topic (cloudevents.selftest.<random>, deleted
after), runs both readers on it with a schema folder of its own, and checks what they report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

HERE = Path(__file__).resolve().parent
TYPE = "selftest.thing"
SCHEMA_ID = "https://agentlancer.test/events/selftest.thing.schema.json"
STRUCTURED = [("content-type", b"application/cloudevents+json")]


def envelope(**over):
    ev = {
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": TYPE, "source": "selftest",
        "subject": "thing_1", "time": "2026-12-03T12:00:00.000Z", "datacontenttype": "application/json",
        "dataschema": SCHEMA_ID, "seq": 7, "audience": "agt_a agt_b", "requestid": "req_1",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "data": {"n": 1},
    }
    for k, v in over.items():
        if v is None:
            ev.pop(k, None)
        else:
            ev[k] = v
    return json.dumps(ev).encode()


# (what it is, key, headers, value, the substring each reader's reasons must contain; None: passes)
CASES = [
    ("correct", b"thing_1", STRUCTURED, envelope(), None),
    ("no content-type header (the old form)", b"thing_1", [], envelope(), "structured mode"),
    ("audience as a JSON array", b"thing_1", STRUCTURED, envelope(audience=["agt_a", "agt_b"]), "audience|invalid CloudEvents value"),
    ("key is not the subject", b"other", STRUCTURED, envelope(), "message key"),
    ("dataschema is not the schema's $id", b"thing_1", STRUCTURED, envelope(dataschema="https://x.test/s.json"), "dataschema"),
    ("seq is not an integer", b"thing_1", STRUCTURED, envelope(seq=1.5), "not an integer"),
    ("no id", b"thing_1", STRUCTURED, envelope(id=None), "id"),
    ("binary mode", b"thing_1", [("ce_specversion", b"1.0"), ("ce_id", b"x1"), ("ce_type", TYPE.encode()),
                                 ("ce_source", b"selftest"), ("content-type", b"application/json")],
     b'{"n":1}', "binary|structured mode"),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--go-reader", required=True)
    args = ap.parse_args()
    topic = f"cloudevents.selftest.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    try:
        producer = Producer({"bootstrap.servers": args.bootstrap})
        for _, key, headers, value, _ in CASES:
            producer.produce(topic, key=key, value=value, headers=headers)
        if producer.flush(30):
            print("selftest: messages not delivered", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as schemas:
            Path(schemas, f"{TYPE}.schema.json").write_text(json.dumps({"$id": SCHEMA_ID}))
            runs = {
                "go": [args.go_reader, "read", "-bootstrap", args.bootstrap, "-topics", topic,
                       "-schemas", schemas, "-idle", "2s"],
                "python": [sys.executable, str(HERE / "cereader.py"), "--bootstrap", args.bootstrap,
                           "--topics", topic, "--schemas", schemas, "--idle", "2"],
            }
            bad = 0
            for name, cmd in runs.items():
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                try:
                    summary = json.loads(out.stdout)
                except ValueError:
                    print(f"selftest: the {name} reader printed no summary (exit {out.returncode}): {out.stderr[-500:]}")
                    bad += 1
                    continue
                reasons: dict[int, list[str]] = {}
                for f in summary["failures"]:
                    reasons.setdefault(f["offset"], []).append(f["reason"])
                if summary["messages"] != len(CASES):
                    print(f"selftest: {name} read {summary['messages']} messages, want {len(CASES)}")
                    bad += 1
                if out.returncode != 1:
                    print(f"selftest: {name} exited {out.returncode}, want 1 (failures present)")
                    bad += 1
                for offset, (what, _, _, _, want) in enumerate(CASES):
                    got = reasons.get(offset, [])
                    if want is None:
                        ok = not got
                    else:
                        ok = any(any(w in r for w in want.split("|")) for r in got)
                    if not ok:
                        bad += 1
                    print(f"selftest: {name:6} {'ok  ' if ok else 'FAIL'} {what}: "
                          f"{'passes' if not got else '; '.join(got)[:160]}")
            return 1 if bad else 0
    finally:
        admin.delete_topics([topic])


if __name__ == "__main__":
    sys.exit(main())
