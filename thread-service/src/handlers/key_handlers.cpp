#include "handlers/key_handlers.hpp"

#include "common/json/json.hpp"
#include "common/service/durable.hpp"
#include "common/service/module.hpp"
#include "common/util/time_format.hpp"

namespace al::thread {
namespace {
namespace bj = boost::json;
using http::Request;
using http::Responder;
using http::Response;
using verb = http::bhttp::verb;

bj::value time_or_null(const std::optional<Millis>& at) { return at ? bj::value(format_rfc3339(*at)) : bj::value(nullptr); }
bj::value text_or_null(const std::optional<std::string>& s) { return s ? bj::value(*s) : bj::value(nullptr); }

bj::object key_json(const keys::Key& key, const std::string& caller_key_id) {
  return {{"key_id", key.key_id},
          {"fingerprint", key.fingerprint},
          {"created_at", format_rfc3339(key.created_at)},
          {"created_by", text_or_null(key.created_by)},
          {"last_used_at", time_or_null(key.last_used_at)},
          {"expires_at", time_or_null(key.expires_at)},
          {"current", key.key_id == caller_key_id}};
}

Response key_not_found() { return Response::error(404, "API key not found", "key_not_found"); }
}  // namespace

void add_key_creation_route(http::Router& router, KeyService& keys, const auth::ApiKeyAuthority& auth) {
  router.add(verb::post, "/api/agent/keys", [&keys, &auth](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    std::optional<std::string> replaces;
    if (!req.body.empty()) {
      Response error;
      auto body = read_json_object(req, error);
      if (!body) return reply(std::move(error));
      json::ObjectReader r(*body, {"replaces"});
      replaces = r.optional_string("replaces", 64);
      if (!r.ok())
        return reply(Response::error(400, "Validation error", "validation_error", json::errors_to_json(r.errors())));
    }
    int limit = keys.options().max_active_keys;
    keys.create(*who.agent_id, who.key_id, replaces, req.cause(),
                [reply, caller = who.key_id, limit](std::exception_ptr error, KeyService::Created created) {
                  if (error) return reply(failed_write(error, "creating an API key failed"));
                  switch (created.refusal) {
                    case keys::Refusal::KeyNotFound:
                      return reply(key_not_found());
                    case keys::Refusal::TooManyKeys:
                      return reply(Response::error(
                          422, "Too many active API keys (limit " + std::to_string(limit) + "); revoke one first",
                          "too_many_keys"));
                    case keys::Refusal::None:
                      break;
                  }
                  bj::object out = key_json(created.key, caller);
                  out.erase("current");
                  out.erase("last_used_at");
                  out.erase("expires_at");
                  out["api_key"] = created.api_key;
                  out["replaced_key"] = created.replaced ? bj::value(bj::object{{"key_id", created.replaced->key_id},
                                                                                {"expires_at", format_rfc3339(*created.replaced->expires_at)}})
                                                         : bj::value(nullptr);
                  reply(Response::json(201, out));
                });
  });
}

void add_key_routes(http::Router& router, KeyService& keys, const auth::ApiKeyAuthority& auth) {
  router.add(verb::get, "/api/agent/keys", [&keys, &auth](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    bj::array list;
    for (const auto& key : keys.active_keys(*who.agent_id)) list.push_back(key_json(key, who.key_id));
    reply(Response::json(200, bj::object{{"keys", std::move(list)}}));
  });
  router.add(verb::delete_, "/api/agent/keys/{key_id}", [&keys, &auth](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    keys.revoke(*who.agent_id, std::string(req.param("key_id")), req.cause(),
                [reply](std::exception_ptr error, keys::Refusal refusal) {
                  if (error) return reply(failed_write(error, "revoking an API key failed"));
                  if (refusal != keys::Refusal::None) return reply(key_not_found());
                  reply(Response::no_content());
                });
  });
}

}  // namespace al::thread
