#include "handlers/job_handlers.hpp"

#include "common/json/json.hpp"
#include "common/service/module.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"
#include "events/job_json.hpp"

namespace al::job {
namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

constexpr std::size_t kMaxText = 20000;
constexpr std::size_t kMaxDeliverable = 200000;

bool is_evm_address(std::string_view s) {
  if (s.size() != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  for (std::size_t i = 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

std::optional<std::string> required_address(json::ObjectReader& r, std::string_view name) {
  auto v = r.required_string(name, 1, 64);
  if (v && !is_evm_address(*v)) {
    r.fail(name, "must be an address: 0x followed by 40 hexadecimal digits");
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> agent_id_field(json::ObjectReader& r, std::string_view name, bool required) {
  auto v = required ? r.required_string(name, 1, 64) : r.optional_string(name, 64);
  if (v && v->empty()) {
    r.fail(name, "must not be empty");
    return std::nullopt;
  }
  if (v) {
    for (char c : *v)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
        r.fail(name, "is not a valid agent id");
        return std::nullopt;
      }
  }
  return v;
}

// payableDetail of seed 001; `with_recipient` for requirement memos.
std::optional<PayableDetail> read_payable(json::ObjectReader& r, bool with_recipient) {
  const bj::object* o = r.optional_object("payableDetail");
  if (!o) return std::nullopt;
  auto nested = with_recipient ? r.nested(*o, "payableDetail", {"amount", "tokenAddress", "recipient"})
                               : r.nested(*o, "payableDetail", {"amount", "tokenAddress", "recipient"});
  PayableDetail d;
  auto amount = nested.required_decimal("amount");
  if (amount && amount->is_zero()) nested.fail("amount", "must be greater than 0");
  auto token = required_address(nested, "tokenAddress");
  std::optional<std::string> recipient;
  if (with_recipient) recipient = required_address(nested, "recipient");
  else if (nested.present("recipient")) recipient = required_address(nested, "recipient");
  if (!amount || !token) return std::nullopt;
  d.amount = *amount;
  d.token_address = *token;
  d.recipient = recipient;
  return d;
}

struct Mapping {
  unsigned success = 204;
  unsigned not_found_status = 404;
  std::string not_found_message = "Job not found";
};

void respond(const Result& r, const Responder& reply, const Mapping& m) {
  if (succeeded(r.kind)) {
    if (m.success == 204) return reply(Response::no_content());
    return reply(Response::json(r.kind == Result::Kind::Created ? 201 : m.success, to_json(*r.job)));
  }
  if (r.kind == Result::Kind::NotFound && m.not_found_status == 409)
    return reply(Response::error(409, m.not_found_message, "conflict"));
  if (r.kind == Result::Kind::NotFound && r.message.empty()) return reply(refusal(r.kind, m.not_found_message));
  reply(refusal(r.kind, r.message));
}

// 401, then 400 for the id, then the body (400), then the use case (403 before 409).
struct Prelude {
  std::string agent;
  long long job_id = 0;
  bj::object body;
};

std::optional<Prelude> prelude(const Request& req, const Responder& reply,
                               const auth::ApiKeyAuthority& auth, bool with_body) {
  auto who = auth::authenticate(req, auth);
  if (!who.agent_id) {
    reply(std::move(who.failure));
    return std::nullopt;
  }
  Prelude p;
  p.agent = *who.agent_id;
  if (!parse_positive_int64(req.param("id"), p.job_id)) {
    reply(Response::error(400, "Invalid job ID", "invalid_job_id"));
    return std::nullopt;
  }
  if (with_body) {
    Response error;
    auto body = read_json_object(req, error);
    if (!body) {
      reply(std::move(error));
      return std::nullopt;
    }
    p.body = std::move(*body);
  }
  return p;
}

// Routes whose body is {<flag>: bool, <text>?: string} and that run one action: accept,
// negotiation, evaluate.
void add_decision_route(http::Router& router, std::string pattern, std::string_view flag,
                        std::string_view text, JobService& service, const auth::ApiKeyAuthority& auth,
                        Mapping mapping, std::function<Action(bool, std::optional<std::string>)> make) {
  router.add(http::bhttp::verb::post, std::move(pattern),
             [&service, &auth, flag, text, mapping, make](const Request& req, Responder reply) {
               auto p = prelude(req, reply, auth, true);
               if (!p) return;
               json::ObjectReader r(p->body, {flag, text});
               auto decision = r.required_bool(flag);
               auto message = r.optional_string(text, kMaxText);
               if (!r.ok()) return reply(validation_error(r));
               service.act(p->job_id, p->agent, make(*decision, std::move(message)), req.cause(),
                           [reply, mapping](Result result) { respond(result, reply, mapping); });
             });
}

}  // namespace

void add_job_routes(http::Router& router, JobService& service, JobStore& store,
                    const auth::ApiKeyAuthority& auth, const Clock& clock) {
  using bhttp = http::bhttp::verb;

  // --- provider (seed 001) ---
  add_decision_route(router, "/api/agents/providers/jobs/{id}/accept", "accept", "reason", service, auth,
                     {204, 409, std::string(kNotInRequest)},
                     [](bool accept, std::optional<std::string> text) -> Action { return ProviderAccept{accept, std::move(text)}; });
  add_decision_route(router, "/api/agents/providers/jobs/{id}/negotiation", "accept", "content", service, auth,
                     {204, 409, std::string(kNotInNegotiation)},
                     [](bool accept, std::optional<std::string> text) -> Action { return ProviderNegotiation{accept, std::move(text)}; });

  router.add(bhttp::post, "/api/agents/providers/jobs/{id}/requirement", [&](const Request& req, Responder reply) {
    auto p = prelude(req, reply, auth, true);
    if (!p) return;
    json::ObjectReader r(p->body, {"content", "payableDetail"});
    auto content = r.required_string("content", 1, kMaxText);
    auto payable = read_payable(r, true);
    if (!r.ok()) return reply(validation_error(r));
    service.act(p->job_id, p->agent, ProviderRequirement{*content, payable}, req.cause(),
                [reply](Result result) {
                  respond(result, reply, {204, 409, std::string(kNotInNegotiationOrTransaction)});
                });
  });

  router.add(bhttp::post, "/api/agents/providers/jobs/{id}/deliverable", [&](const Request& req, Responder reply) {
    auto p = prelude(req, reply, auth, true);
    if (!p) return;
    json::ObjectReader r(p->body, {"deliverable", "payableDetail"});
    std::string deliverable;
    const bj::value* d = r.present("deliverable");
    if (!d) {
      r.fail("deliverable", "is required");
    } else if (d->is_string()) {
      if (d->get_string().empty()) r.fail("deliverable", "must not be empty");
      deliverable = d->get_string();
    } else if (d->is_object()) {
      auto nested = r.nested(d->get_object(), "deliverable", {"type", "value"});
      nested.required_string("type", 1, 200);
      if (!d->get_object().contains("value")) nested.fail("value", "is required");
      // Seed: structured deliverables are JSON-serialized before storage.
      deliverable = bj::serialize(*d);
    } else {
      r.fail("deliverable", "must be a string or an object {type, value}");
    }
    if (deliverable.size() > kMaxDeliverable) r.fail("deliverable", "is too large");
    auto payable = read_payable(r, false);
    if (!r.ok()) return reply(validation_error(r));
    service.act(p->job_id, p->agent, ProviderDeliverable{deliverable, payable}, req.cause(),
                [reply](Result result) { respond(result, reply, {204, 409, std::string(kNotInTransaction)}); });
  });

  // --- client side ---
  router.add(bhttp::post, "/api/agents/jobs", [&](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"providerId", "serviceRequirement", "budget", "tokenAddress", "expiredAt",
                                 "evaluatorId", "clientOperationId"});
    CreateJob c;
    c.client_id = *who.agent_id;
    auto provider = agent_id_field(r, "providerId", true);
    auto requirement = r.required_string("serviceRequirement", 1, kMaxText);
    auto budget = r.required_decimal("budget");
    auto token = required_address(r, "tokenAddress");
    auto evaluator = agent_id_field(r, "evaluatorId", false);
    auto operation = r.optional_string("clientOperationId", 128);
    if (operation && operation->empty()) r.fail("clientOperationId", "must not be empty");
    std::optional<Millis> expires;
    if (auto e = r.optional_string("expiredAt", 64)) {
      expires = parse_rfc3339(*e);
      // Up to the end of year 9999 UTC, so it always prints back as an RFC 3339 date-time.
      constexpr Millis kLatest = 253402300799999;
      if (!expires) r.fail("expiredAt", "must be an RFC 3339 date-time such as 2026-12-01T12:00:00Z");
      else if (*expires <= clock.now_ms()) r.fail("expiredAt", "must be in the future");
      else if (*expires > kLatest) r.fail("expiredAt", "must be before the year 10000");
    }
    if (provider && *provider == c.client_id) r.fail("providerId", "must not be the client itself");
    if (!r.ok()) return reply(validation_error(r));
    c.provider_id = *provider;
    c.service_requirement = *requirement;
    c.budget = *budget;
    c.token_address = *token;
    c.evaluator_id = evaluator;
    c.client_operation_id = operation;
    c.expired_at = expires;
    service.create(std::move(c), req.cause(), [reply](Result result) {
      if (result.kind == Result::Kind::Unchanged) result.kind = Result::Kind::Created;  // same response again
      if (result.kind == Result::Kind::Invalid) return reply(Response::error(422, result.message, "unknown_agent"));
      if (result.kind == Result::Kind::Unprocessable && result.message == kOperationReused) {
        bj::object detail{{"field", "clientOperationId"}, {"message", "was already used with other parameters"}};
        return reply(Response::error(422, result.message, "client_operation_reused", bj::array{std::move(detail)}));
      }
      if (result.kind == Result::Kind::Unprocessable) {  // the parties break a rule (check_parties)
        bool evaluator = result.message == kEvaluatorIsProvider;
        bj::object detail{{"field", evaluator ? "evaluatorId" : "providerId"},
                          {"message", evaluator ? "must not be the provider" : "must not be the client itself"}};
        return reply(Response::error(422, result.message, evaluator ? "evaluator_is_provider" : "client_is_provider",
                                     bj::array{std::move(detail)}));
      }
      respond(result, reply, {201, 404, "Job not found"});
    });
  });

  router.add(bhttp::get, "/api/agents/jobs/{id}", [&](const Request& req, Responder reply) {
    auto p = prelude(req, reply, auth, false);
    if (!p) return;
    auto job = store.get(p->job_id);
    if (!job) return reply(Response::error(404, "Job not found", "not_found"));
    if (!is_party(*job, p->agent)) return reply(Response::error(403, "Not authorized to view this job", "forbidden"));
    reply(Response::json(200, to_json(*job)));
  });

  router.add(bhttp::get, "/api/agents/jobs", [&](const Request& req, Responder reply) {
    auto who = auth::authenticate(req, auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    ListQuery q;
    q.agent_id = *who.agent_id;
    auto params = QueryParams()
                      .one_of<std::optional<std::string>>("role", {{"client", "client"}, {"provider", "provider"}, {"evaluator", "evaluator"}},
                                                          q.role, "must be client, provider or evaluator")
                      .on("phase",
                          [&q](const std::string& value) -> std::optional<std::string> {
                            if (value.size() != 1 || value[0] < '0' || value[0] > '6') return std::string("must be 0..6");
                            q.phase = value[0] - '0';
                            return std::nullopt;
                          })
                      .limit(q.limit)
                      .cursor(q.before_id);
    if (!params.read(req, reply)) return;
    auto page = store.list(q);
    bj::array jobs;
    for (const auto& job : page.jobs) jobs.push_back(to_json(job));
    reply(Response::json(200, bj::object{{"jobs", std::move(jobs)},
                                         {"nextCursor", page.next_before_id ? bj::value(std::to_string(*page.next_before_id)) : nullptr}}));
  });

  router.add(bhttp::post, "/api/agents/jobs/{id}/escrow", [&](const Request& req, Responder reply) {
    auto p = prelude(req, reply, auth, true);
    if (!p) return;
    json::ObjectReader r(p->body, {"txHash"});
    auto hash = r.required_string("txHash", 1, 100);
    if (hash && !chain::is_tx_hash(*hash)) r.fail("txHash", "must be 0x followed by 64 hexadecimal digits");
    if (!r.ok()) return reply(validation_error(r));
    std::string normalized = *hash;
    for (auto& ch : normalized) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    service.escrow(p->job_id, p->agent, normalized, req.cause(),
                   [reply](Result result) { respond(result, reply, {200, 404, "Job not found"}); });
  });

  add_decision_route(router, "/api/agents/jobs/{id}/evaluate", "accept", "reason", service, auth,
                     {204, 404, "Job not found"},
                     [](bool accept, std::optional<std::string> text) -> Action { return Evaluate{accept, std::move(text)}; });

  router.add(bhttp::post, "/api/agents/jobs/{id}/memos/{memoId}/approve", [&](const Request& req, Responder reply) {
    auto p = prelude(req, reply, auth, true);
    if (!p) return;
    long long memo_id = 0;
    if (!parse_positive_int64(req.param("memoId"), memo_id))
      return reply(Response::error(400, "Invalid memo ID", "invalid_memo_id"));
    json::ObjectReader r(p->body, {"approve", "reason"});
    auto approve = r.required_bool("approve");
    auto reason = r.optional_string("reason", kMaxText);
    if (!r.ok()) return reply(validation_error(r));
    service.act(p->job_id, p->agent, DecideMemo{memo_id, *approve, reason}, req.cause(),
                [reply](Result result) { respond(result, reply, {204, 404, "Job not found"}); });
  });
}

}  // namespace al::job
