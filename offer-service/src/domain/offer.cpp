#include "domain/offer.hpp"

#include <set>

#include "common/config/config.hpp"

namespace al::offer {
namespace bj = boost::json;

std::string_view status_name(OfferStatus status) {
  switch (status) {
    case OfferStatus::Open: return "open";
    case OfferStatus::Accepted: return "accepted";
    case OfferStatus::Rejected: return "rejected";
    case OfferStatus::Inactive: return "inactive";
  }
  return "open";
}

std::optional<OfferStatus> parse_status(std::string_view name) {
  for (OfferStatus s : {OfferStatus::Open, OfferStatus::Accepted, OfferStatus::Rejected, OfferStatus::Inactive})
    if (status_name(s) == name) return s;
  return std::nullopt;
}

namespace {
std::string text_at(const bj::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
}  // namespace

bool apply_thread_event(ThreadView& view, std::string_view type, const bj::object& data, long long seq, Millis time) {
  if (view.seq >= seq && !view.thread_id.empty()) return false;  // redelivered or stale
  if (view.thread_id.empty() && !view.opened_at) view.opened_at = time;
  if (type == "thread.quote_locked") view.quote_locked_at = time;
  auto* t = data.if_contains("thread");
  if (!t || !t->is_object()) return false;
  const bj::object& thread = t->get_object();
  view.thread_id = text_at(thread, "id");
  view.service_id = text_at(thread, "service_id");
  view.requester_id = text_at(thread, "requester_id");
  view.provider_id = text_at(thread, "provider_id");
  view.status = text_at(thread, "status");
  if (auto* terms = thread.if_contains("locked_terms"); terms && terms->is_object()) view.locked_terms = terms->get_object();
  else view.locked_terms.reset();
  if (type == "thread.quote_locked") view.quote_message_id = text_at(data, "quote_message_id");
  view.seq = seq;
  return !view.thread_id.empty();
}

Outcome check_create(const std::optional<ThreadView>& thread, std::string_view actor,
                     const std::optional<Offer>& live_offer) {
  if (!thread) return Outcome::fail(Verdict::NotFound, "Thread not found", "not_found");
  if (actor != thread->requester_id && actor != thread->provider_id)
    return Outcome::fail(Verdict::Forbidden, std::string(kNotThreadMember), "forbidden");
  if (actor != thread->requester_id)
    return Outcome::fail(Verdict::Forbidden, "Only the requester can create the offer", "forbidden");
  if (live_offer)
    return Outcome::fail(Verdict::Conflict,
                         "An offer for this thread is already " + std::string(status_name(live_offer->status)),
                         "offer_exists");
  if (thread->status != "quote_locked" || !thread->locked_terms)
    return Outcome::fail(Verdict::Conflict,
                         "Quote is not locked: the provider locks it first (POST /api/agent/threads/" +
                             thread->thread_id + "/lock-quote)",
                         "quote_not_locked");
  return {};
}

Outcome offer_from(const ThreadView& thread, Offer& offer, Millis now, Millis ttl_ms) {
  const bj::object& terms = *thread.locked_terms;
  auto* budget = terms.if_contains("budget");
  std::optional<Decimal> amount;
  std::string token, network;
  if (budget && budget->is_object()) {
    amount = Decimal::parse(text_at(budget->get_object(), "amount"));
    token = text_at(budget->get_object(), "token");
    network = text_at(budget->get_object(), "network");
  }
  if (!amount || amount->is_zero() || token.empty() || network.empty())
    return Outcome::fail(Verdict::Conflict, "The locked quote has no usable budget {amount, token, network}",
                         "quote_not_locked");
  offer.thread_id = thread.thread_id;
  offer.service_id = thread.service_id;
  offer.requester_id = thread.requester_id;
  offer.provider_id = thread.provider_id;
  offer.status = OfferStatus::Open;
  offer.terms = terms;
  offer.amount = *amount;
  offer.token = token;
  offer.network = network;
  offer.quote_message_id = thread.quote_message_id.value_or("");
  offer.expires_at = now + ttl_ms;
  offer.created_at = now;
  offer.updated_at = now;
  Outcome out;
  out.events.emplace_back("offer.created");
  return out;
}

bool is_evm_address(std::string_view s) {
  if (s.size() != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  for (std::size_t i = 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

namespace {
std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

TokenRegistry TokenRegistry::parse(const std::string& text) {
  TokenRegistry out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() : comma + 1;
    if (item.empty()) continue;
    auto colon = item.find(':');
    auto equals = item.find('=', colon == std::string::npos ? 0 : colon);
    if (colon == std::string::npos || equals == std::string::npos || colon == 0 || equals == colon + 1 ||
        !is_evm_address(item.substr(equals + 1)))
      throw ConfigError("contracts.tokens: expected network:SYMBOL=0x<40 hex>[,…], got \"" + item + "\"");
    out.addresses_[{item.substr(0, colon), upper(item.substr(colon + 1, equals - colon - 1))}] = item.substr(equals + 1);
  }
  return out;
}

std::optional<std::string> TokenRegistry::resolve(const std::string& network, const std::string& token) const {
  if (is_evm_address(token)) return token;
  if (auto it = addresses_.find({network, upper(token)}); it != addresses_.end()) return it->second;
  return std::nullopt;
}

Outcome expire_if_due(Offer& offer, Millis now) {
  if (offer.status != OfferStatus::Open || now < offer.expires_at) return {Verdict::Unchanged, {}, {}, {}};
  offer.status = OfferStatus::Inactive;
  offer.decided_at = now;
  offer.decision_reason = "expired";
  offer.updated_at = now;
  Outcome out;
  out.events.emplace_back("offer.expired");
  return out;
}

Outcome respond(Offer& offer, std::string_view actor, bool accept, const std::optional<std::string>& reason,
                Millis now) {
  if (actor != offer.requester_id && actor != offer.provider_id)
    return Outcome::fail(Verdict::Forbidden, std::string(kNotOfferMember), "forbidden");
  if (actor != offer.provider_id)
    return Outcome::fail(Verdict::Forbidden, "Only the provider can respond to this offer", "forbidden");
  OfferStatus wanted = accept ? OfferStatus::Accepted : OfferStatus::Rejected;
  if (offer.status == wanted) return {Verdict::Unchanged, {}, {}, {}};
  Outcome expired = expire_if_due(offer, now);
  if (expired.verdict == Verdict::Applied) {
    expired.verdict = Verdict::Conflict;  // the expiry is kept; the decision is refused
    expired.message = "Offer expired";
    expired.code = "offer_expired";
    return expired;
  }
  if (offer.status == OfferStatus::Inactive && offer.decision_reason == "expired")
    return Outcome::fail(Verdict::Conflict, "Offer expired", "offer_expired");  // the sweeper got there first
  if (offer.status != OfferStatus::Open)
    return Outcome::fail(Verdict::Conflict, "Offer is already " + std::string(status_name(offer.status)),
                         "offer_decided");
  offer.status = wanted;
  offer.decided_at = now;
  offer.decision_reason = reason;
  offer.updated_at = now;
  Outcome out;
  out.events.emplace_back(accept ? "offer.accepted" : "offer.rejected");
  return out;
}

Contract contract_for(const Offer& offer, std::string id, const PaymentTerms& payment, Millis now) {
  Contract c;
  c.id = std::move(id);
  c.offer_id = offer.id;
  c.thread_id = offer.thread_id;
  c.buyer_id = offer.requester_id;
  c.provider_id = offer.provider_id;
  c.amount = offer.amount;
  c.token = offer.token;
  c.token_address = offer.token_address;
  c.network = offer.network;
  if (auto* d = offer.terms.if_contains("deliverable"); d && d->is_string()) c.deliverable = std::string(d->get_string());
  c.pay_to = payment.pay_to;
  c.required_confirmations = payment.required_confirmations;
  c.chain_adapter = payment.chain_adapter;
  c.created_at = now;
  c.updated_at = now;
  return c;
}

Outcome check_payment(const Contract& c, std::string_view actor, const std::string& tx_hash) {
  if (actor != c.buyer_id && actor != c.provider_id)
    return Outcome::fail(Verdict::Forbidden, std::string(kNotContractParty), "forbidden");
  if (actor != c.buyer_id) return Outcome::fail(Verdict::Forbidden, "Only the buyer can submit the payment", "forbidden");
  if (c.tx_hash && *c.tx_hash == tx_hash) return {Verdict::Unchanged, {}, {}, {}};
  if (c.status != "awaiting_payment")
    return Outcome::fail(Verdict::Conflict, "Contract is " + c.status + ": it takes one payment", "contract_not_awaiting_payment");
  return {};
}

Outcome apply_payment(Contract& c, const std::string& tx_hash, const PaymentObservation& seen, Millis now) {
  Outcome out;
  bool first = c.tx_hash != tx_hash;
  bool had_block = c.payment_block_hash.has_value();
  c.tx_hash = tx_hash;
  c.chain_adapter = seen.adapter;
  c.confirmations = seen.confirmations;
  c.payment_seen_at = now;
  if (seen.block_number > 0) {
    c.payment_block_number = seen.block_number;
    c.payment_block_hash = seen.block_hash;
  } else {
    c.payment_block_number.reset();
    c.payment_block_hash.reset();
  }
  c.updated_at = now;
  if (first) {
    c.payment_submitted_at = now;
    c.status = "payment_submitted";
    out.events.emplace_back("contract.payment_submitted");
  } else if (seen.reorged && had_block) {
    out.events.emplace_back("contract.payment_reorged");
  }
  if (seen.status == "verified" && seen.confirmations >= c.required_confirmations && c.status != "funded") {
    c.funded_at = now;
    c.status = "funded";
    out.events.emplace_back("contract.funded");
  }
  if (out.events.empty()) out.verdict = Verdict::Unchanged;
  return out;
}

Outcome observe_payment(Contract& c, const PaymentObservation& seen, Millis now, Millis give_up_ms) {
  static const std::set<std::string, std::less<>> kTurnedDown = {"failed", "wrong_token", "wrong_recipient", "underpaid",
                                                                 "wrong_network"};
  Outcome unchanged{Verdict::Unchanged, {}, {}, {}};
  if (c.status != "payment_submitted" || !c.tx_hash) return unchanged;
  if (seen.status == "verified" || seen.status == "pending") return apply_payment(c, *c.tx_hash, seen, now);
  bool give_up = false;
  if (seen.status == "not_found") {
    if (c.payment_block_hash) {  // it was in a block: a reorganization dropped it; it may come back
      c.payment_block_hash.reset();
      c.payment_block_number.reset();
      c.confirmations = 0;
      c.updated_at = now;
      Outcome out;
      out.events.emplace_back("contract.payment_reorged");
      return out;
    }
    give_up = now - c.payment_seen_at.value_or(c.payment_submitted_at.value_or(now)) >= give_up_ms;
  }
  if (!give_up && !kTurnedDown.contains(seen.status)) return unchanged;
  c.rejected_tx_hash = c.tx_hash;
  c.rejected_code = seen.status;
  c.rejected_at = now;
  c.tx_hash.reset();
  c.payment_block_hash.reset();
  c.payment_block_number.reset();
  c.payment_seen_at.reset();
  c.payment_submitted_at.reset();
  c.confirmations = 0;
  c.status = "awaiting_payment";
  c.updated_at = now;
  Outcome out;
  out.events.emplace_back("contract.payment_rejected");
  return out;
}

Outcome follow_job_phase(Contract& c, int phase, Millis now) {
  static const std::map<int, std::pair<std::string, std::string>> kEnds = {
      {4, {"completed", "contract.completed"}}, {5, {"refund_pending", "contract.refunded"}}, {6, {"expired", "contract.expired"}}};
  auto end = kEnds.find(phase);
  bool ended = c.status == "completed" || c.status == "refund_pending" || c.status == "expired";
  if (end == kEnds.end() || ended) return {Verdict::Unchanged, {}, {}, {}};
  c.status = end->second.first;
  c.updated_at = now;
  Outcome out;
  out.events.push_back(end->second.second);
  return out;
}

}  // namespace al::offer
