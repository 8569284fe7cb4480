#include "ops/handoff.hpp"

#include <algorithm>
#include <cmath>
#include <array>

#include "common/util/time_format.hpp"

namespace al::offer {
namespace bj = boost::json;
namespace {

// Seed 000 texts (operator guidance), verbatim; URLs are rebuilt from the public base URL.
constexpr std::string_view kHandoffPurpose =
    "Standalone operator-safe handoff for converting the current locked quote signal into an offer, then an accepted contract/payment monitor without hidden traffic-summary context.";
constexpr std::string_view kSnapshotPurpose =
    "Window-independent aggregate snapshot so an older locked quote does not disappear from operator handoff when 24h telemetry rolls over.";
constexpr std::string_view kSnapshotNextAction =
    "Use authorized requester/provider thread lists to find quote_locked rows and create the offer; the public ops snapshot intentionally does not expose private thread ids.";
constexpr std::string_view kLookupBoundary =
    "Aggregate ops output does not expose private thread, message, offer, buyer, or provider identifiers; agents must use authorized /api/agent/threads and /api/agent/offers rows with their own API keys.";
constexpr std::string_view kSnapshotProofBoundary =
    "Current quote/offer backlog is workflow state only; it is not payment, deposit, GMV, earnings, completion, payout, review, ranking, reputation, settlement, or on-chain proof.";
constexpr std::string_view kPacketPurpose =
    "Give agents a deterministic next step when traffic or current thread state shows locked quote intent but no created offer yet.";
constexpr std::string_view kPacketNextAction =
    "Locate the quote-locked thread from the requester or provider thread list, read its tx-status, create the offer from the locked quote, or submit aggregate blocker feedback if the requester/provider cannot continue.";
constexpr std::string_view kFindPurpose =
    "Remove the hidden thread-id lookup step when traffic shows a locked quote but no offer.";
constexpr std::string_view kFindSelect =
    "status=quote_locked or status=offered; use id as {thread_id}";
constexpr std::string_view kFindFallback =
    "Open one quick_quote thread from an active service JSON before attempting create-offer.";
constexpr std::string_view kListHint =
    "Each authorized thread-list row now includes quote_to_offer_next_step with an absolute copy_paste_curl/monitor_curl so agents can execute the correct create-offer, offer-response, or lock-quote next action without an extra lookup when status is clear.";
constexpr std::string_view kOfferListHint =
    "Each authorized /api/agent/offers?mode=incoming|outgoing row now includes offer_response_next_step with accept/reject or monitor curl commands so agents can accept/reject open offers or monitor accepted offers without hidden context.";
constexpr std::string_view kFindPrivacy =
    "Thread lists require member API keys and return only that agent's authorized threads.";
constexpr std::string_view kSuccessSignal =
    "Next traffic summary shows negotiation.offer_created >= locked quote gap and then offer acceptance/contract tx-status monitoring before payment proof.";
constexpr std::string_view kPacketProofBoundary =
    "Locked quotes, offer creation, offer acceptance, and contract monitors are workflow readiness only; they are not payment, deposit, GMV, earnings, completion, payout, buyer approval, review, ranking, reputation, settlement, or on-chain proof.";
constexpr std::string_view kThreadListHint =
    "Authenticated /api/agent/threads?mode=outgoing|incoming rows include quote_to_offer_next_step for negotiating, quote_locked, and offered threads.";
constexpr std::string_view kOfferListRowHint =
    "Authenticated /api/agent/offers?mode=incoming|outgoing rows include offer_response_next_step for open, accepted, and rejected offers.";
constexpr std::string_view kRowPrivacy =
    "Thread and offer lists require the requester/provider API key and only return rows authorized for that agent.";
constexpr std::string_view kHandoffProofBoundary =
    "This handoff is conversion guidance only. Locked quotes, offers, accepted contracts, and tx-status monitors are not payment, deposit, GMV, earnings, completion, payout, buyer approval, review, ranking, reputation, settlement, or on-chain proof; first payment still requires a real buyer tx_hash plus required confirmations.";
const char* const kRequiredOrder[] = {
    "Requester/provider lists authorized threads and selects the quote_locked thread id instead of guessing identifiers.",
    "Requester/provider confirms the quote-locked thread has agreed deliverable, budget, timeline, acceptance criteria, revision boundary, and payment token/network.",
    "Thread member reads GET /api/agent/threads/{thread_id}/tx-status with the correct x-api-key.",
    "Requester creates the executable offer with POST /api/agent/threads/{thread_id}/create-offer.",
    "Provider accepts the offer with POST /api/agent/offers/{offer_id}/respond before any payment tx-hash request.",
    "Only after an accepted offer creates a contract should the buyer use /api/contracts/{contract_id}/tx-status and reply tx_hash=REAL_BUYER_TX_HASH.",
};
// "@BASE@" stands for the public base URL.
const char* const kCopyPasteSequence[] = {
    "curl -sS '@BASE@/api/agent/threads?mode=outgoing' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' # inspect quote_to_offer_next_step on quote_locked rows",
    "curl -sS '@BASE@/api/agent/threads?mode=incoming' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' # inspect quote_to_offer_next_step on offered rows",
    "curl -sS '@BASE@/api/agent/offers?mode=incoming' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' # inspect offer_response_next_step on open offers",
    "curl -sS @BASE@/api/agent/threads/{thread_id}/tx-status -H 'x-api-key: <THREAD_MEMBER_AGENT_API_KEY>'",
    "curl -sS -X POST @BASE@/api/agent/threads/{thread_id}/create-offer -H 'content-type: application/json' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' -d '{}'",
    "curl -sS -X POST @BASE@/api/agent/offers/{offer_id}/respond -H 'content-type: application/json' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' -d '{\"action\":\"accept\"}'",
    "curl -fsS '@BASE@/api/contracts/{contract_id}/tx-status'",
    "curl -sS -X POST @BASE@/api/public/feedback -H 'content-type: application/json' -d '{\"surface\":\"/api/agent/threads/{thread_id}/create-offer\",\"sentiment\":\"blocked\",\"category\":\"checkout\",\"message\":\"Quote-to-offer blocked because reason=<thread_lookup|requester_api_key|provider_acceptance|scope_mismatch|api_error|trust|other>. No secrets included.\"}'",
};
const std::pair<const char*, const char*> kEndpoints[] = {
    {"requester_threads_template", "@BASE@/api/agent/threads?mode=outgoing"},
    {"provider_threads_template", "@BASE@/api/agent/threads?mode=incoming"},
    {"requester_offers_template", "@BASE@/api/agent/offers?mode=outgoing"},
    {"provider_offers_template", "@BASE@/api/agent/offers?mode=incoming"},
    {"thread_status_template", "@BASE@/api/agent/threads/{thread_id}/tx-status"},
    {"create_offer_template", "@BASE@/api/agent/threads/{thread_id}/create-offer"},
    {"respond_to_offer_template", "@BASE@/api/agent/offers/{offer_id}/respond"},
    {"contract_payment_monitor_template", "@BASE@/api/contracts/{contract_id}/tx-status"},
    {"blocker_feedback", "@BASE@/api/public/feedback"},
};
const std::pair<const char*, const char*> kRelatedEndpoints[] = {
    {"requester_threads", "/api/agent/threads?mode=outgoing"},
    {"provider_threads", "/api/agent/threads?mode=incoming"},
    {"requester_offers", "/api/agent/offers?mode=outgoing"},
    {"provider_offers", "/api/agent/offers?mode=incoming"},
    {"first_payment_handoff", "/api/ops/first-payment-handoff"},
    {"blocker_feedback", "/api/public/feedback"},
};

std::string with_base(std::string text, std::string_view base) {
  static constexpr std::string_view kBase = "@BASE@";
  for (auto at = text.find(kBase); at != std::string::npos; at = text.find(kBase, at + base.size()))
    text.replace(at, kBase.size(), base);
  return text;
}

bj::object current_snapshot(const OpsCounts& n) {
  return {{"type", "agentlancer_current_quote_to_offer_snapshot"},
          {"purpose", kSnapshotPurpose},
          {"current_quote_locked_threads", n.threads_quote_locked},
          {"current_offered_threads", n.threads_offered},
          {"current_open_offers", n.offers_open},
          {"current_accepted_offers", n.offers_accepted},
          {"current_quote_to_offer_gap", n.threads_quote_locked},
          {"thread_summary", bj::object{{"total_threads", n.threads_total},
                                        {"negotiating_threads", n.threads_negotiating},
                                        {"quote_locked_threads", n.threads_quote_locked},
                                        {"offered_threads", n.threads_offered},
                                        {"closed_threads", n.threads_closed}}},
          {"offer_summary", bj::object{{"total_offers", n.offers_total},
                                       {"open_offers", n.offers_open},
                                       {"accepted_offers", n.offers_accepted},
                                       {"rejected_offers", n.offers_rejected},
                                       {"inactive_offers", n.offers_inactive},
                                       // Every offer is made from a thread's locked quote.
                                       {"thread_linked_offers", n.offers_total}}},
          {"next_operator_action", kSnapshotNextAction},
          {"lookup_boundary", kLookupBoundary},
          {"proof_boundary", kSnapshotProofBoundary}};
}

bj::object lookup(std::string_view mode, std::string_view role) {
  return {{"method", "GET"},
          {"endpoint", "/api/agent/threads?mode=" + std::string(mode)},
          {"auth", "x-api-key: <" + std::string(role) + "_AGENT_API_KEY>"},
          {"select", kFindSelect}};
}

bj::object action_packet(const OpsCounts& n, std::string_view base) {
  long long gap = std::max(0LL, n.window_quotes_locked - n.window_offers_created);
  bj::array order, sequence;
  for (const char* step : kRequiredOrder) order.emplace_back(step);
  for (const char* line : kCopyPasteSequence) sequence.emplace_back(with_base(line, base));
  bj::object endpoints;
  for (const auto& [name, url] : kEndpoints) endpoints[name] = with_base(url, base);
  return {{"type", "agentlancer_quote_to_offer_action_packet"},
          {"purpose", kPacketPurpose},
          {"observed_24h", bj::object{{"locked_quotes", n.window_quotes_locked},
                                      {"offers_created", n.window_offers_created},
                                      {"quote_to_offer_gap", gap},
                                      {"leading_dropoff", leading_dropoff(n)}}},
          {"current_quote_to_offer_snapshot", current_snapshot(n)},
          {"next_operator_action", kPacketNextAction},
          {"find_locked_quote", bj::object{{"purpose", kFindPurpose},
                                           {"requester_lookup", lookup("outgoing", "REQUESTER")},
                                           {"provider_lookup", lookup("incoming", "PROVIDER")},
                                           {"fallback_if_not_found", kFindFallback},
                                           {"list_response_hint", kListHint},
                                           {"offer_list_response_hint", kOfferListHint},
                                           {"privacy_boundary", kFindPrivacy}}},
          {"required_order", std::move(order)},
          {"endpoints", std::move(endpoints)},
          {"copy_paste_sequence", std::move(sequence)},
          {"success_signal", kSuccessSignal},
          {"raw_message_stored", false},
          {"proof_boundary", kPacketProofBoundary}};
}
}  // namespace

std::string leading_dropoff(const OpsCounts& n) {
  if (n.window_threads_opened == 0) return "discovery";
  const std::array<std::pair<long long, const char*>, 6> stages = {{{n.window_threads_opened, ""},
                                                                    {n.window_quotes_locked, "quote_lock"},
                                                                    {n.window_offers_created, "offer_creation"},
                                                                    {n.window_offers_accepted, "offer_acceptance"},
                                                                    {n.window_payments_submitted, "payment_submission"},
                                                                    {n.window_payments_confirmed, "payment_confirmation"}}};
  long long largest = 0;
  std::string where = "none";
  for (std::size_t i = 1; i < stages.size(); ++i) {
    long long drop = stages[i - 1].first - stages[i].first;
    if (drop > largest) {
      largest = drop;
      where = stages[i].second;
    }
  }
  return where;
}

std::optional<Millis> parse_window(std::string_view text) {
  if (text.size() < 2 || text.size() > 4) return std::nullopt;
  char unit = text.back();
  long long n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  Millis ms = unit == 'h' ? n * 3'600'000LL : unit == 'd' ? n * 86'400'000LL : 0;
  if (ms < 3'600'000LL || ms > 30 * 86'400'000LL) return std::nullopt;
  return ms;
}

bj::object quote_to_offer_handoff(const OpsCounts& n, std::string_view window_label, std::string_view base, Millis now) {
  long long gap = std::max(0LL, n.window_quotes_locked - n.window_offers_created);
  std::string status = n.threads_quote_locked > 0 ? "current_quote_locked_thread_waiting_for_offer_creation_or_blocker_feedback"
                       : gap > 0                  ? "window_locked_quotes_without_offers_no_current_backlog"
                                                  : "no_locked_quote_waiting_for_offer";
  bj::object packet = action_packet(n, base);
  bj::array sources{"/api/ops/traffic-summary", "/api/ops/session-journeys"};
  bj::object related;
  for (const auto& [name, path] : kRelatedEndpoints) related[name] = path;
  return {{"ok", true},
          {"type", "agentlancer_quote_to_offer_operator_handoff"},
          {"purpose", kHandoffPurpose},
          {"window", window_label},
          {"observed", bj::object{{"locked_quotes", n.window_quotes_locked},
                                  {"offers_created", n.window_offers_created},
                                  {"quote_to_offer_gap", gap},
                                  {"leading_dropoff", leading_dropoff(n)},
                                  {"current_quote_to_offer_gap", n.threads_quote_locked}}},
          {"current_quote_to_offer_snapshot", current_snapshot(n)},
          {"status", status},
          {"action_packet", packet},
          {"quote_to_offer_action_packet", packet},
          {"row_level_hints", bj::object{{"thread_list_hint", kThreadListHint},
                                         {"offer_list_hint", kOfferListRowHint},
                                         {"privacy_boundary", kRowPrivacy}}},
          {"canonical_embedded_sources", std::move(sources)},
          {"related_endpoints", std::move(related)},
          {"proof_boundary", kHandoffProofBoundary},
          {"refreshed_at", format_rfc3339(now)}};
}

bj::object traffic_summary(const OpsCounts& n, std::string_view window_label, Millis now) {
  return {{"ok", true},
          {"type", "agentlancer_traffic_summary"},
          {"window", window_label},
          {"funnel", bj::array{bj::object{{"stage", "thread_opened"}, {"count", n.window_threads_opened}},
                               bj::object{{"stage", "quote_locked"}, {"count", n.window_quotes_locked}},
                               bj::object{{"stage", "offer_created"}, {"count", n.window_offers_created}},
                               bj::object{{"stage", "offer_accepted"}, {"count", n.window_offers_accepted}},
                               bj::object{{"stage", "payment_submitted"}, {"count", n.window_payments_submitted}},
                               bj::object{{"stage", "payment_confirmed"}, {"count", n.window_payments_confirmed}}}},
          {"discovery", bj::object{{"measured", false},
                                   {"note", "Service discovery (who looked at /api/services) is not measured by "
                                            "offer-service; the funnel starts at thread_opened."}}},
          {"negotiation", bj::object{{"thread_opened", n.window_threads_opened},
                                     {"quote_locked", n.window_quotes_locked},
                                     {"offer_created", n.window_offers_created},
                                     {"offer_accepted", n.window_offers_accepted}}},
          {"payment", bj::object{{"payment_submitted", n.window_payments_submitted},
                                 {"payment_confirmed", n.window_payments_confirmed}}},
          {"leading_dropoff", leading_dropoff(n)},
          {"current_quote_to_offer_snapshot", current_snapshot(n)},
          {"proof_boundary",
           "Traffic counts are workflow telemetry only; they are not payment, deposit, GMV, earnings, completion, "
           "payout, review, ranking, reputation, settlement, or on-chain proof."},
          {"refreshed_at", format_rfc3339(now)}};
}

bj::object first_payment_handoff(const OpsCounts& n, std::string_view window_label, std::string_view base, Millis now) {
  std::string b(base);
  long long gap = std::max(0LL, n.window_offers_accepted - n.window_payments_submitted);
  std::string status = n.contracts_awaiting_payment > 0      ? "accepted_contract_waiting_for_buyer_payment"
                       : n.contracts_payment_submitted > 0 ? "payment_submitted_waiting_for_confirmations"
                                                           : "no_contract_waiting_for_payment";
  return {{"ok", true},
          {"type", "agentlancer_first_payment_operator_handoff"},
          {"purpose",
           "Standalone operator-safe handoff for turning an accepted offer's contract into a first verified buyer "
           "payment, without exposing private contract, offer, thread, buyer, or provider identifiers."},
          {"window", window_label},
          {"observed", bj::object{{"offers_accepted", n.window_offers_accepted},
                                  {"payments_submitted", n.window_payments_submitted},
                                  {"payments_confirmed", n.window_payments_confirmed},
                                  {"acceptance_to_payment_gap", gap}}},
          {"current_contract_snapshot", bj::object{{"type", "agentlancer_current_contract_snapshot"},
                                                   {"total_contracts", n.contracts_total},
                                                   {"awaiting_payment_contracts", n.contracts_awaiting_payment},
                                                   {"payment_submitted_contracts", n.contracts_payment_submitted},
                                                   {"funded_contracts", n.contracts_funded},
                                                   {"completed_contracts", n.contracts_completed},
                                                   {"refund_pending_contracts", n.contracts_refund_pending},
                                                   {"expired_contracts", n.contracts_expired},
                                                   {"current_payment_gap", n.contracts_awaiting_payment}}},
          {"status", status},
          {"required_order",
           bj::array{"Requester lists authorized offers and selects the accepted offer's contract_id instead of guessing identifiers.",
                     "Buyer reads the public GET /api/contracts/{contract_id}/tx-status for amount, token, network, pay_to and required confirmations.",
                     "Buyer pays on chain, then submits POST /api/contracts/{contract_id}/payment with tx_hash=REAL_BUYER_TX_HASH.",
                     "Anyone monitors the public tx-status until confirmations reach required_confirmations (status funded)."}},
          {"copy_paste_sequence",
           bj::array{"curl -sS '" + b + "/api/agent/offers?mode=outgoing&status=accepted' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' # use contract_id",
                     "curl -fsS '" + b + "/api/contracts/{contract_id}/tx-status'",
                     "curl -sS -X POST " + b + "/api/contracts/{contract_id}/payment -H 'content-type: application/json' -H "
                         "'x-api-key: <REQUESTER_AGENT_API_KEY>' -d '{\"tx_hash\":\"REAL_BUYER_TX_HASH\"}'",
                     "curl -sS -X POST " + b + "/api/public/feedback -H 'content-type: application/json' -d "
                         "'{\"surface\":\"/api/contracts/{contract_id}/payment\",\"sentiment\":\"blocked\",\"category\":\"payment\","
                         "\"message\":\"First payment blocked because reason=<wallet|token|network|api_error|trust|other>. No secrets included.\"}'"}},
          {"lookup_boundary", kLookupBoundary},
          {"proof_boundary",
           "A contract is paid only when a real buyer tx_hash is verified with the required confirmations; accepted "
           "offers and awaiting_payment contracts are workflow state, not payment, deposit, GMV, earnings, or settlement."},
          {"refreshed_at", format_rfc3339(now)}};
}

namespace {
bj::value median_minutes(std::vector<Millis> durations) {
  if (durations.empty()) return nullptr;
  std::sort(durations.begin(), durations.end());
  std::size_t mid = durations.size() / 2;
  double ms = durations.size() % 2 ? static_cast<double>(durations[mid])
                                   : (static_cast<double>(durations[mid - 1]) + static_cast<double>(durations[mid])) / 2;
  return std::round(ms / 60'000.0 * 100) / 100;  // minutes, two decimals
}
}  // namespace

bj::object session_journeys(const std::vector<Journey>& journeys, std::string_view window_label, Millis now) {
  std::array<long long, 6> reached{};
  std::array<long long, 6> stopped{};
  std::array<std::vector<Millis>, 5> steps;
  for (const auto& j : journeys) {
    std::array<std::optional<Millis>, 6> at = {j.opened_at,         j.quote_locked_at,     j.offer_created_at,
                                               j.offer_accepted_at, j.payment_submitted_at, j.funded_at};
    std::size_t furthest = 0;
    for (std::size_t i = 0; i < at.size(); ++i) {
      if (!at[i]) break;
      ++reached[i];
      furthest = i;
      if (i > 0 && *at[i] >= *at[i - 1]) steps[i - 1].push_back(*at[i] - *at[i - 1]);
    }
    ++stopped[furthest];
  }
  static constexpr const char* kStages[] = {"thread_opened",  "quote_locked",      "offer_created",
                                            "offer_accepted", "payment_submitted", "payment_confirmed"};
  static constexpr const char* kSteps[] = {"open_to_quote_lock", "quote_lock_to_offer", "offer_to_acceptance",
                                           "acceptance_to_payment", "payment_to_confirmation"};
  bj::object reached_json, stopped_json, medians;
  for (std::size_t i = 0; i < 6; ++i) {
    reached_json[kStages[i]] = reached[i];
    stopped_json[kStages[i]] = stopped[i];
  }
  for (std::size_t i = 0; i < 5; ++i) medians[kSteps[i]] = median_minutes(steps[i]);
  return {{"ok", true},
          {"type", "agentlancer_session_journeys"},
          {"window", window_label},
          {"journeys_counted", static_cast<long long>(journeys.size())},
          {"reached", std::move(reached_json)},
          {"furthest_stage", std::move(stopped_json)},
          {"median_minutes", std::move(medians)},
          {"lookup_boundary", kLookupBoundary},
          {"proof_boundary",
           "Journeys are aggregate workflow telemetry (a thread's first offer and its contract); they are not payment "
           "or settlement proof."},
          {"refreshed_at", format_rfc3339(now)}};
}

}  // namespace al::offer
