#!/usr/bin/env bash
# A whole story through the HTTP API, so that events of many types reach Kafka: the README's
# walk-through (two signups, a service, a thread with a quote locked, an offer accepted, the
# contract paid, a job taken from request to completion with a payable memo), and besides it a
# service update and a deactivated service, a closed thread, a rejected offer, an approved memo and
# a key created then revoked.
#   tests/cloudevents/story.sh BASE      (prints one line per step; exit non-zero on any failure)
set -euo pipefail
BASE="$1"
J='content-type: application/json'
step() { printf 'story: %s\n' "$*"; }
post() { curl -fsS -X POST "$BASE$1" -H "x-api-key: $2" -H "$J" -d "${3:-"{}"}"; }
post204() {
  local code
  code="$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$BASE$1" -H "x-api-key: $2" -H "$J" -d "${3:-"{}"}")"
  [[ "$code" == 204 ]] || { echo "story: POST $1 answered $code, want 204" >&2; return 1; }
}
hex32() { openssl rand -hex 32; }
usdc=0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913
terms='{"deliverable":"README.fr.md","budget":{"amount":"25.00","token":"USDC","network":"base"},"timeline":"2 days","acceptance_criteria":"Complete, idiomatic French","revision_boundary":"Two rounds of corrections"}'

# Two agents (agent.registered ×2).
CLIENT=$(curl -fsS -X POST "$BASE/api/agent/signup" -H "$J" -d '{"name":"ce-client"}')
PROVIDER=$(curl -fsS -X POST "$BASE/api/agent/signup" -H "$J" -d '{"name":"ce-provider"}')
CK=$(jq -r .api_key <<<"$CLIENT"); PK=$(jq -r .api_key <<<"$PROVIDER"); PROVIDER_ID=$(jq -r .agent_id <<<"$PROVIDER")
step "agents $(jq -r .agent_id <<<"$CLIENT") $PROVIDER_ID"

# A key created then revoked (agent.key_created, agent.key_revoked).
NEW_KEY_ID=$(post /api/agent/keys "$CK" | jq -r .key_id)
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$BASE/api/agent/keys/$NEW_KEY_ID" -H "x-api-key: $CK")
[[ "$code" == 204 ]] || { echo "story: DELETE key answered $code" >&2; exit 1; }
step "key $NEW_KEY_ID created and revoked"

# Services: one published then updated, one published then deactivated.
service='{"title":"README translation","description":"Translate a README into French","deliverable":"README.fr.md","price":{"amount":"25.00","token":"USDC","network":"base"},"timeline":"2 days","tags":["translation","french"]}'
SERVICE_ID=$(post /api/agent/services "$PK" "$service" | jq -r .id)
curl -fsS -X PATCH "$BASE/api/agent/services/$SERVICE_ID" -H "x-api-key: $PK" -H "$J" -d '{"timeline":"3 days"}' >/dev/null
OTHER_ID=$(post /api/agent/services "$PK" "$service" | jq -r .id)
post "/api/agent/services/$OTHER_ID/deactivate" "$PK" >/dev/null
step "services $SERVICE_ID (updated) $OTHER_ID (deactivated)"

# A thread quoted, locked, offered, accepted; the contract paid (thread.*, offer.*, contract.*, job.*).
thread() {
  local id
  id=$(post /api/agent/threads "$CK" "{\"service_id\":\"$SERVICE_ID\",\"mode\":\"quick_quote\",\"message\":\"Can you translate our README by Friday?\"}" | jq -r .id)
  post "/api/agent/threads/$id/messages" "$PK" "{\"type\":\"quote\",\"body\":\"25 USDC, 2 days\",\"terms\":$terms}" >/dev/null
  post "/api/agent/threads/$id/lock-quote" "$PK" >/dev/null
  echo "$id"
}
THREAD_ID=$(thread)
OFFER_ID=$(post "/api/agent/threads/$THREAD_ID/create-offer" "$CK" | jq -r .id)
CONTRACT_ID=$(post "/api/agent/offers/$OFFER_ID/respond" "$PK" '{"action":"accept"}' | jq -r .contract_id)
status=$(post "/api/contracts/$CONTRACT_ID/payment" "$CK" "{\"tx_hash\":\"0x$(hex32)\"}" | jq -r .status)
step "thread $THREAD_ID offer $OFFER_ID accepted, contract $CONTRACT_ID $status"

# A second thread whose offer the provider rejects (offer.rejected), a third closed (thread.closed).
THREAD2=$(thread)
OFFER2=$(post "/api/agent/threads/$THREAD2/create-offer" "$CK" | jq -r .id)
post "/api/agent/offers/$OFFER2/respond" "$PK" '{"action":"reject","reason":"busy"}' >/dev/null
THREAD3=$(post /api/agent/threads "$CK" "{\"service_id\":\"$SERVICE_ID\",\"mode\":\"quick_quote\",\"message\":\"Never mind\"}" | jq -r .id)
post "/api/agent/threads/$THREAD3/close" "$CK" '{"reason":"changed my mind"}' >/dev/null
step "offer $OFFER2 rejected, thread $THREAD3 closed"

# A job from request to completion, with a payable memo approved (job.*).
JOB_ID=$(post /api/agents/jobs "$CK" "{\"providerId\":\"$PROVIDER_ID\",\"serviceRequirement\":\"Translate our README into French\",\"budget\":\"25.00\",\"tokenAddress\":\"$usdc\",\"clientOperationId\":\"ce-$RANDOM$RANDOM\"}" | jq -r .id)
post204 "/api/agents/providers/jobs/$JOB_ID/accept" "$PK" '{"accept":true}'
post "/api/agents/jobs/$JOB_ID/escrow" "$CK" "{\"txHash\":\"0x$(hex32)\"}" >/dev/null
post204 "/api/agents/providers/jobs/$JOB_ID/negotiation" "$PK" '{"accept":true,"content":"Deal: 2 days"}'
post204 "/api/agents/providers/jobs/$JOB_ID/requirement" "$PK" \
  "{\"content\":\"Glossary licence needed\",\"payableDetail\":{\"amount\":\"2.5\",\"tokenAddress\":\"$usdc\",\"recipient\":\"0x2222222222222222222222222222222222222222\"}}"
MEMO_ID=$(curl -fsS "$BASE/api/agents/jobs/$JOB_ID" -H "x-api-key: $CK" | jq -r '[.memos[] | select(.typeName == "PAYABLE_REQUEST")][0].id')
post204 "/api/agents/jobs/$JOB_ID/memos/$MEMO_ID/approve" "$CK" '{"approve":true}'
post204 "/api/agents/providers/jobs/$JOB_ID/deliverable" "$PK" '{"deliverable":{"type":"url","value":"https://example.com/README.fr.md"}}'
post204 "/api/agents/jobs/$JOB_ID/evaluate" "$CK" '{"accept":true}'
phase=$(curl -fsS "$BASE/api/agents/jobs/$JOB_ID" -H "x-api-key: $CK" | jq -r .phaseName)
[[ "$phase" == COMPLETED ]] || { echo "story: job $JOB_ID is $phase, want COMPLETED" >&2; exit 1; }
step "job $JOB_ID $phase (memo $MEMO_ID approved)"
