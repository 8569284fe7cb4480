#include "handlers/thread_handlers.hpp"

#include <algorithm>
#include <limits>

#include "common/json/json.hpp"
#include "common/service/module.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"
#include "events/thread_json.hpp"

namespace al::thread {
namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

constexpr std::size_t kMaxBody = 10000;
constexpr std::size_t kMaxTags = 10;

bool matches(std::string_view s, std::size_t max, bool (*allowed)(char)) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), allowed);
}
bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}
bool slug_char(char c) {
  return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-';
}

// "thr_" / "svc_" + base32: anything else cannot name a stored object.
bool is_opaque_id(std::string_view id, std::string_view prefix) {
  if (id.size() <= prefix.size() || id.size() > 64 || id.substr(0, prefix.size()) != prefix) return false;
  return std::all_of(id.begin() + static_cast<long>(prefix.size()), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

std::optional<std::string> token_field(json::ObjectReader& r, std::string_view name, bool required) {
  auto v = required ? r.required_string(name, 1, 64) : r.optional_string(name, 64);
  if (v && !matches(*v, 64, token_char)) {
    r.fail(name, "must be a token symbol or address: letters, digits, '.', '_' or '-'");
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> network_field(json::ObjectReader& r, std::string_view name, bool required) {
  auto v = required ? r.required_string(name, 1, 64) : r.optional_string(name, 64);
  if (v && !matches(*v, 64, slug_char)) {
    r.fail(name, "must be a network name: lower-case letters, digits or '-' (e.g. base, base-sepolia)");
    return std::nullopt;
  }
  return v;
}

std::optional<Decimal> amount_field(json::ObjectReader& r, std::string_view name, bool required) {
  auto v = required ? r.required_decimal(name) : r.optional_decimal(name);
  if (v && v->is_zero()) {
    r.fail(name, "must be greater than 0");
    return std::nullopt;
  }
  return v;
}

std::optional<std::vector<std::string>> tags_field(json::ObjectReader& r) {
  const bj::value* v = r.present("tags");
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    r.fail("tags", "must be an array of strings");
    return std::nullopt;
  }
  if (v->get_array().size() > kMaxTags) {
    r.fail("tags", "must have at most 10 tags");
    return std::nullopt;
  }
  std::vector<std::string> tags;
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) {
      r.fail("tags", "must be an array of strings");
      return std::nullopt;
    }
    std::string tag(item.get_string());
    for (auto& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!matches(tag, 32, slug_char)) {
      r.fail("tags", "each tag is 1..32 of a-z, 0-9 and '-'");
      return std::nullopt;
    }
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.push_back(std::move(tag));
  }
  return tags;
}

// The fields of a service body; `complete` for publishing (all required).
ServiceFields read_service_fields(json::ObjectReader& r, bool complete) {
  ServiceFields f;
  auto text = [&](std::string_view name, std::size_t max) {
    return complete ? r.required_string(name, 1, max) : r.optional_string(name, max);
  };
  f.title = text("title", 200);
  f.description = text("description", 5000);
  f.deliverable = text("deliverable", 2000);
  f.timeline = text("timeline", 200);
  for (auto* field : {&f.title, &f.description, &f.deliverable, &f.timeline})
    if (*field && (*field)->empty()) {
      r.fail("title/description/deliverable/timeline", "must not be empty");
      *field = std::nullopt;
    }
  const bj::object* price = r.optional_object("price");
  if (price) {
    // A price is replaced as a whole, so one sent (an update's too) has every part.
    auto p = r.nested(*price, "price", {"amount", "token", "network"});
    f.amount = amount_field(p, "amount", true);
    f.token = token_field(p, "token", true);
    f.network = network_field(p, "network", true);
  } else if (complete) {
    r.fail("price", "is required: {amount, token, network}");
  }
  f.tags = tags_field(r);
  f.active = r.optional_bool("active");
  if (complete && !f.tags) f.tags = std::vector<std::string>{};
  return f;
}

std::optional<Terms> read_terms(json::ObjectReader& r) {
  const bj::object* o = r.optional_object("terms");
  if (!o) return std::nullopt;
  auto t = r.nested(*o, "terms",
                    {"deliverable", "budget", "timeline", "acceptance_criteria", "revision_boundary"});
  Terms terms;
  terms.deliverable = t.optional_string("deliverable", 2000);
  terms.timeline = t.optional_string("timeline", 200);
  terms.acceptance_criteria = t.optional_string("acceptance_criteria", 2000);
  terms.revision_boundary = t.optional_string("revision_boundary", 1000);
  // A term given is a term stated: an empty one is refused (a missing one is what lock-quote names).
  for (const auto& [name, value] : {std::pair{"deliverable", &terms.deliverable}, std::pair{"timeline", &terms.timeline},
                                    std::pair{"acceptance_criteria", &terms.acceptance_criteria},
                                    std::pair{"revision_boundary", &terms.revision_boundary}})
    if (*value && value->value().empty()) t.fail(name, "must not be empty");
  if (const bj::object* b = t.optional_object("budget")) {
    auto budget = t.nested(*b, "budget", {"amount", "token", "network"});
    terms.budget = Budget{amount_field(budget, "amount", false), token_field(budget, "token", false),
                          network_field(budget, "network", false)};
  }
  return terms;
}

// 401 → 404 → 403 (non-member, before the body and any state check) → then the route.
struct Member {
  std::string agent;
  ThreadRef thread;
  Role role = Role::None;
};

std::optional<Member> member_prelude(const Request& req, const Responder& reply, const auth::ApiKeyAuthority& auth,
                                     ThreadStore& store) {
  auto who = auth::authenticate(req, auth);
  if (!who.agent_id) {
    reply(std::move(who.failure));
    return std::nullopt;
  }
  std::string id(req.param("id"));
  ThreadRef thread;
  if (is_opaque_id(id, "thr_")) thread = store.find_thread(id);
  if (!thread) {
    reply(Response::error(404, "Thread not found", "not_found"));
    return std::nullopt;
  }
  Role role = role_of(*thread, *who.agent_id);
  if (role == Role::None) {
    reply(Response::error(403, kNotMember, "forbidden"));
    return std::nullopt;
  }
  return Member{*who.agent_id, std::move(thread), role};
}

std::optional<bj::object> body_of(const Request& req, const Responder& reply, bool allow_empty) {
  // No body is zero bytes: whitespace alone is not a JSON document.
  if (allow_empty && req.body.empty()) return bj::object{};
  Response error;
  auto body = read_json_object(req, error);
  if (!body) reply(std::move(error));
  return body;
}
}  // namespace

void add_service_routes(http::Router& router, ThreadService& service, ThreadStore& store,
                        const auth::ApiKeyAuthority& auth, BaseUrl base_url) {
  using verb = http::bhttp::verb;

  router.add(verb::post, "/api/agent/services", [&service, &auth, base_url](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    auto body = body_of(req, reply, false);
    if (!body) return;
    json::ObjectReader r(*body, {"title", "description", "deliverable", "price", "timeline", "tags", "active"});
    ServiceFields fields = read_service_fields(r, true);
    if (!r.ok()) return reply(validation_error(r.errors()));
    if (!fields.active) fields.active = true;
    service.publish_service(*who.agent_id, std::move(fields), req.cause(), [reply, base_url](Result result) {
      if (!succeeded(result.kind)) return reply(refusal(result.kind, result.message));
      reply(Response::json(201, service_to_json(*result.service, base_url())));
    });
  });

  auto update = [&service, &auth, base_url](const Request& req, const Responder& reply, bool deactivate) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    std::string id(req.param("id"));
    if (!is_opaque_id(id, "svc_")) return reply(Response::error(404, "Service not found", "not_found"));
    auto body = body_of(req, reply, deactivate);
    if (!body) return;
    ServiceFields fields;
    if (deactivate) {
      json::ObjectReader r(*body, {});
      if (!r.ok()) return reply(validation_error(r.errors()));
      fields.active = false;
    } else {
      json::ObjectReader r(*body, {"title", "description", "deliverable", "price", "timeline", "tags", "active"});
      fields = read_service_fields(r, false);
      if (r.ok() && body->empty()) r.fail("body", "names no field to update");
      if (!r.ok()) return reply(validation_error(r.errors()));
    }
    service.update_service(id, *who.agent_id, std::move(fields), req.cause(), [reply, base_url](Result result) {
      if (!succeeded(result.kind)) return reply(refusal(result.kind, result.message));
      reply(Response::json(200, service_to_json(*result.service, base_url())));
    });
  };
  router.add(verb::patch, "/api/agent/services/{id}",
             [update](const Request& req, Responder reply) { update(req, reply, false); });
  router.add(verb::post, "/api/agent/services/{id}/deactivate",
             [update](const Request& req, Responder reply) { update(req, reply, true); });

  // Lists: public (active only) or the caller's own (inactive included).
  auto list = [&store, &auth, base_url](const Request& req, const Responder& reply, bool own) {
    ServiceQuery q;
    if (own) {
      auto who = auth::authenticate(req, auth);
      if (!who.agent_id) return reply(std::move(who.failure));
      q.provider_id = *who.agent_id;
    }
    QueryParams params;
    params.limit(q.limit).cursor(q.before_row);
    if (!own) {
      params
          .on("tag",
              [&q](const std::string& value) -> std::optional<std::string> {
                std::string tag = value;
                for (auto& c : tag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                if (!matches(tag, 32, slug_char)) return std::string("is 1..32 of a-z, 0-9 and '-'");
                q.tag = tag;
                return std::nullopt;
              })
          .on("q", [&q](const std::string& value) -> std::optional<std::string> {
            if (value.empty() || value.size() > 100) return std::string("must be 1..100 characters");
            std::string text = value;
            for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            q.text = text;
            return std::nullopt;
          });
    }
    if (!params.read(req, reply)) return;
    auto page = store.list_services(q);
    std::string base = base_url();
    bj::array services;
    for (const auto& s : page.services) services.push_back(service_to_json(s, base));
    reply(Response::json(200, bj::object{{"services", std::move(services)},
                                         {"next_cursor", page.next_before_row ? bj::value(std::to_string(*page.next_before_row))
                                                                              : bj::value(nullptr)}}));
  };
  router.add(verb::get, "/api/services", [list](const Request& req, Responder reply) { list(req, reply, false); });
  router.add(verb::get, "/api/agent/services", [list](const Request& req, Responder reply) { list(req, reply, true); });

  router.add(verb::get, "/api/services/{id}", [&store, &auth, base_url](const Request& req, Responder reply) {
    std::string id(req.param("id"));
    std::optional<Service> s;
    if (is_opaque_id(id, "svc_")) s = store.get_service(id);
    // An inactive service is shown to its owner only.
    if (s && !s->active) {
      auto who = req.header("x-api-key").empty() ? auth::AuthResult{} : auth::authenticate(req, auth);
      if (!who.agent_id || *who.agent_id != s->provider_id) s.reset();
    }
    if (!s) return reply(Response::error(404, "Service not found", "not_found"));
    reply(Response::json(200, service_to_json(*s, base_url())));
  });
}

void add_thread_routes(http::Router& router, ThreadService& service, ThreadStore& store,
                       const auth::ApiKeyAuthority& auth, RowCache& rows) {
  using verb = http::bhttp::verb;
  BaseUrl base_url = [&rows] { return rows.base_url(); };

  auto thread_reply = [base_url](const Responder& reply, unsigned status, const std::string& agent) {
    return [reply, status, agent, base_url](Result result) {
      if (!succeeded(result.kind)) return reply(refusal(result.kind, result.message));
      const Thread& t = *result.thread;
      reply(Response::json(result.kind == Result::Kind::Created ? 201 : status,
                           thread_to_json(t, role_of(t, agent), base_url())));
    };
  };

  router.add(verb::post, "/api/agent/threads", [&service, &auth, thread_reply](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    auto body = body_of(req, reply, false);
    if (!body) return;
    json::ObjectReader r(*body, {"service_id", "mode", "message"});
    auto service_id = r.required_string("service_id", 1, 64);
    auto mode = r.required_string("mode", 1, 64);
    auto message = r.required_string("message", 1, kMaxBody);
    if (mode && *mode != "quick_quote") r.fail("mode", "must be \"quick_quote\"");
    if (!r.ok()) return reply(validation_error(r.errors()));
    if (!is_opaque_id(*service_id, "svc_")) return reply(Response::error(404, "Service not found", "not_found"));
    service.open_thread(*who.agent_id, *service_id, *message, req.cause(), thread_reply(reply, 201, *who.agent_id));
  });

  router.add(verb::post, "/api/agent/threads/{id}/messages",
             [&service, &store, &auth, base_url](const Request& req, Responder reply) {
               auto m = member_prelude(req, reply, auth, store);
               if (!m) return;
               auto body = body_of(req, reply, false);
               if (!body) return;
               json::ObjectReader r(*body, {"type", "body", "terms"});
               auto type_name = r.required_string("type", 1, 32);
               auto text = r.required_string("body", 1, kMaxBody);
               auto terms = read_terms(r);
               std::optional<MessageType> type;
               if (type_name) {
                 type = parse_message_type(*type_name);
                 if (!type) r.fail("type", "must be text, scope, quote or milestone");
               }
               if (type == MessageType::Quote && !r.present("terms"))
                 r.fail("terms", "is required on a quote: {deliverable, budget {amount, token, network}, timeline, "
                                 "acceptance_criteria, revision_boundary}");
               if (type && type != MessageType::Quote && r.present("terms"))
                 r.fail("terms", "is allowed only on a quote message");
               if (!r.ok()) return reply(validation_error(r.errors()));
               service.post_message(m->thread->id, m->agent, *type, *text, terms, req.cause(),
                                    [reply, agent = m->agent, base_url](Result result) {
                                      if (!succeeded(result.kind)) return reply(refusal(result.kind, result.message));
                                      const Thread& t = *result.thread;
                                      reply(Response::json(201, bj::object{{"message", message_to_json(*result.posted)},
                                                                           {"thread", thread_to_json(t, role_of(t, agent), base_url())}}));
                                    });
             });

  router.add(verb::post, "/api/agent/threads/{id}/lock-quote",
             [&service, &store, &auth, base_url](const Request& req, Responder reply) {
               auto m = member_prelude(req, reply, auth, store);
               if (!m) return;
               auto body = body_of(req, reply, true);
               if (!body) return;
               // Empty body or {}: the provider's latest quote; {"message_seq": n}: that quote.
               json::ObjectReader r(*body, {"message_seq"});
               auto seq = r.optional_int("message_seq", 1, std::numeric_limits<long long>::max());
               if (!r.ok()) return reply(validation_error(r.errors()));
               service.lock_quote(m->thread->id, m->agent, seq, req.cause(),
                                  [reply, agent = m->agent, base_url](Result result) {
                                    if (result.kind == Result::Kind::Unprocessable) {
                                      bj::array details;
                                      for (const auto& name : result.missing)
                                        details.push_back(bj::object{{"field", "terms." + name},
                                                                     {"message", "is required to lock the quote"}});
                                      if (result.missing.empty())
                                        details.push_back(bj::object{{"field", "message_seq"}, {"message", result.message}});
                                      return reply(Response::error(422, result.message, result.code, std::move(details)));
                                    }
                                    if (!succeeded(result.kind)) return reply(refusal(result.kind, result.message));
                                    const Thread& t = *result.thread;
                                    reply(Response::json(200, thread_to_json(t, role_of(t, agent), base_url())));
                                  });
             });

  router.add(verb::post, "/api/agent/threads/{id}/close",
             [&service, &store, &auth, thread_reply](const Request& req, Responder reply) {
               auto m = member_prelude(req, reply, auth, store);
               if (!m) return;
               auto body = body_of(req, reply, true);
               if (!body) return;
               json::ObjectReader r(*body, {"reason"});
               auto reason = r.optional_string("reason", 500);
               if (!r.ok()) return reply(validation_error(r.errors()));
               service.close(m->thread->id, m->agent, reason, req.cause(), thread_reply(reply, 200, m->agent));
             });

  router.add(verb::get, "/api/agent/threads/{id}", [&store, &auth, base_url](const Request& req, Responder reply) {
    auto m = member_prelude(req, reply, auth, store);
    if (!m) return;
    int limit = 50;
    long long after = 0;
    if (!QueryParams().limit(limit).cursor(after).read(req, reply)) return;
    auto page = store.list_messages(*m->thread, after, limit);
    bj::object out = thread_to_json(*m->thread, m->role, base_url());
    bj::array messages;
    for (const auto& message : page.messages) messages.push_back(message_to_json(message));
    out["messages"] = std::move(messages);
    out["next_message_cursor"] = page.next_after_seq ? bj::value(std::to_string(*page.next_after_seq)) : bj::value(nullptr);
    reply(Response::json(200, out));
  });

  router.add(verb::get, "/api/agent/threads/{id}/tx-status", [&store, &auth, base_url](const Request& req, Responder reply) {
    auto m = member_prelude(req, reply, auth, store);
    if (!m) return;
    const Thread& t = *m->thread;
    auto linked = [](const std::optional<Linked>& l) -> bj::value {
      if (!l) return nullptr;
      return bj::object{{"id", l->id}, {"status", l->status}};
    };
    bool complete = t.provider_quote_message_id && missing_terms(t.provider_quote_terms).empty();
    reply(Response::json(
        200, bj::object{{"thread_id", t.id},
                        {"status", status_name(t.status)},
                        {"role", role_name(m->role)},
                        {"service_id", t.service_id},
                        {"terms_complete", t.locked_terms.has_value() || complete},
                        {"locked_terms", t.locked_terms ? bj::value(terms_to_json(*t.locked_terms)) : bj::value(nullptr)},
                        {"quote_locked_at", t.quote_locked_at ? bj::value(format_rfc3339(*t.quote_locked_at)) : bj::value(nullptr)},
                        {"offer", linked(t.offer)},
                        {"contract", linked(t.contract)},
                        {"next_action", next_step_to_json(next_step(t, m->role, base_url()))},
                        {"proof_boundary",
                         "Thread status is workflow state only; it is not payment, deposit, GMV, earnings, completion, "
                         "payout, review, ranking, reputation, settlement, or on-chain proof."}}));
  });

  router.add(verb::get, "/api/agent/threads", [&store, &auth, &rows](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    ThreadQuery q;
    q.agent_id = *who.agent_id;
    auto params = QueryParams()
                      .one_of<std::optional<Role>>("mode", {{"outgoing", Role::Requester}, {"incoming", Role::Provider}}, q.as,
                                                   "must be outgoing or incoming")
                      .comma_list<Status>("status", parse_status, q.statuses,
                                          "must be negotiating, quote_locked, offered or closed (or a comma list)")
                      .limit(q.limit)
                      .cursor(q.before_row);
    if (!params.read(req, reply)) return;
    auto page = store.list_threads(q);
    // Rows are rendered once per revision and concatenated.
    Response out;
    out.status = 200;
    out.body.reserve(64 + page.threads.size() * 1600);
    out.body += "{\"threads\":[";
    for (std::size_t i = 0; i < page.threads.size(); ++i) {
      if (i) out.body += ',';
      out.body += *rows.row(page.threads[i], role_of(*page.threads[i], q.agent_id));
    }
    out.body += "],\"next_cursor\":";
    out.body += page.next_before_row ? "\"" + std::to_string(*page.next_before_row) + "\"" : std::string("null");
    out.body += '}';
    reply(std::move(out));
  });
}

}  // namespace al::thread
