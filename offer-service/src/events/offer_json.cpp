#include "events/offer_json.hpp"

#include "common/util/time_format.hpp"

namespace al::offer {
namespace bj = boost::json;

namespace {
bj::value opt(const std::optional<std::string>& v) { return v ? bj::value(*v) : bj::value(nullptr); }
bj::value opt_time(const std::optional<Millis>& v) { return v ? bj::value(format_rfc3339(*v)) : bj::value(nullptr); }

std::string key_placeholder(Viewer v) {
  return v == Viewer::Provider ? "<PROVIDER_AGENT_API_KEY>" : "<REQUESTER_AGENT_API_KEY>";
}
std::string respond_curl(std::string_view base, const Offer& o, std::string_view action) {
  return "curl -sS -X POST " + std::string(base) + "/api/agent/offers/" + o.id +
         "/respond -H 'content-type: application/json' -H 'x-api-key: <PROVIDER_AGENT_API_KEY>' -d '{\"action\":\"" +
         std::string(action) + "\"}'";
}
std::string contract_monitor(std::string_view base, const std::string& contract_id) {
  return "curl -fsS '" + std::string(base) + "/api/contracts/" + contract_id + "/tx-status'";
}
}  // namespace

bj::object offer_event_json(const Offer& o) {
  return {{"id", o.id},
          {"thread_id", o.thread_id},
          {"service_id", o.service_id},
          {"requester_id", o.requester_id},
          {"provider_id", o.provider_id},
          {"status", status_name(o.status)},
          {"terms", o.terms},
          {"amount", o.amount.to_string()},
          {"token", o.token},
          {"token_address", o.token_address},
          {"network", o.network},
          {"quote_message_id", o.quote_message_id},
          {"expires_at", format_rfc3339(o.expires_at)},
          {"decided_at", opt_time(o.decided_at)},
          {"decision_reason", opt(o.decision_reason)},
          {"contract_id", opt(o.contract_id)},
          {"created_at", format_rfc3339(o.created_at)},
          {"updated_at", format_rfc3339(o.updated_at)}};
}

bj::object offer_response_next_step(const Offer& o, Viewer viewer, std::string_view base) {
  bj::object s{{"status", status_name(o.status)}};
  bool provider = viewer == Viewer::Provider;
  switch (o.status) {
    case OfferStatus::Open:
      s["actor"] = "provider";
      s["you_act"] = provider;
      s["action"] = "respond_to_offer";
      s["description"] = "The provider accepts the offer (creating the contract) before any payment, or rejects it.";
      s["method"] = "POST";
      s["endpoint"] = "/api/agent/offers/" + o.id + "/respond";
      if (provider) {
        s["copy_paste_curl"] = respond_curl(base, o, "accept");
        s["reject_curl"] = respond_curl(base, o, "reject");
      } else {
        s["monitor_curl"] = "curl -sS " + std::string(base) + "/api/agent/offers/" + o.id + " -H 'x-api-key: " +
                            key_placeholder(viewer) + "'";
      }
      break;
    case OfferStatus::Accepted:
      s["actor"] = "requester";
      s["you_act"] = !provider;
      s["action"] = "pay_contract";
      s["description"] =
          "The offer was accepted: the buyer pays the contract on chain and submits tx_hash; monitor the contract's "
          "tx-status for confirmations.";
      s["method"] = "GET";
      s["endpoint"] = "/api/contracts/" + o.contract_id.value_or("") + "/tx-status";
      s["monitor_curl"] = contract_monitor(base, o.contract_id.value_or(""));
      break;
    case OfferStatus::Rejected:
    case OfferStatus::Inactive:
      s["actor"] = "provider";
      s["you_act"] = provider;
      s["action"] = "renegotiate";
      s["description"] = std::string("The offer was ") + (o.status == OfferStatus::Rejected ? "rejected" : "not answered in time") +
                         ": the thread is negotiating again; the provider locks a quote and the requester creates a new offer.";
      s["method"] = "GET";
      s["endpoint"] = "/api/agent/threads/" + o.thread_id + "/tx-status";
      s["monitor_curl"] = "curl -sS " + std::string(base) + "/api/agent/threads/" + o.thread_id +
                          "/tx-status -H 'x-api-key: " + key_placeholder(viewer) + "'";
      break;
  }
  return s;
}

bj::object offer_to_json(const Offer& o, Viewer viewer, std::string_view base) {
  bj::object out = offer_event_json(o);
  out["role"] = viewer == Viewer::Provider ? "provider" : "requester";
  out["offer_response_next_step"] = offer_response_next_step(o, viewer, base);
  return out;
}

namespace {
bj::value payment_block_json(const Contract& c) {
  if (!c.payment_block_number || !c.payment_block_hash) return nullptr;
  return bj::object{{"number", *c.payment_block_number}, {"hash", *c.payment_block_hash}};
}

bj::value rejected_payment_json(const Contract& c) {
  if (!c.rejected_tx_hash || !c.rejected_code) return nullptr;
  return bj::object{{"tx_hash", *c.rejected_tx_hash}, {"code", *c.rejected_code}, {"at", format_rfc3339(c.rejected_at.value_or(0))}};
}
}  // namespace

bj::object contract_event_json(const Contract& c) {
  return {{"id", c.id},
          {"offer_id", c.offer_id},
          {"thread_id", c.thread_id},
          {"buyer_id", c.buyer_id},
          {"provider_id", c.provider_id},
          {"status", c.status},
          {"amount", c.amount.to_string()},
          {"token", c.token},
          {"token_address", c.token_address},
          {"network", c.network},
          {"deliverable", c.deliverable},
          {"pay_to", c.pay_to},
          {"required_confirmations", c.required_confirmations},
          {"confirmations", c.confirmations},
          {"tx_hash", opt(c.tx_hash)},
          {"chain_adapter", c.chain_adapter},
          {"payment_block", payment_block_json(c)},
          {"rejected_payment", rejected_payment_json(c)},
          {"created_at", format_rfc3339(c.created_at)}};
}

bj::object contract_monitor_json(const Contract& c, std::string_view base) {
  bj::object next{{"status", c.status}};
  if (c.status == "awaiting_payment") {
    next["action"] = "pay";
    next["description"] = "The buyer sends " + c.amount.to_string() + " " + c.token + " on " + c.network + " to " +
                          c.pay_to + ", then submits the transaction hash; the contract is funded once that payment has " +
                          std::to_string(c.required_confirmations) + " confirmation(s).";
    next["payment_curl"] = "curl -sS -X POST " + std::string(base) + "/api/contracts/" + c.id +
                           "/payment -H 'content-type: application/json' -H 'x-api-key: <REQUESTER_AGENT_API_KEY>' "
                           "-d '{\"tx_hash\":\"REAL_BUYER_TX_HASH\"}'";
    if (c.rejected_code)
      next["description"] = "A later chain check turned down the last payment (" + *c.rejected_code +
                            ", see rejected_payment): pay again. " + std::string(next["description"].as_string());
  } else if (c.status == "payment_submitted") {
    next["action"] = "wait_for_confirmations";
    next["description"] = c.payment_block_number
                              ? "The payment was seen in block " + std::to_string(*c.payment_block_number) + " with " +
                                    std::to_string(c.confirmations) + " of " + std::to_string(c.required_confirmations) +
                                    " confirmation(s); it is checked again until final."
                              : "The payment is known to the chain but in no block yet (the mempool, or taken out of its "
                                "block by a reorganization); it is checked again until final.";
  } else if (c.status == "funded") {
    next["action"] = "work";
    next["description"] = "The contract is funded: the provider delivers; the buyer evaluates the deliverable.";
  } else {
    next["action"] = "none";
    next["description"] = "The contract is " + c.status + ".";
  }
  next["monitor_curl"] = contract_monitor(base, c.id);
  bj::object out{{"status", c.status},
                 {"amount", c.amount.to_string()},
                 {"token", c.token},
                 {"token_address", c.token_address},
                 {"network", c.network},
                 {"pay_to", c.pay_to},
                 {"required_confirmations", c.required_confirmations},
                 {"confirmations", c.confirmations},
                 {"tx_hash", opt(c.tx_hash)},
                 {"payment_block", payment_block_json(c)},
                 {"rejected_payment", rejected_payment_json(c)},
                 {"chain_adapter", c.chain_adapter},
                 {"next_step", std::move(next)},
                 {"proof_boundary",
                  "Contract status is workflow state; only a verified buyer tx_hash with the required confirmations "
                  "is payment."}};
  if (c.chain_adapter == "sandbox")
    out["sandbox"] = "This contract is verified by the sandbox chain adapter (embedded default): no real chain is "
                     "consulted and no real funds move.";
  return out;
}

}  // namespace al::offer
