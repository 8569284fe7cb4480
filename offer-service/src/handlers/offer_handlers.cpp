#include "handlers/offer_handlers.hpp"

#include <algorithm>

#include "common/chain/chain.hpp"
#include "common/json/json.hpp"
#include "common/service/durable.hpp"
#include "common/service/module.hpp"
#include "common/util/ids.hpp"
#include "events/offer_json.hpp"
#include "ops/feedback.hpp"
#include "ops/handoff.hpp"
#include "common/util/time_format.hpp"

namespace al::offer {
namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

bool is_opaque_id(std::string_view id, std::string_view prefix) {
  if (id.size() <= prefix.size() || id.size() > 64 || id.substr(0, prefix.size()) != prefix) return false;
  return std::all_of(id.begin() + static_cast<long>(prefix.size()), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

// No body (zero bytes) or a JSON object for action routes; anything else, whitespace alone
// included, is not a JSON document.
std::optional<bj::object> body_of(const Request& req, const Responder& reply) {
  if (req.body.empty()) return bj::object{};
  Response error;
  auto body = read_json_object(req, error);
  if (!body) reply(std::move(error));
  return body;
}

Response refusal(const Result& r) {
  bj::value details = nullptr;
  if (r.kind == Result::Kind::Conflict && r.code == "offer_exists" && r.offer)
    details = bj::object{{"offer_id", r.offer->id}, {"status", status_name(r.offer->status)}};
  return al::refusal(r.kind, r.message, r.code, std::move(details));
}

Viewer viewer_of(const Offer& o, const std::string& agent) {
  return agent == o.provider_id ? Viewer::Provider : Viewer::Requester;
}

// 401 → 404 → 403 for an offer: the caller and the offer when the caller is one of its parties
// (before any body is looked at); otherwise the answer has been sent.
struct OfferParty {
  std::string agent;
  Offer offer;
};
std::optional<OfferParty> offer_party(const Request& req, const Responder& reply, const auth::ApiKeyAuthority& auth,
                                      OfferStore& store) {
  auto who = auth::authenticate(req, auth);
  if (!who.agent_id) {
    reply(std::move(who.failure));
    return std::nullopt;
  }
  std::string id(req.param("id"));
  std::optional<Offer> offer;
  if (is_opaque_id(id, "off_")) offer = store.get_offer(id);
  if (!offer) {
    reply(Response::error(404, "Offer not found", "not_found"));
    return std::nullopt;
  }
  if (*who.agent_id != offer->requester_id && *who.agent_id != offer->provider_id) {
    reply(Response::error(403, kNotOfferMember, "forbidden"));
    return std::nullopt;
  }
  return OfferParty{*who.agent_id, std::move(*offer)};
}

// ?window=… of the ops snapshots (default 24h): the label and its length, or the reply is sent.
std::optional<std::pair<std::string, Millis>> ops_window(const Request& req, const Responder& reply) {
  std::string label = "24h";
  auto errors = QueryParams()
                    .on("window",
                        [&label](const std::string& value) -> std::optional<std::string> {
                          label = value;
                          return std::nullopt;
                        })
                    .read(req);
  auto window = parse_window(label);
  if (!window) errors.push_back({"window", "must be hours or days between 1h and 30d, e.g. 24h or 7d"});
  if (!errors.empty()) {
    reply(validation_error(errors));
    return std::nullopt;
  }
  return std::pair{label, *window};
}
}  // namespace

void add_offer_routes(http::Router& router, OfferService& service, OfferStore& store,
                      const auth::ApiKeyAuthority& auth, const Clock& clock, std::function<std::string()> base_url,
                      FeedbackLimits feedback_limits) {
  using verb = http::bhttp::verb;
  // An offer past its expiry reads as inactive even before the sweeper has stored that.
  auto as_of_now = [&clock](Offer offer) {
    expire_if_due(offer, clock.now_ms());
    return offer;
  };

  router.add(verb::post, "/api/agent/threads/{id}/create-offer", [&service, &auth, base_url](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    auto body = body_of(req, reply);
    if (!body) return;
    json::ObjectReader r(*body, {});
    if (!r.ok()) return reply(validation_error(r.errors()));
    std::string id(req.param("id"));
    if (!is_opaque_id(id, "thr_")) return reply(Response::error(404, "Thread not found", "not_found"));
    service.create_offer(id, *who.agent_id, req.cause(), [reply, agent = *who.agent_id, base_url](Result result) {
      if (!succeeded(result.kind)) return reply(refusal(result));
      reply(Response::json(201, offer_to_json(*result.offer, viewer_of(*result.offer, agent), base_url())));
    });
  });

  router.add(verb::get, "/api/agent/offers", [&store, &auth, base_url, as_of_now](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    OfferQuery q;
    q.agent_id = *who.agent_id;
    auto params = QueryParams()
                      .one_of<std::optional<bool>>("mode", {{"incoming", true}, {"outgoing", false}}, q.as_provider,
                                                   "must be incoming or outgoing")
                      .comma_list<OfferStatus>("status", parse_status, q.statuses,
                                               "must be open, accepted, rejected or inactive (or a comma list)")
                      .limit(q.limit)
                      .cursor(q.before_row);
    if (!params.read(req, reply)) return;
    auto page = store.list_offers(q);
    std::string base = base_url();
    bj::array offers;
    for (const auto& o : page.offers) offers.push_back(offer_to_json(as_of_now(o), viewer_of(o, q.agent_id), base));
    reply(Response::json(200, bj::object{{"offers", std::move(offers)},
                                         {"next_cursor", page.next_before_row ? bj::value(std::to_string(*page.next_before_row))
                                                                              : bj::value(nullptr)}}));
  });

  router.add(verb::get, "/api/agent/offers/{id}", [&store, &auth, base_url, as_of_now](const Request& req, Responder reply) {
    auto party = offer_party(req, reply, auth, store);
    if (!party) return;
    reply(Response::json(200, offer_to_json(as_of_now(party->offer), viewer_of(party->offer, party->agent), base_url())));
  });

  router.add(verb::post, "/api/agent/offers/{id}/respond", [&service, &store, &auth, base_url](const Request& req, Responder reply) {
    auto party = offer_party(req, reply, auth, store);
    if (!party) return;
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"action", "reason"});
    auto action = r.required_string("action", 1, 16);
    auto reason = r.optional_string("reason", 2000);
    if (action && *action != "accept" && *action != "reject") r.fail("action", "must be \"accept\" or \"reject\"");
    if (!r.ok()) return reply(validation_error(r.errors()));
    service.respond(party->offer.id, party->agent, *action == "accept", reason, req.cause(),
                    [reply, agent = party->agent, base_url](Result result) {
                      if (!succeeded(result.kind)) return reply(refusal(result));
                      bj::object out = offer_to_json(*result.offer, viewer_of(*result.offer, agent), base_url());
                      if (result.contract) out["contract"] = contract_monitor_json(*result.contract, base_url());
                      reply(Response::json(200, out));
                    });
  });

  router.add(verb::post, "/api/contracts/{id}/payment", [&service, &store, &auth, base_url](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    std::string id(req.param("id"));
    std::optional<Contract> contract;
    if (is_opaque_id(id, "ctr_")) contract = store.get_contract(id);
    if (!contract) return reply(Response::error(404, "Contract not found", "not_found"));
    if (*who.agent_id != contract->buyer_id && *who.agent_id != contract->provider_id)
      return reply(Response::error(403, kNotContractParty, "forbidden"));
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"tx_hash"});
    auto hash = r.required_string("tx_hash", 1, 100);
    if (hash && !chain::is_tx_hash(*hash)) r.fail("tx_hash", "must be 0x followed by 64 hexadecimal digits");
    if (!r.ok()) return reply(validation_error(r.errors()));
    std::string normalized = *hash;
    for (auto& ch : normalized) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    service.submit_payment(id, *who.agent_id, normalized, req.cause(), [reply, base_url](Result result) {
      if (!succeeded(result.kind)) {
        if (result.kind == Result::Kind::Internal && result.code != "internal")
          return reply(Response::error(503, result.message, "chain_unavailable"));
        return reply(refusal(result));
      }
      reply(Response::json(200, contract_monitor_json(*result.contract, base_url())));
    });
  });

  // Public feedback (seed 000's blocker feedback): validated, secrets redacted, rate limited per
  // client address.
  auto limiter = std::make_shared<RateLimiter>(feedback_limits.per_window, feedback_limits.window);
  router.add(verb::post, "/api/public/feedback", [&store, &clock, limiter](const Request& req, Responder reply) {
    if (auto wait = limiter->acquire(req.remote_address, std::chrono::steady_clock::now())) {
      Response limited = Response::error(429, "Too many feedback messages from this address; retry later", "rate_limited");
      limited.headers.emplace_back("retry-after", std::to_string(*wait));
      return reply(std::move(limited));
    }
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"surface", "sentiment", "category", "message"});
    auto surface = r.required_string("surface", 1, 200);
    auto sentiment = r.required_string("sentiment", 1, 32);
    auto category = r.required_string("category", 1, 32);
    auto message = r.required_string("message", 1, 2000);
    if (surface && surface->front() != '/') r.fail("surface", "must be an API path such as /api/agent/threads/{thread_id}/create-offer");
    auto one_of = [&r](const std::optional<std::string>& v, std::string_view field, const auto& allowed) {
      if (v && std::find(std::begin(allowed), std::end(allowed), *v) == std::end(allowed)) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        r.fail(field, "must be one of: " + list);
      }
    };
    one_of(sentiment, "sentiment", kSentiments);
    one_of(category, "category", kCategories);
    if (!r.ok()) return reply(validation_error(r.errors()));
    auto feedback = std::make_shared<Feedback>();
    feedback->surface = normalize_surface(*surface);
    feedback->sentiment = *sentiment;
    feedback->category = *category;
    feedback->message = *message;
    feedback->redactions = redact_secrets(feedback->message);
    Millis now = clock.now_ms();
    store.transact([feedback, now](OfferTx& tx) { tx.insert_feedback(*feedback, now); },
                   [reply, feedback, now](std::exception_ptr e) {
                     if (e) return reply(failed_write(e, "feedback failed"));
                     bj::array kinds;
                     for (const auto& k : feedback->redactions) kinds.emplace_back(k);
                     reply(Response::json(201, bj::object{{"ok", true},
                                                          {"type", "agentlancer_feedback_receipt"},
                                                          {"surface", feedback->surface},
                                                          {"sentiment", feedback->sentiment},
                                                          {"category", feedback->category},
                                                          {"raw_message_stored", feedback->raw_message_stored()},
                                                          {"redacted", std::move(kinds)},
                                                          {"stored_message", feedback->message},
                                                          {"received_at", format_rfc3339(now)}}));
                   });
  });

  // Public aggregate snapshots (seed 000): numbers only, never an id.
  auto add_snapshot = [&](std::string path, bj::object (*render)(const OpsCounts&, std::string_view, std::string_view, Millis)) {
    router.add(verb::get, std::move(path), [&store, &clock, base_url, render](const Request& req, Responder reply) {
      auto window = ops_window(req, reply);
      if (!window) return;
      Millis now = clock.now_ms();
      reply(Response::json(200, render(store.ops_counts(now - window->second), window->first, base_url(), now)));
    });
  };
  add_snapshot("/api/ops/quote-to-offer-handoff", &quote_to_offer_handoff);
  add_snapshot("/api/ops/traffic-summary",
               [](const OpsCounts& n, std::string_view label, std::string_view, Millis now) { return traffic_summary(n, label, now); });
  add_snapshot("/api/ops/first-payment-handoff", &first_payment_handoff);
  router.add(verb::get, "/api/ops/session-journeys", [&store, &clock](const Request& req, Responder reply) {
    auto window = ops_window(req, reply);
    if (!window) return;
    Millis now = clock.now_ms();
    // The newest 10,000 threads of the window at most: the medians stay cheap.
    reply(Response::json(200, session_journeys(store.journeys(now - window->second, 10'000), window->first, now)));
  });

  router.add(verb::get, "/api/contracts/{id}/tx-status", [&store, base_url](const Request& req, Responder reply) {
    std::string id(req.param("id"));
    std::optional<Contract> contract;
    if (is_opaque_id(id, "ctr_")) contract = store.get_contract(id);
    if (!contract) return reply(Response::error(404, "Contract not found", "not_found"));
    reply(Response::json(200, contract_monitor_json(*contract, base_url())));
  });
}

}  // namespace al::offer
