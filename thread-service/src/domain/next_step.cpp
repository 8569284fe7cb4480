#include "domain/next_step.hpp"

#include "events/thread_json.hpp"

namespace al::thread {

std::string key_placeholder(Role role) {
  return role == Role::Provider ? "<PROVIDER_AGENT_API_KEY>" : "<REQUESTER_AGENT_API_KEY>";
}

std::string shell_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  out += "'";
  return out;
}

namespace {
std::string post_curl(std::string_view base, const std::string& path, Role as, std::string_view json_body) {
  return "curl -sS -X POST " + std::string(base) + path + " -H 'content-type: application/json' -H 'x-api-key: " +
         key_placeholder(as) + "' -d " + shell_quote(json_body);
}

std::string thread_monitor(std::string_view base, const Thread& t, Role viewer) {
  return "curl -sS " + std::string(base) + "/api/agent/threads/" + t.id + "/tx-status -H 'x-api-key: " +
         key_placeholder(viewer) + "'";
}

std::string contract_monitor(std::string_view base, const std::string& contract_id) {
  return "curl -fsS '" + std::string(base) + "/api/contracts/" + contract_id + "/tx-status'";
}

void overlay(Terms& terms, const Terms& q) {
  if (q.deliverable) terms.deliverable = q.deliverable;
  if (q.timeline) terms.timeline = q.timeline;
  if (q.acceptance_criteria) terms.acceptance_criteria = q.acceptance_criteria;
  if (q.revision_boundary) terms.revision_boundary = q.revision_boundary;
  if (q.budget) {
    Budget b = terms.budget ? *terms.budget : Budget{};
    if (q.budget->amount) b.amount = q.budget->amount;
    if (q.budget->token) b.token = q.budget->token;
    if (q.budget->network) b.network = q.budget->network;
    terms.budget = b;
  }
}

// The quote the provider could post now: the service's terms, overlaid by the provider's latest
// quote, then by a later counter-proposal of the requester (posting it as is agrees to it), with a
// placeholder for each term none has (lock-quote treats placeholders as missing).
std::string prefilled_quote(const Thread& t) {
  Terms terms = t.service_terms;
  if (t.provider_quote_terms) overlay(terms, *t.provider_quote_terms);
  if (latest_quote_is_requesters(t) && t.latest_quote_terms) overlay(terms, *t.latest_quote_terms);
  auto fill = [](std::optional<std::string>& v, const char* placeholder) {
    if (!v || v->empty()) v = placeholder;
  };
  fill(terms.deliverable, "<DELIVERABLE>");
  fill(terms.timeline, "<TIMELINE>");
  fill(terms.acceptance_criteria, "<ACCEPTANCE_CRITERIA>");
  fill(terms.revision_boundary, "<REVISION_BOUNDARY>");
  if (!terms.budget) terms.budget = Budget{};
  fill(terms.budget->token, "<TOKEN>");
  fill(terms.budget->network, "<NETWORK>");
  boost::json::object body{{"type", "quote"},
                           {"body", "Quote: " + *terms.deliverable + " within " + *terms.timeline},
                           {"terms", terms_to_json(terms)}};
  return boost::json::serialize(body);
}
}  // namespace

NextStep next_step(const Thread& t, Role viewer, std::string_view base) {
  NextStep s;
  s.status = t.status;
  const std::string thread_path = "/api/agent/threads/" + t.id;
  auto act = [&](Role actor, std::string action, std::string description, std::string method, std::string path,
                 std::string curl) {
    s.actor = actor;
    s.you_act = actor == viewer;
    s.action = std::move(action);
    s.description = std::move(description);
    s.method = std::move(method);
    s.endpoint = std::move(path);
    if (s.you_act) s.copy_paste_curl = std::move(curl);
    else s.monitor_curl = thread_monitor(base, t, viewer);
  };
  auto watch = [&](Role actor, std::string action, std::string description, std::string path, std::string curl) {
    s.actor = actor;
    s.you_act = actor != Role::None && actor == viewer;
    s.action = std::move(action);
    s.description = std::move(description);
    s.method = "GET";
    s.endpoint = std::move(path);
    s.monitor_curl = std::move(curl);
  };

  switch (t.status) {
    case Status::Negotiating: {
      auto missing = missing_terms(t.provider_quote_terms);
      bool lockable = t.provider_quote_message_id && missing.empty();
      if (latest_quote_is_requesters(t)) {
        std::string counter = "The latest quote (seq " + std::to_string(t.latest_quote_seq.value_or(0)) +
                              ") is the requester's counter-proposal; a requester's quote cannot be locked. The "
                              "provider answers with its own quote: the curl carries the requester's terms, post it "
                              "as is to agree to them or change them (replace each <PLACEHOLDER> first), then lock it.";
        if (lockable)
          counter += " Or keep your own earlier quote: lock it with POST " + thread_path + "/lock-quote -d '{\"message_seq\":" +
                     std::to_string(t.provider_quote_seq.value_or(0)) + "}'.";
        act(Role::Provider, "post_quote", std::move(counter), "POST", thread_path + "/messages",
            post_curl(base, thread_path + "/messages", Role::Provider, prefilled_quote(t)));
      } else if (lockable) {
        act(Role::Provider, "lock_quote",
            "The provider's latest quote has every term: the provider locks it so the requester can create the offer.",
            "POST", thread_path + "/lock-quote", post_curl(base, thread_path + "/lock-quote", Role::Provider, "{}"));
      } else {
        std::string names;
        for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
        act(Role::Provider, "post_quote",
            "The provider posts a quote with every term (deliverable, budget amount/token/network, timeline, "
            "acceptance_criteria, revision_boundary); replace each <PLACEHOLDER> first. Missing now: " + names + ".",
            "POST", thread_path + "/messages", post_curl(base, thread_path + "/messages", Role::Provider, prefilled_quote(t)));
      }
      break;
    }
    case Status::QuoteLocked:
      act(Role::Requester, "create_offer",
          "The quote is locked: the requester creates the executable offer from it (the provider accepts it next).",
          "POST", thread_path + "/create-offer", post_curl(base, thread_path + "/create-offer", Role::Requester, "{}"));
      break;
    case Status::Offered:
      if (t.contract) {
        bool awaiting = t.contract->status == "awaiting_payment";
        watch(Role::Requester, awaiting ? "pay_contract" : "monitor_contract",
              awaiting ? "The offer was accepted: the buyer pays the contract on chain and submits tx_hash; monitor "
                         "the contract's tx-status for confirmations."
                       : "The contract is " + t.contract->status + ": monitor its tx-status.",
              "/api/contracts/" + t.contract->id + "/tx-status", contract_monitor(base, t.contract->id));
      } else if (t.offer && t.offer->status == "open") {
        std::string path = "/api/agent/offers/" + t.offer->id + "/respond";
        act(Role::Provider, "respond_to_offer",
            "The provider accepts the open offer before any payment (or rejects it with {\"action\":\"reject\"}).",
            "POST", path, post_curl(base, path, Role::Provider, R"({"action":"accept"})"));
      } else {
        watch(Role::None, "wait", "The offer was accepted; the contract is being created. Monitor the thread's tx-status.",
              thread_path + "/tx-status", thread_monitor(base, t, viewer));
      }
      break;
    case Status::Closed:
      if (t.contract) {
        watch(Role::None, "none", "The thread is closed (" + t.closed_reason.value_or("closed") + "); the contract is " +
                                      t.contract->status + ".",
              "/api/contracts/" + t.contract->id + "/tx-status", contract_monitor(base, t.contract->id));
      } else {
        s.action = "none";
        s.description = "The thread is closed (" + t.closed_reason.value_or("closed") + "); open a new quick_quote thread from an active service to continue.";
      }
      break;
  }
  return s;
}

}  // namespace al::thread
