#include "thread_module.hpp"

#include "common/events/outbox.hpp"
#include "common/json/json.hpp"
#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/service/idempotency.hpp"
#include "common/service/lifecycle.hpp"
#include "common/util/ids.hpp"
#include "common/util/time_format.hpp"
#include "common/service/key_revocations.hpp"
#include "handlers/key_handlers.hpp"
#include "handlers/thread_handlers.hpp"
#include "service/key_service.hpp"
#include "service/thread_service.hpp"
#include "storage/caching_thread_store.hpp"
#include "storage/sql_thread_store.hpp"

namespace al::thread_service {

std::vector<ConfigEntry> thread_config_entries() {
  return {
      {"threads.max_messages", "1000", "Messages one negotiation thread may hold (more: 409).", {}},
      {"auth.key_rotation_grace_ms", "86400000",
       "How long a key replaced through POST /api/agent/keys {\"replaces\"} keeps working (0: it stops at once).", {}},
      {"auth.max_active_keys", "10", "API keys one agent may have active at once (more: 422 too_many_keys).", {}},
  };
}

namespace {
using http::Request;
using http::Responder;
using http::Response;
namespace bj = boost::json;

bj::object agent_json(const std::string& id, const std::string& name,
                      const std::optional<std::string>& description, Millis created_at) {
  return {{"agent_id", id},
          {"name", name},
          {"description", description ? bj::value(*description) : nullptr},
          {"created_at", format_rfc3339(created_at)}};
}

class ThreadModule final : public Module {
 public:
  explicit ThreadModule(Runtime& rt)
      : rt_(rt),
        db_(storage::open_database(rt.storage, "thread-service")),
        sql_store_(*db_, rt.clock),
        store_(sql_store_, rt.storage.read_cache ? 500'000 : 0),
        rows_(rt.public_base_url),
        service_(store_, rt.clock, thread::ThreadServiceOptions{rt.config.get_int("threads.max_messages")}),
        relay_(*db_, rt.kafka_bootstrap, rt.clock, &rt.metrics,
               events::RelayOptions{.name = "thread-service",
                                    .replay_published_on_start = rt.embedded_kafka,
                                    .retention_ms = rt.config.get_int("outbox.retention_ms"),
                                    .transactional = rt.kafka_transactions},
               rt.producer_settings),
        // The thread follows its offer and contract (offer-service) through this idempotent consumer.
        offers_("thread-service.offers", rt.kafka_bootstrap, "thread-service",
                {"agentlancer.offers.v1", "agentlancer.contracts.v1"}, *db_, rt.clock,
                events::ConsumerLoop::ApplyThen{[this](storage::Connection& c, const events::CloudEvent& e) {
                  auto tx = thread::SqlThreadStore::tx_on(c, rt_.clock);
                  // The cache learns of the change only once it has committed.
                  return store_.recording(*tx, [&](thread::ThreadTx& t) { service_.follow(t, e); });
                }},
                &rt.metrics, rt.consumer_settings),
        idempotency_(*db_, rt.auth, rt.clock, "thread-service",
                     idempotency::Options{rt.config.get_int("idempotency.retention_ms"), rt.config.get_int("idempotency.lock_ms")}),
        revocations_(*db_, rt.auth.revocations(), rt.clock),
        keys_(*db_, rt.auth, revocations_, rt.clock,
              thread::KeyOptions{rt.config.get_int("auth.key_rotation_grace_ms"),
                                 static_cast<int>(rt.config.get_int("auth.max_active_keys"))}),
        lifecycle_("thread-service", *db_, rt.workers.context()) {
    if (rt.config.get_int("threads.max_messages") < 1) throw ConfigError("threads.max_messages must be at least 1");
    if (rt.config.get_int("auth.key_rotation_grace_ms") < 0) throw ConfigError("auth.key_rotation_grace_ms must be >= 0");
    if (rt.config.get_int("auth.max_active_keys") < 1) throw ConfigError("auth.max_active_keys must be at least 1");
    db_->migrate(thread::thread_migrations());
    revocations_.load_all();
    lifecycle_.every("idempotency key expiry", std::chrono::minutes(10), [this] { idempotency_.purge(); });
    lifecycle_.every("key revocations", key_revocations::kPollInterval, [this] { revocations_.poll(); });
    lifecycle_.every("key last use", std::chrono::minutes(1), [this] { keys_.record_last_used(); });
    lifecycle_.relay(relay_, rt.metrics).consumer(offers_);
  }

  std::string name() const override { return "thread-service"; }

  void add_routes(http::Router& router) override {
    using verb = http::bhttp::verb;
    {
      http::Router::DecoratorScope idempotent(router, idempotency_.decorator());
      router.add(verb::post, "/api/agent/signup", [this](const Request& req, Responder reply) { signup(req, reply); });
      router.add(verb::get, "/api/agent/me", [this](const Request& req, Responder reply) { me(req, reply); });
      thread::add_service_routes(router, service_, store_, rt_.auth, rt_.public_base_url);
      thread::add_thread_routes(router, service_, store_, rt_.auth, rows_);
      thread::add_key_routes(router, keys_, rt_.auth);
    }
    thread::add_key_creation_route(router, keys_, rt_.auth);
  }

  void start() override { lifecycle_.start(); }
  void stop() override { lifecycle_.stop(); }
  bool ready(std::string& reason, bool check_broker) override { return lifecycle_.ready(reason, check_broker); }

 private:
  void signup(const Request& req, const Responder& reply) {
    Response error;
    auto body = read_json_object(req, error);
    if (!body) return reply(std::move(error));
    json::ObjectReader r(*body, {"name", "description"});
    auto name = r.required_string("name", 1, 100);
    auto description = r.optional_string("description", 2000);
    if (!r.ok())
      return reply(Response::error(400, "Validation error", "validation_error", json::errors_to_json(r.errors())));
    std::string agent_id = new_opaque_id("agt_");
    std::string api_key = rt_.auth.issue(agent_id);
    Millis now = rt_.clock.now_ms();
    events::CloudEvent e;
    e.id = new_uuid_v7(now);
    e.type = "agent.registered";
    e.source = "thread-service";
    e.subject = agent_id;
    e.time = now;
    e.seq = 1;
    e.audience = {agent_id};
    e.set_cause(req.cause());
    e.data = agent_json(agent_id, *name, description, now);
    sql_store_.add_agent(
        {agent_id, *name, description, auth::ApiKeyAuthority::fingerprint(api_key), now,
         auth::ApiKeyAuthority::key_id(api_key)},
        e,
        [=](std::exception_ptr err) {
          if (err) return reply(failed_write(err, "signup failed"));
          bj::object out = agent_json(agent_id, *name, description, now);
          out["api_key"] = api_key;
          reply(Response::json(201, out));
        });
  }

  void me(const Request& req, const Responder& reply) {
    auto who = auth::authenticate(req, rt_.auth);
    if (!who.agent_id) return reply(std::move(who.failure));
    auto found = sql_store_.find_agent(*who.agent_id);
    if (!found) return reply(Response::error(404, "Agent not found", "not_found"));
    reply(Response::json(200, agent_json(found->agent_id, found->name, found->description, found->created_at)));
  }

  Runtime& rt_;
  std::unique_ptr<storage::Database> db_;
  thread::SqlThreadStore sql_store_;
  thread::CachingThreadStore store_;  // thread reads from memory; writes go through to the database
  thread::RowCache rows_;
  thread::ThreadService service_;
  events::OutboxRelay relay_;
  events::ConsumerLoop offers_;
  idempotency::Guard idempotency_;
  key_revocations::Sync revocations_;
  thread::KeyService keys_;
  Lifecycle lifecycle_;
};
}  // namespace

std::unique_ptr<Module> make_thread_module(Runtime& runtime) {
  return std::make_unique<ThreadModule>(runtime);
}

}  // namespace al::thread_service
