#include "webhooks/webhook_api.hpp"

#include <set>

#include "common/json/json.hpp"
#include "common/service/durable.hpp"
#include "common/service/idempotency.hpp"
#include "common/service/module.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"
#include "storage/webhook_store.hpp"

namespace al::notifier::webhooks {
namespace {
namespace bj = boost::json;
using http::Request;
using http::Responder;
using http::Response;
using verb = http::bhttp::verb;
using webhook_store::Endpoint;

constexpr const char* kSource = "notifier";  // the Idempotency-Key records of this service

bj::object endpoint_json(const Endpoint& e) {
  bj::value types = nullptr;
  if (e.event_types) {
    bj::array list;
    for (const auto& t : *e.event_types) list.push_back(bj::value(t));
    types = std::move(list);
  }
  return {{"id", e.id},
          {"url", e.url},
          {"event_types", std::move(types)},
          {"description", e.description ? bj::value(*e.description) : bj::value(nullptr)},
          {"status", e.enabled ? "enabled" : "disabled"},
          {"disabled_reason", e.disabled_reason ? bj::value(*e.disabled_reason) : bj::value(nullptr)},
          {"failing_since", e.failing_since ? bj::value(format_rfc3339(*e.failing_since)) : bj::value(nullptr)},
          {"last_event_id", e.cursor},
          {"created_at", format_rfc3339(e.created_at)},
          {"updated_at", format_rfc3339(e.updated_at)}};
}

Response not_found() { return Response::error(404, "Webhook endpoint not found", "webhook_not_found"); }
Response validation(const json::ObjectReader& r) {
  return Response::error(400, "Validation error", "validation_error", json::errors_to_json(r.errors()));
}

// `event_types`: absent or null → every event; else 1..64 known types (duplicates dropped).
std::optional<std::vector<std::string>> read_types(json::ObjectReader& r) {
  const bj::value* v = r.present("event_types");
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    r.fail("event_types", "must be an array of event types or null");
    return std::nullopt;
  }
  const auto& array = v->as_array();
  if (array.empty() || array.size() > 64) {
    r.fail("event_types", "must hold 1 to 64 event types (null: every event)");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < array.size(); ++i) {
    std::string field = "event_types[" + std::to_string(i) + "]";
    if (!array[i].is_string()) {
      r.fail(field, "must be a string");
      continue;
    }
    std::string type(array[i].as_string());
    if (!is_known_event_type(type)) {
      r.fail(field, "unknown event type");
      continue;
    }
    if (std::find(out.begin(), out.end(), type) == out.end()) out.push_back(std::move(type));
  }
  return out;
}

// The URL's syntax (400) and, resolved now, where it leads (422); nullopt when it may be used.
std::optional<Response> check_url(json::ObjectReader& r, const std::optional<std::string>& url, const Settings& settings) {
  if (!url) return std::nullopt;
  auto target = parse_url(*url);
  if (!target) {
    r.fail("url", "must be an absolute http or https URL (no user info, no fragment)");
    return validation(r);
  }
  if (!r.ok()) return validation(r);
  auto checked = resolve_checked(target->host, settings.allowed);
  if (checked.unresolvable) return Response::error(422, "Webhook URL host cannot be resolved", "url_unresolvable");
  if (!checked.error.empty())
    return Response::error(422,
                           "Webhook URL resolves to a loopback, private, link-local or otherwise internal address (" +
                               checked.refused + "); it is refused unless webhooks.allowed_cidrs names it",
                           "url_not_allowed");
  return std::nullopt;
}

struct Routes {
  storage::Database& db;
  const auth::ApiKeyAuthority& auth;
  const Clock& clock;
  Dispatcher& dispatcher;
  ApiSettings settings;

  // Runs `work` on the agent's endpoint `id` in one unit of work; `work` returns the answer.
  void on_endpoint(const Request& req, Responder reply, const std::string& agent,
                   std::function<Response(storage::Connection&, Endpoint&, Millis)> work, bool wake = false) {
    auto answer = std::make_shared<Response>();
    std::string id(req.param("id"));
    db.write(
        [this, agent, id, work, answer, request_id = req.request_id](storage::Connection& c) {
          auto endpoint = webhook_store::find(c, agent, id);
          if (!endpoint) {
            *answer = not_found();
            return;
          }
          *answer = work(c, *endpoint, clock.now_ms());
          if (answer->status / 100 == 2) idempotency::note_effect(c, request_id, kSource);
        },
        [this, reply, answer, wake](std::exception_ptr error) {
          if (error) return reply(failed_write(error, "a webhook write failed"));
          if (wake) dispatcher.wake();
          reply(std::move(*answer));
        });
  }

  void create(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"url", "event_types", "description"});
    auto url = r.required_string("url", 1, 2048);
    auto types = read_types(r);
    auto description = r.optional_string("description", 500);
    if (auto refused = check_url(r, url, dispatcher.settings())) return reply(std::move(*refused));
    if (!r.ok()) return reply(validation(r));
    auto created = std::make_shared<std::optional<Endpoint>>();
    auto agent = *who.agent_id;
    db.write(
        [this, agent, url = *url, types, description, created, request_id = req.request_id](storage::Connection& c) {
          created->reset();
          if (webhook_store::count_for_agent(c, agent) >= settings.max_endpoints_per_agent) return;
          Millis now = clock.now_ms();
          Endpoint e;
          e.id = new_sortable_id("whk_", now);
          e.agent_id = agent;
          e.url = url;
          e.event_types = types;
          e.description = description;
          e.secret = new_secret();
          e.cursor = webhook_store::log_head(c, agent);  // new events from now on; replay for older ones
          e.next_attempt_at = now;
          e.created_at = e.updated_at = now;
          webhook_store::insert(c, e);
          idempotency::note_effect(c, request_id, kSource);
          *created = std::move(e);
        },
        [this, reply, created](std::exception_ptr error) {
          if (error) return reply(failed_write(error, "creating a webhook endpoint failed"));
          if (!*created)
            return reply(Response::error(422,
                                         "Too many webhook endpoints (limit " + std::to_string(settings.max_endpoints_per_agent) +
                                             "); delete one first",
                                         "too_many_webhooks"));
          auto out = endpoint_json(**created);
          out["secret"] = (*created)->secret;
          reply(Response::json(201, out));
        });
  }

  void list(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    auto endpoints = db.read([&](storage::Connection& c) { return webhook_store::list(c, *who.agent_id); });
    bj::array out;
    for (const auto& e : endpoints) out.push_back(endpoint_json(e));
    reply(Response::json(200, bj::object{{"webhooks", std::move(out)}}));
  }

  void get(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    std::string id(req.param("id"));
    auto e = db.read([&](storage::Connection& c) { return webhook_store::find(c, *who.agent_id, id); });
    if (!e) return reply(not_found());
    reply(Response::json(200, endpoint_json(*e)));
  }

  void patch(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"url", "event_types", "description", "enabled"});
    auto url = r.optional_string("url", 2048);
    bool types_given = body->contains("event_types");
    auto types = read_types(r);
    bool description_given = body->contains("description");
    auto description = r.optional_string("description", 500);
    auto enabled = r.optional_bool("enabled");
    if (url && url->empty()) r.fail("url", "must not be empty");
    if (auto refused = check_url(r, url, dispatcher.settings())) return reply(std::move(*refused));
    if (!r.ok()) return reply(validation(r));
    on_endpoint(
        req, reply, *who.agent_id,
        [url, types_given, types, description_given, description, enabled](storage::Connection& c, Endpoint& e, Millis now) {
          if (url) e.url = *url;
          if (types_given) e.event_types = types;
          if (description_given) e.description = description;
          if (enabled && *enabled && !e.enabled) {
            // Failures forgotten; delivery resumes at the event it stopped at, at once.
            e.enabled = true;
            e.disabled_reason.reset();
            e.failing_since.reset();
            e.last_error.reset();
            e.attempt = 0;
            e.next_attempt_at = now;
            e.lease.clear();
            e.lease_until = 0;
          } else if (enabled && !*enabled && e.enabled) {
            e.enabled = false;
            e.disabled_reason = "by_agent";
          }
          e.updated_at = now;
          webhook_store::save(c, e);
          return Response::json(200, endpoint_json(e));
        },
        true);
  }

  void remove(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    on_endpoint(req, reply, *who.agent_id, [agent = *who.agent_id](storage::Connection& c, Endpoint& e, Millis) {
      webhook_store::remove(c, agent, e.id);
      return Response::no_content();
    });
  }

  void rotate(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    if (!req.body.empty()) {
      Response error;
      auto body = read_json_object(req, error);
      if (!body) return reply(std::move(error));
      json::ObjectReader r(*body, {});
      if (!r.ok()) return reply(validation(r));
    }
    on_endpoint(req, reply, *who.agent_id, [grace = settings.secret_rotation_grace_ms](storage::Connection& c, Endpoint& e, Millis now) {
      e.previous_secret = e.secret;
      e.previous_secret_until = now + grace;
      e.secret = new_secret();
      e.updated_at = now;
      webhook_store::save(c, e);
      return Response::json(200, bj::object{{"id", e.id},
                                            {"secret", e.secret},
                                            {"previous_secret_expires_at", format_rfc3339(e.previous_secret_until)}});
    });
  }

  void replay(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"since_event_id"});
    auto since = r.optional_int("since_event_id", 0, std::numeric_limits<long long>::max());
    if (!since && !r.present("since_event_id") && r.ok()) r.fail("since_event_id", "is required");
    if (!r.ok()) return reply(validation(r));
    on_endpoint(
        req, reply, *who.agent_id,
        [since = *since](storage::Connection& c, Endpoint& e, Millis now) {
          // From the event after `since` (at most the log's head: nothing is skipped); an attempt
          // in flight is superseded (its lease is taken).
          e.cursor = std::min(since, webhook_store::log_head(c, e.agent_id));
          e.attempt = 0;
          e.next_attempt_at = now;
          e.lease.clear();
          e.lease_until = 0;
          e.updated_at = now;
          webhook_store::save(c, e);
          return Response::json(202, bj::object{{"id", e.id}, {"since_event_id", e.cursor}});
        },
        true);
  }

  void deliveries(const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    long long limit = 50;
    auto params = QueryParams().limit(limit, 200);
    if (!params.read(req, reply)) return;
    std::string id(req.param("id"));
    auto found = db.read([&](storage::Connection& c) {
      std::optional<std::vector<webhook_store::Delivery>> out;
      if (webhook_store::find(c, *who.agent_id, id)) out = webhook_store::deliveries(c, id, limit);
      return out;
    });
    if (!found) return reply(not_found());
    bj::array out;
    for (const auto& d : *found)
      out.push_back(bj::object{{"event_id", d.event_id},
                               {"webhook_id", d.webhook_id},
                               {"type", d.type},
                               {"attempt", d.attempt},
                               {"status", d.delivered ? "delivered" : "failed"},
                               {"response_code", d.response_code ? bj::value(*d.response_code) : bj::value(nullptr)},
                               {"latency_ms", static_cast<double>(d.latency_us) / 1000.0},
                               {"error", d.error ? bj::value(*d.error) : bj::value(nullptr)},
                               {"attempted_at", format_rfc3339(d.attempted_at)}});
    reply(Response::json(200, bj::object{{"deliveries", std::move(out)}}));
  }
};
}  // namespace

void add_webhook_routes(http::Router& router, storage::Database& db, const auth::ApiKeyAuthority& auth,
                        const Clock& clock, Dispatcher& dispatcher, ApiSettings settings) {
  auto routes = std::make_shared<Routes>(Routes{db, auth, clock, dispatcher, settings});
  auto bind = [routes](void (Routes::*f)(const Request&, Responder)) {
    return [routes, f](const Request& req, Responder reply) { ((*routes).*f)(req, std::move(reply)); };
  };
  router.add(verb::post, "/api/agent/webhooks", bind(&Routes::create));
  router.add(verb::get, "/api/agent/webhooks", bind(&Routes::list));
  router.add(verb::get, "/api/agent/webhooks/{id}", bind(&Routes::get));
  router.add(verb::patch, "/api/agent/webhooks/{id}", bind(&Routes::patch));
  router.add(verb::delete_, "/api/agent/webhooks/{id}", bind(&Routes::remove));
  router.add(verb::post, "/api/agent/webhooks/{id}/rotate-secret", bind(&Routes::rotate));
  router.add(verb::post, "/api/agent/webhooks/{id}/replay", bind(&Routes::replay));
  router.add(verb::get, "/api/agent/webhooks/{id}/deliveries", bind(&Routes::deliveries));
}

}  // namespace al::notifier::webhooks
