#pragma once
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "common/chain/chain.hpp"
#include "common/clock/clock.hpp"
#include "common/service/module.hpp"
#include "domain/job.hpp"
#include "storage/job_store.hpp"

namespace al::job {

struct CreateJob {
  std::string client_id;
  std::string provider_id;
  std::optional<std::string> evaluator_id;
  std::string service_requirement;
  Decimal budget;
  std::string token_address;
  std::optional<Millis> expired_at;
  std::optional<std::string> client_operation_id;
  std::optional<std::string> contract_id;
};

struct ProviderAccept { bool accept; std::optional<std::string> reason; };
struct ProviderNegotiation { bool accept; std::optional<std::string> content; };
struct ProviderRequirement { std::string content; std::optional<PayableDetail> payable; };
struct ProviderDeliverable { std::string deliverable; std::optional<PayableDetail> payable; };
struct Evaluate { bool accept; std::optional<std::string> reason; };
struct DecideMemo { long long memo_id; bool approve; std::optional<std::string> reason; };
struct Expire {};
using Action = std::variant<ProviderAccept, ProviderNegotiation, ProviderRequirement,
                            ProviderDeliverable, Evaluate, DecideMemo, Expire>;

struct Result {
  using Kind = ResultKind;
  Kind kind = Kind::Ok;
  std::string message;
  std::optional<Job> job;
};

struct JobServiceOptions {
  Millis default_ttl_ms = 7LL * 24 * 3600 * 1000;
  Millis agent_wait_ms = 5000;  // how long create waits for a just-registered agent to arrive
  std::string source = "job-service";
};

// The job use cases. Each runs in one transaction: state change and its events together.
class JobService {
 public:
  using Callback = std::function<void(Result)>;
  JobService(JobStore& store, chain::ChainAdapter& chain, const Clock& clock, Scheduler& scheduler,
             JobServiceOptions options = {});

  void create(CreateJob command, trace::Cause cause, Callback done);
  void act(long long job_id, std::string actor, Action action, trace::Cause cause, Callback done);
  void escrow(long long job_id, std::string actor, std::string tx_hash, trace::Cause cause, Callback done);
  // Expires due jobs; returns how many it queued.
  int expire_due(int limit = 500);

  // offer-service's contract events, inside the consumer's transaction: contract.created makes the
  // provider job (phase NEGOTIATION, escrow not yet verified), contract.funded verifies its escrow.
  // Idempotent: a job per contract, escrow once.
  void follow_contract(JobTx& tx, const events::CloudEvent& event);

 private:
  // The wait for a just-registered agent is bounded in real (steady) time, not domain time.
  void try_create(std::shared_ptr<CreateJob> command, trace::Cause cause,
                  std::chrono::steady_clock::time_point give_up_at, Callback done);
  std::optional<Job> load_for_action(JobTx& tx, long long job_id, Millis now, Result& result,
                                     std::vector<Change>& changes);
  void record(JobTx& tx, Job& job, const std::vector<Change>& changes, const trace::Cause& cause);
  JobStore& store_;
  chain::ChainAdapter& chain_;
  const Clock& clock_;
  Scheduler& scheduler_;
  JobServiceOptions options_;
};

}  // namespace al::job
