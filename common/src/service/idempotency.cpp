#include "common/service/idempotency.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/storage/idempotency_store.hpp"
#include "common/util/ids.hpp"

namespace al::idempotency {
namespace bj = boost::json;
using http::Request;
using http::Responder;
using http::Response;

namespace {

// Requests running under a taken key, by request id: the outbox append finds its request here.
struct Taken {
  std::string service, agent, key, token;
};
std::mutex registry_mutex;
std::unordered_map<std::string, Taken>& registry() {
  static std::unordered_map<std::string, Taken> taken;
  return taken;
}

void canonical(const bj::value& v, std::string& out) {
  if (v.is_object()) {
    const auto& o = v.get_object();
    std::vector<std::pair<std::string_view, const bj::value*>> members;
    members.reserve(o.size());
    for (const auto& m : o) members.emplace_back(m.key(), &m.value());
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    out.push_back('{');
    for (std::size_t i = 0; i < members.size(); ++i) {
      if (i) out.push_back(',');
      out += bj::serialize(bj::string(members[i].first));
      out.push_back(':');
      canonical(*members[i].second, out);
    }
    out.push_back('}');
  } else if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const auto& e : v.get_array()) {
      if (!first) out.push_back(',');
      first = false;
      canonical(e, out);
    }
    out.push_back(']');
  } else {
    out += bj::serialize(v);
  }
}

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

enum class Outcome { Proceed, Replay, Mismatch, InFlight, Lost };
struct Taking {
  Outcome outcome = Outcome::Proceed;
  storage::idempotency::Record stored;
};

}  // namespace

std::string request_fingerprint(std::string_view method, std::string_view path, std::string_view body) {
  std::string text;
  text.reserve(method.size() + path.size() + body.size() + 4);
  text.append(method).append(" ").append(path).append("\n");
  bj::error_code ec;
  bj::value parsed = body.empty() ? bj::value() : bj::parse(body, ec);
  if (!body.empty() && ec) text.append("raw:").append(body);
  else canonical(parsed, text);
  return auth::ApiKeyAuthority::fingerprint(text);
}

void note_effect(storage::Connection& c, const std::string& request_id, const std::string& event_source) {
  if (request_id.empty()) return;
  Taken taken;
  {
    std::lock_guard lock(registry_mutex);
    auto it = registry().find(request_id);
    if (it == registry().end() || it->second.service != event_source) return;
    taken = it->second;
  }
  if (storage::idempotency::mark_committed(c, taken.agent, taken.key, taken.token)) return;
  // Another retry took the key over after this request's lock expired: its effect must not
  // happen twice, so this unit of work is refused.
  throw std::runtime_error("idempotency key " + taken.key + " was taken over by another request");
}

struct Guard::State {
  storage::Database& db;
  const auth::ApiKeyAuthority& auth;
  const Clock& clock;
  std::string service;
  Options options;
};

Guard::Guard(storage::Database& db, const auth::ApiKeyAuthority& auth, const Clock& clock, std::string service,
             Options options)
    : state_(std::make_shared<State>(State{db, auth, clock, std::move(service), options})) {}

Guard::~Guard() = default;

void Guard::purge() {
  long long cutoff = state_->clock.now_ms() - state_->options.retention_ms;
  state_->db.write([cutoff](storage::Connection& c) { storage::idempotency::purge(c, cutoff); },
                   [](std::exception_ptr error) {
                     if (error) log::warn("idempotency key expiry failed");
                   });
}

namespace {

Response replayed(const storage::idempotency::Record& r) {
  Response out;
  out.status = static_cast<unsigned>(*r.status);
  out.content_type = r.content_type;
  out.body = r.body;
  out.headers.emplace_back("idempotent-replayed", "true");
  return out;
}

// Runs the request under its taken key, then keeps its response (effect committed) or frees the key.
void run_taken(const std::shared_ptr<Guard::State>& state, const http::Handler& inner, const Request& req,
               const Responder& reply, Taken taken) {
  auto request = std::make_shared<Request>(req);
  {
    std::lock_guard lock(registry_mutex);
    // A client may send the same x-request-id on concurrent requests: keep registry ids unique.
    if (registry().count(request->request_id)) request->request_id += "." + taken.token.substr(0, 8);
    registry().emplace(request->request_id, taken);
  }
  auto once = std::make_shared<std::atomic<bool>>(false);
  Responder finish = [state, request, taken, reply, once](Response response) {
    if (once->exchange(true)) return;
    {
      std::lock_guard lock(registry_mutex);
      registry().erase(request->request_id);
    }
    auto kept = std::make_shared<Response>(std::move(response));
    state->db.write(
        [state, taken, kept](storage::Connection& c) {
          if (!storage::idempotency::store_response(c, taken.agent, taken.key, taken.token, kept->status,
                                                    kept->content_type, kept->body))
            storage::idempotency::release(c, taken.agent, taken.key, taken.token);
        },
        [reply, kept, taken](std::exception_ptr error) {
          // The effect (if any) is durable either way; without its stored response a retry is told
          // the outcome is unknown (409) rather than running it twice.
          if (error) {
            try {
              std::rethrow_exception(error);
            } catch (const std::exception& e) {
              log::warn("idempotency response not stored", {{"key", taken.key}, {"what", e.what()}});
            }
          }
          reply(std::move(*kept));
        });
  };
  try {
    inner(*request, finish);
  } catch (...) {
    {
      std::lock_guard lock(registry_mutex);
      registry().erase(request->request_id);
    }
    state->db.write([state, taken](storage::Connection& c) { storage::idempotency::release(c, taken.agent, taken.key, taken.token); },
                    [](std::exception_ptr) {});
    throw;
  }
}

}  // namespace

http::Router::Decorator Guard::decorator() {
  auto state = state_;
  return [state](http::bhttp::verb method, const std::string&, http::Handler inner) -> http::Handler {
    using verb = http::bhttp::verb;
    if (method != verb::post && method != verb::patch && method != verb::delete_) return inner;
    return [state, inner = std::move(inner)](const Request& req, Responder reply) {
      auto header = req.headers.find("idempotency-key");
      if (header == req.headers.end()) return inner(req, std::move(reply));
      std::string key(header->value());
      if (!valid_key(key))
        return reply(Response::error(400, "Idempotency-Key must be 1 to 255 visible ASCII characters",
                                     "invalid_idempotency_key"));
      if (req.headers.count("idempotency-key") > 1)
        return reply(Response::error(400, "Send one Idempotency-Key header", "invalid_idempotency_key"));
      // Keys are scoped per agent; an unauthenticated request is the handler's to refuse.
      auto who = auth::authenticate(req, state->auth);
      if (!who.agent_id) return inner(req, std::move(reply));
      Taken taken{state->service, *who.agent_id, key, random_hex(16)};
      std::string hash = request_fingerprint(http::bhttp::to_string(req.method), req.path, req.body);
      auto taking = std::make_shared<Taking>();
      long long now = state->clock.now_ms();
      state->db.write(
          [state, taken, hash, taking, now](storage::Connection& c) {
            *taking = Taking{};
            auto found = storage::idempotency::find(c, taken.agent, taken.key);
            long long until = now + state->options.lock_ms;
            if (!found) {
              storage::idempotency::insert_locked(c, taken.agent, taken.key, hash, taken.token, until, now);
              return;
            }
            taking->stored = *found;
            if (found->request_hash != hash) taking->outcome = Outcome::Mismatch;
            else if (found->state == "done") taking->outcome = Outcome::Replay;
            // Committed without a response: its holder is storing it (a duplicate arrived in that
            // window: in use, retry) — or died before it could, once its lock has run out (lost).
            else if (found->state == "committed")
              taking->outcome = found->locked_until > now ? Outcome::InFlight : Outcome::Lost;
            else if (found->locked_until > now) taking->outcome = Outcome::InFlight;
            else if (!storage::idempotency::take_over(c, taken.agent, taken.key, found->token, taken.token, until))
              taking->outcome = Outcome::InFlight;
          },
          [state, inner, req = std::make_shared<Request>(req), reply, taken, taking](std::exception_ptr error) {
            if (error) return reply(failed_write(error, "idempotency key not taken"));
            switch (taking->outcome) {
              case Outcome::Replay:
                return reply(replayed(taking->stored));
              case Outcome::Mismatch:
                return reply(Response::error(
                    422, "This Idempotency-Key was already used with another request (method, path or body)",
                    "idempotency_key_reused"));
              case Outcome::InFlight: {
                Response r = Response::error(409, "A request with this Idempotency-Key is still in progress; retry later",
                                             "idempotency_key_in_use");
                r.headers.emplace_back("retry-after", "1");
                return reply(std::move(r));
              }
              case Outcome::Lost:
                return reply(Response::error(
                    409,
                    "The request with this Idempotency-Key took effect but its response was lost in a server "
                    "failure; read the resource to see the outcome",
                    "idempotency_response_lost"));
              case Outcome::Proceed:
                return run_taken(state, inner, *req, reply, taken);
            }
          });
    };
  };
}

}  // namespace al::idempotency
