#include "service/job_service.hpp"

#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/util/ids.hpp"
#include "events/job_json.hpp"

namespace al::job {
namespace {
std::function<void(std::exception_ptr)> finish(std::shared_ptr<Result> result, JobService::Callback done) {
  return reply_when_durable<Result>(std::move(result), std::move(done),
                                    Result{Result::Kind::Internal, "Internal error", std::nullopt},
                                    "job transaction failed");
}
}  // namespace

JobService::JobService(JobStore& store, chain::ChainAdapter& chain, const Clock& clock,
                       Scheduler& scheduler, JobServiceOptions options)
    : store_(store), chain_(chain), clock_(clock), scheduler_(scheduler), options_(std::move(options)) {}

void JobService::record(JobTx& tx, Job& job, const std::vector<Change>& changes,
                        const trace::Cause& cause) {
  if (changes.empty()) return;
  long long first_seq = job.version + 1;
  job.version += static_cast<long long>(changes.size());
  if (job.id == 0) tx.insert(job); else tx.save(job);
  boost::json::object snapshot = to_json(job);
  std::vector<std::string> audience = {job.client_id, job.provider_id};
  if (job.evaluator_id && *job.evaluator_id != job.client_id) audience.push_back(*job.evaluator_id);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    events::CloudEvent e;
    e.id = new_uuid_v7(clock_.now_ms());
    e.type = c.event_type;
    e.source = options_.source;
    e.subject = std::to_string(job.id);
    e.time = clock_.now_ms();
    e.seq = first_seq + static_cast<long long>(i);
    e.audience = audience;
    e.set_cause(cause);
    boost::json::object change{{"action", c.action}};
    if (c.from) change["from"] = static_cast<int>(*c.from);
    if (c.to) change["to"] = static_cast<int>(*c.to);
    if (c.reason) change["reason"] = *c.reason;
    if (c.memo_index) change["memo"] = to_json(job.memos[*c.memo_index]);
    e.data = {{"job", snapshot}, {"change", std::move(change)}};
    tx.publish(e);
  }
}

void JobService::create(CreateJob command, trace::Cause cause, Callback done) {
  Outcome parties = check_parties(command.client_id, command.provider_id, command.evaluator_id);
  if (parties.verdict != Verdict::Applied) return done(Result{kind_of(parties.verdict), parties.message, std::nullopt});
  auto shared = std::make_shared<CreateJob>(std::move(command));
  try_create(shared, std::move(cause),
             std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.agent_wait_ms), std::move(done));
}

void JobService::try_create(std::shared_ptr<CreateJob> command, trace::Cause cause,
                            std::chrono::steady_clock::time_point give_up_at, Callback done) {
  auto result = std::make_shared<Result>();
  auto unknown_agent = std::make_shared<std::string>();
  store_.transact(
      [this, command, result, unknown_agent, cause](JobTx& tx) {
        if (command->client_operation_id) {
          if (auto existing = tx.find_by_operation(command->client_id, *command->client_operation_id)) {
            // The same operation again gets the same job; other parameters under its id are a
            // client bug that must not be silently dropped.
            bool same = existing->provider_id == command->provider_id &&
                        existing->evaluator_id == command->evaluator_id &&
                        existing->service_requirement == command->service_requirement &&
                        existing->budget == command->budget && existing->token_address == command->token_address &&
                        (!command->expired_at || *command->expired_at == existing->expired_at);
            if (!same) {
              result->kind = Result::Kind::Unprocessable;
              result->message = std::string(kOperationReused);
              return;
            }
            result->kind = Result::Kind::Unchanged;
            result->job = std::move(existing);
            return;
          }
        }
        if (!tx.agent_known(command->provider_id)) {
          *unknown_agent = "providerId";
          return;
        }
        if (command->evaluator_id && *command->evaluator_id != command->client_id &&
            !tx.agent_known(*command->evaluator_id)) {
          *unknown_agent = "evaluatorId";
          return;
        }
        Millis now = clock_.now_ms();
        Job job;
        job.phase = Phase::Request;
        job.client_id = command->client_id;
        job.provider_id = command->provider_id;
        job.evaluator_id = command->evaluator_id;
        job.service_requirement = command->service_requirement;
        job.budget = command->budget;
        job.token_address = command->token_address;
        job.client_operation_id = command->client_operation_id;
        job.contract_id = command->contract_id;
        job.expired_at = command->expired_at ? *command->expired_at : now + options_.default_ttl_ms;
        job.created_at = now;
        job.updated_at = now;
        record(tx, job, {Change{"job.created", "create", std::nullopt, Phase::Request, std::nullopt, std::nullopt}}, cause);
        result->kind = Result::Kind::Created;
        result->job = std::move(job);
      },
      [this, command, result, unknown_agent, cause, give_up_at, done](std::exception_ptr error) {
        if (!error && !unknown_agent->empty()) {
          // The agent may have signed up a moment ago and its event not arrived yet: wait briefly.
          if (std::chrono::steady_clock::now() < give_up_at) {
            scheduler_.after(std::chrono::milliseconds(25), [this, command, cause, give_up_at, done] {
              try_create(command, cause, give_up_at, done);
            });
            return;
          }
          done(Result{Result::Kind::Invalid,
                      "Unknown " + *unknown_agent + ": no agent with that id is registered",
                      std::nullopt});
          return;
        }
        finish(result, done)(error);
      });
}

// Loads the job an action applies to (NotFound when missing) and applies a due expiry first, so
// nothing can happen to a job past its expiry.
std::optional<Job> JobService::load_for_action(JobTx& tx, long long job_id, Millis now, Result& result,
                                               std::vector<Change>& changes) {
  auto job = tx.load(job_id);
  if (!job) {
    result.kind = Result::Kind::NotFound;
    return std::nullopt;
  }
  changes = expire_if_due(*job, now).changes;
  return job;
}

void JobService::act(long long job_id, std::string actor, Action action, trace::Cause cause,
                     Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, job_id, actor = std::move(actor), action = std::move(action), result,
       cause = std::move(cause)](JobTx& tx) {
        std::vector<Change> changes;
        Millis now = clock_.now_ms();
        auto job = load_for_action(tx, job_id, now, *result, changes);
        if (!job) return;
        Outcome outcome = std::visit(
            [&](const auto& a) -> Outcome {
              using T = std::decay_t<decltype(a)>;
              if constexpr (std::is_same_v<T, ProviderAccept>) return provider_accept(*job, actor, a.accept, a.reason, now);
              else if constexpr (std::is_same_v<T, ProviderNegotiation>) return provider_negotiation(*job, actor, a.accept, a.content, now);
              else if constexpr (std::is_same_v<T, ProviderRequirement>) return provider_requirement(*job, actor, a.content, a.payable, now);
              else if constexpr (std::is_same_v<T, ProviderDeliverable>) return provider_deliverable(*job, actor, a.deliverable, a.payable, now);
              else if constexpr (std::is_same_v<T, Evaluate>) return evaluate(*job, actor, a.accept, a.reason, now);
              else if constexpr (std::is_same_v<T, DecideMemo>) return decide_memo(*job, actor, a.memo_id, a.approve, a.reason, now);
              else return changes.empty() ? Outcome::unchanged() : Outcome{};
            },
            action);
        result->kind = kind_of(outcome.verdict);
        result->message = outcome.message;
        // Expiry is kept even when the action itself is refused: it happened regardless.
        for (auto& c : outcome.changes) changes.push_back(std::move(c));
        record(tx, *job, changes, cause);
        result->job = std::move(job);
      },
      finish(result, std::move(done)));
}

void JobService::escrow(long long job_id, std::string actor, std::string tx_hash,
                        trace::Cause cause, Callback done) {
  // Check permissions and phase first so the chain is only asked on behalf of the client.
  auto current = store_.get(job_id);
  if (!current) return done(Result{Result::Kind::NotFound, "Job not found", std::nullopt});
  Outcome precheck = check_escrow_allowed(*current, actor, tx_hash);
  if (precheck.verdict != Verdict::Applied) {
    return done(Result{kind_of(precheck.verdict), precheck.message, std::move(current)});
  }
  chain::PaymentExpectation expectation{tx_hash, current->budget, current->token_address, std::nullopt, "", 1};
  chain_.verify(expectation, [this, job_id, actor, tx_hash, cause, done](chain::PaymentCheck check) {
    if (!check.verified()) {
      Result r{Result::Kind::Conflict, "Escrow not verified: " + check.message, std::nullopt};
      if (check.status == "invalid_hash") r.kind = Result::Kind::Invalid;
      if (check.status == "unavailable") r.kind = Result::Kind::Unavailable;
      return done(std::move(r));
    }
    auto result = std::make_shared<Result>();
    store_.transact(
        [this, job_id, actor, tx_hash, cause, result, adapter = check.adapter](JobTx& tx) {
          std::vector<Change> changes;
          Millis now = clock_.now_ms();
          auto job = load_for_action(tx, job_id, now, *result, changes);
          if (!job) return;
          Outcome outcome;
          if (job->escrow == std::nullopt && tx.tx_hash_used(tx_hash)) {
            outcome = Outcome::fail(Verdict::Conflict, "Transaction hash already used for another escrow");
          } else {
            outcome = client_escrow(*job, actor, tx_hash, adapter, now);
          }
          result->kind = kind_of(outcome.verdict);
          result->message = outcome.message;
          for (auto& c : outcome.changes) changes.push_back(std::move(c));
          record(tx, *job, changes, cause);
          result->job = std::move(job);
        },
        finish(result, done));
  });
}

int JobService::expire_due(int limit) {
  auto ids = store_.due_for_expiry(clock_.now_ms(), limit);
  for (long long id : ids) act(id, "", Expire{}, trace::background("expiry-sweeper"), [](Result) {});
  return static_cast<int>(ids.size());
}

void JobService::follow_contract(JobTx& tx, const events::CloudEvent& e) {
  auto* entity = e.data.if_contains("contract");
  if (!entity || !entity->is_object()) return;
  const auto& c = entity->get_object();
  auto text = [&c](std::string_view key) -> std::string {
    auto* v = c.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  std::string contract_id = text("id");
  if (contract_id.empty()) return;
  Millis now = clock_.now_ms();
  if (e.type == "contract.created") {
    if (tx.find_by_contract(contract_id)) return;  // redelivered
    auto budget = Decimal::parse(text("amount"));
    std::string token = text("token_address");
    if (!budget || text("buyer_id").empty() || text("provider_id").empty() || token.empty()) {
      log::warn("contract event without what a job needs: skipped", {{"contract", contract_id}, {"event", e.id}});
      return;
    }
    // No evaluator is named: the buyer evaluates, and a provider never evaluates its own work.
    if (check_parties(text("buyer_id"), text("provider_id"), std::nullopt).verdict != Verdict::Applied) {
      log::warn("contract whose buyer is its provider: no job made", {{"contract", contract_id}, {"event", e.id}});
      return;
    }
    Job job;
    job.phase = Phase::Negotiation;  // the terms were agreed in the thread; the escrow gate still applies
    job.client_id = text("buyer_id");
    job.provider_id = text("provider_id");
    std::string deliverable = text("deliverable");
    job.service_requirement = deliverable.empty() ? "Contract " + contract_id : deliverable;
    job.budget = *budget;
    job.token_address = token;
    job.contract_id = contract_id;
    job.expired_at = now + options_.default_ttl_ms;
    job.created_at = now;
    job.updated_at = now;
    record(tx, job, {Change{"job.created", "contract", std::nullopt, Phase::Negotiation, std::nullopt, std::nullopt}},
           e.next_cause());
    return;
  }
  if (e.type == "contract.funded") {
    auto job = tx.find_by_contract(contract_id);
    std::string hash = text("tx_hash");
    if (!job || hash.empty()) return;
    if (job->escrow) return;  // redelivered
    if (tx.tx_hash_used(hash)) {
      log::warn("contract paid with a hash another job's escrow used: escrow left unverified",
                {{"contract", contract_id}, {"job", job->id}});
      return;
    }
    std::vector<Change> changes = expire_if_due(*job, now).changes;
    Outcome outcome = client_escrow(*job, job->client_id, hash, "contract:" + text("chain_adapter"), now);
    for (auto& change : outcome.changes) changes.push_back(std::move(change));
    record(tx, *job, changes, e.next_cause());
  }
}

}  // namespace al::job
