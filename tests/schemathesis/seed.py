"""Signs up the agents hooks.py acts as and leaves the stack holding one of each state a flow
goes through, so schemathesis finds real ids in the lists it reads (its fuzzing phase draws path
ids from earlier responses) and not only made-up ones that are 404:

  - a service of the provider, and on it (opened by the requester) a thread with an accepted
    offer and its contract, one with an open offer, one with a locked quote, one negotiating;
  - a job of the requester for the provider, and one with escrow verified and a payable memo.

Prints the environment run.sh exports (SCHEMATHESIS_*_KEY=...).
  seed.py BASE_URL
"""

import sys
import time

import requests

BASE = sys.argv[1].rstrip("/")
TOKEN = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
QUOTE = {
    "type": "quote",
    "body": "Here is my quote",
    "terms": {
        "deliverable": "A markdown document",
        "budget": {"amount": "25", "token": "USDC", "network": "base"},
        "timeline": "3 days",
        "acceptance_criteria": "Covers the brief",
        "revision_boundary": "Two rounds",
    },
}


def call(method, path, key=None, body=None, want=(200, 201, 204), attempts=1):
    headers = {"x-api-key": key} if key else {}
    for attempt in range(attempts):
        r = requests.request(method, BASE + path, json=body, headers=headers, timeout=30)
        if r.status_code in want:
            return r.json() if r.content else None
        time.sleep(0.5)
    sys.exit(f"seed: {method} {path} -> {r.status_code} {r.text[:300]}")


def signup(name):
    agent = call("POST", "/api/agent/signup", body={"name": name})
    return agent["api_key"], agent["agent_id"]


def thread(service_id, requester, provider, stage):
    t = call("POST", "/api/agent/threads", requester,
             {"service_id": service_id, "mode": "quick_quote", "message": f"Seeded thread ({stage})"})
    if stage == "negotiating":
        return
    call("POST", f"/api/agent/threads/{t['id']}/messages", provider, QUOTE)
    call("POST", f"/api/agent/threads/{t['id']}/lock-quote", provider)
    if stage == "quote_locked":
        return
    # offer-service learns of the lock from thread-service's events.
    offer = call("POST", f"/api/agent/threads/{t['id']}/create-offer", requester, want=(201,), attempts=20)
    if stage == "offer_accepted":
        call("POST", f"/api/agent/offers/{offer['id']}/respond", provider, {"action": "accept"})


provider_key, provider_id = signup("schemathesis-provider")
requester_key, _ = signup("schemathesis-requester")
outsider_key, _ = signup("schemathesis-outsider")

service = call("POST", "/api/agent/services", provider_key, {
    "title": "Seeded service", "description": "For schemathesis", "deliverable": "A document",
    "price": {"amount": "25", "token": "USDC", "network": "base"}, "timeline": "3 days", "tags": ["seed"]})
for stage in ("offer_accepted", "offer_open", "quote_locked", "negotiating"):
    thread(service["id"], requester_key, provider_key, stage)

# job-service learns of agents from thread-service's events.
job = {"providerId": provider_id, "serviceRequirement": "Seeded job", "budget": "1", "tokenAddress": TOKEN}
call("POST", "/api/agents/jobs", requester_key, job, want=(201,), attempts=60)
paid = call("POST", "/api/agents/jobs", requester_key, job, want=(201,))
call("POST", f"/api/agents/jobs/{paid['id']}/escrow", requester_key, {"txHash": "0x" + "ab" * 32})
call("POST", f"/api/agents/providers/jobs/{paid['id']}/accept", provider_key, {"accept": True})
call("POST", f"/api/agents/providers/jobs/{paid['id']}/requirement", provider_key, {
    "content": "Please pay the fee", "payableDetail": {"amount": "5", "tokenAddress": TOKEN, "recipient": "0x" + "11" * 20}})

print(f"SCHEMATHESIS_PROVIDER_KEY={provider_key}")
print(f"SCHEMATHESIS_REQUESTER_KEY={requester_key}")
print(f"SCHEMATHESIS_OUTSIDER_KEY={outsider_key}")
