#include "job_module.hpp"

#include <boost/asio/steady_timer.hpp>

#include "common/chain/chain.hpp"
#include "common/events/outbox.hpp"
#include "common/service/idempotency.hpp"
#include "common/service/key_revocations.hpp"
#include "common/service/lifecycle.hpp"
#include "common/log/log.hpp"
#include "handlers/job_handlers.hpp"
#include "service/job_service.hpp"
#include "storage/caching_job_store.hpp"
#include "storage/sql_job_store.hpp"

namespace al::job {

std::vector<ConfigEntry> job_config_entries() {
  return {
      {"job.default_ttl_ms", "604800000", "Expiry of a job created without `expiredAt` (ms; default 7 days).", {}},
      {"job.expiry_sweep_ms", "1000", "How often unfinished jobs past `expiredAt` are moved to EXPIRED (ms).", {}},
      {"job.agent_wait_ms", "5000", "How long job creation waits for a just-registered provider/evaluator to reach this service (ms).", {}},
      {"job.chain_adapter", "sandbox", "Escrow verification: `sandbox` (embedded default; accepts any well-formed tx hash except all zeros).", {}},
  };
}

namespace {
class JobModule final : public Module {
 public:
  explicit JobModule(Runtime& rt)
      : rt_(rt),
        db_(storage::open_database(rt.storage, "job-service")),
        sql_store_(*db_, rt.clock),
        store_(sql_store_, rt.storage.read_cache ? 200'000 : 0),
        service_(store_, chain_, rt.clock, rt.scheduler,
                 JobServiceOptions{rt.config.get_int("job.default_ttl_ms"), rt.config.get_int("job.agent_wait_ms")}),
        relay_(*db_, rt.kafka_bootstrap, rt.clock, &rt.metrics,
               events::RelayOptions{.name = "job-service",
                                    .replay_published_on_start = rt.embedded_kafka,
                                    .retention_ms = rt.config.get_int("outbox.retention_ms"),
                                    .transactional = rt.kafka_transactions},
               rt.producer_settings),
        agents_("job-service.agents", rt.kafka_bootstrap, "job-service", {"agentlancer.agents.v1"}, *db_, rt.clock,
                events::ConsumerLoop::ApplyThen{[this](storage::Connection& c, const events::CloudEvent& e) {
                  SqlJobStore::apply_agent_event(c, e);
                  return revocations_.apply(c, e);
                }},
                &rt.metrics, rt.consumer_settings),
        // A contract (offer-service) becomes this service's provider job; its funding, the escrow.
        contracts_("job-service.contracts", rt.kafka_bootstrap, "job-service-contracts", {"agentlancer.contracts.v1"}, *db_,
                   rt.clock,
                   events::ConsumerLoop::ApplyThen{[this](storage::Connection& c, const events::CloudEvent& e) {
                     auto tx = SqlJobStore::tx_on(c, rt_.clock);
                     return store_.recording(*tx, [&](JobTx& t) { service_.follow_contract(t, e); });
                   }},
                   &rt.metrics, rt.consumer_settings),
        idempotency_(*db_, rt.auth, rt.clock, "job-service",
                     idempotency::Options{rt.config.get_int("idempotency.retention_ms"), rt.config.get_int("idempotency.lock_ms")}),
        revocations_(*db_, rt.auth.revocations(), rt.clock),
        lifecycle_("job-service", *db_, rt.workers.context()) {
    if (rt.config.get("job.chain_adapter") != "sandbox")
      throw ConfigError("job.chain_adapter: only \"sandbox\" is available in this build");
    db_->migrate(job_migrations());
    revocations_.load_all();
    lifecycle_.every("key revocations", key_revocations::kPollInterval, [this] { revocations_.poll(); });
    lifecycle_.every("idempotency key expiry", std::chrono::minutes(10), [this] { idempotency_.purge(); });
    lifecycle_.relay(relay_, rt.metrics)
        .consumer(agents_)
        .consumer(contracts_)
        .every("expiry sweep", std::chrono::milliseconds(rt.config.get_int("job.expiry_sweep_ms")),
               [this] { service_.expire_due(); });
  }

  std::string name() const override { return "job-service"; }
  void add_routes(http::Router& router) override {
    http::Router::DecoratorScope idempotent(router, idempotency_.decorator());
    add_job_routes(router, service_, store_, rt_.auth, rt_.clock);
  }

  void start() override { lifecycle_.start(); }
  void stop() override { lifecycle_.stop(); }
  bool ready(std::string& reason, bool check_broker) override { return lifecycle_.ready(reason, check_broker); }

 private:
  Runtime& rt_;
  chain::SandboxChain chain_;
  std::unique_ptr<storage::Database> db_;
  SqlJobStore sql_store_;
  CachingJobStore store_;  // reads from memory; writes go through to the database
  JobService service_;
  events::OutboxRelay relay_;
  events::ConsumerLoop agents_;
  events::ConsumerLoop contracts_;
  idempotency::Guard idempotency_;
  key_revocations::Sync revocations_;
  Lifecycle lifecycle_;
};
}  // namespace

std::unique_ptr<Module> make_job_module(Runtime& runtime) { return std::make_unique<JobModule>(runtime); }

}  // namespace al::job
