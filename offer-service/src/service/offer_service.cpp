#include "service/offer_service.hpp"

#include "common/config/config.hpp"
#include "common/log/log.hpp"
#include "common/service/durable.hpp"
#include "common/util/ids.hpp"
#include "events/offer_json.hpp"

namespace al::offer {
namespace {
std::function<void(std::exception_ptr)> finish(std::shared_ptr<Result> result, OfferService::Callback done) {
  return reply_when_durable<Result>(std::move(result), std::move(done),
                                    Result{Result::Kind::Internal, "Internal error", "internal", {}, {}},
                                    "offer transaction failed");
}
}  // namespace

PerNetwork PerNetwork::parse(const std::string& text) {
  PerNetwork out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto colon = item.find(':');
    if (!item.empty()) {
      if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
        throw ConfigError("expected network:value[,network:value…] (\"*\" for any network), got \"" + item + "\"");
      out.values_[item.substr(0, colon)] = item.substr(colon + 1);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::optional<std::string> PerNetwork::get(const std::string& network) const {
  if (auto it = values_.find(network); it != values_.end()) return it->second;
  if (auto it = values_.find("*"); it != values_.end()) return it->second;
  return std::nullopt;
}

OfferService::OfferService(OfferStore& store, chain::ChainAdapter& chain, const Clock& clock, Scheduler& scheduler,
                           OfferServiceOptions options)
    : store_(store), chain_(chain), clock_(clock), scheduler_(scheduler), options_(std::move(options)) {}

void OfferService::record(OfferTx& tx, Offer& offer, const std::vector<std::string>& types,
                          const trace::Cause& cause) {
  long long first_seq = offer.version + 1;
  offer.version += static_cast<long long>(types.size());
  if (offer.row == 0) tx.insert_offer(offer); else tx.save_offer(offer);
  for (std::size_t i = 0; i < types.size(); ++i) {
    events::CloudEvent e;
    e.id = new_uuid_v7(clock_.now_ms());
    e.type = types[i];
    e.source = options_.source;
    e.subject = offer.id;
    e.time = clock_.now_ms();
    e.seq = first_seq + static_cast<long long>(i);
    e.audience = {offer.requester_id, offer.provider_id};
    e.set_cause(cause);
    e.data = {{"offer", offer_event_json(offer)}};
    tx.publish(kOffersTopic, e);
  }
}

void OfferService::record_contract(OfferTx& tx, Contract& contract, const std::vector<std::string>& types,
                                   const trace::Cause& cause) {
  bool is_new = contract.version == 0;
  long long first_seq = contract.version + 1;
  contract.version += static_cast<long long>(types.size());
  if (is_new) tx.insert_contract(contract); else tx.save_contract(contract);
  for (std::size_t i = 0; i < types.size(); ++i) {
    events::CloudEvent e;
    e.id = new_uuid_v7(clock_.now_ms());
    e.type = types[i];
    e.source = options_.source;
    e.subject = contract.id;
    e.time = clock_.now_ms();
    e.seq = first_seq + static_cast<long long>(i);
    e.audience = {contract.buyer_id, contract.provider_id};
    e.set_cause(cause);
    e.data = {{"contract", contract_event_json(contract)}};
    tx.publish(kContractsTopic, e);
  }
}

void OfferService::create_offer(std::string thread_id, std::string actor, trace::Cause cause, Callback done) {
  auto key = std::make_shared<std::pair<std::string, std::string>>(std::move(thread_id), std::move(actor));
  try_create(key, std::move(cause),
             std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.projection_wait_ms), std::move(done));
}

void OfferService::try_create(std::shared_ptr<std::pair<std::string, std::string>> key, trace::Cause cause,
                              std::chrono::steady_clock::time_point give_up_at, Callback done) {
  // While the projection has not seen the lock, wait with plain reads; the write transaction runs
  // once it has (and decides again), or once the wait is over (and answers 404/409).
  if (std::chrono::steady_clock::now() < give_up_at) {
    auto seen = store_.get_thread(key->first);
    if (!seen || seen->status != "quote_locked") {
      scheduler_.after(std::chrono::milliseconds(25), [this, key, cause, give_up_at, done] {
        try_create(key, cause, give_up_at, done);
      });
      return;
    }
  }
  auto result = std::make_shared<Result>();
  auto lagging = std::make_shared<bool>(false);
  store_.transact(
      [this, key, result, lagging, cause](OfferTx& tx) {
        const auto& [thread_id, actor] = *key;
        auto thread = tx.load_thread(thread_id);
        auto live = thread ? tx.live_offer_for(thread_id) : std::nullopt;
        Outcome check = check_create(thread, actor, live);
        if (check.verdict != Verdict::Applied) {
          // Unknown thread, or not locked yet: thread-service's event may still be on its way.
          *lagging = check.verdict == Verdict::NotFound || check.code == "quote_not_locked";
          result->kind = kind_of(check.verdict);
          result->message = check.message;
          result->code = check.code;
          result->offer = live;
          return;
        }
        Millis now = clock_.now_ms();
        Offer offer;
        offer.id = new_sortable_id("off_", now);
        Outcome made = offer_from(*thread, offer, now, options_.ttl_ms);
        if (made.verdict != Verdict::Applied) {
          result->kind = kind_of(made.verdict);
          result->message = made.message;
          result->code = made.code;
          return;
        }
        auto token_address = options_.tokens.resolve(offer.network, offer.token);
        if (!token_address) {
          result->kind = Result::Kind::Conflict;
          result->message = "Token " + offer.token + " on network " + offer.network +
                            " is not payable here: the provider quotes a token address or a known token (contracts.tokens)";
          result->code = "token_not_supported";
          return;
        }
        offer.token_address = *token_address;
        record(tx, offer, made.events, cause);
        result->kind = Result::Kind::Created;
        result->offer = std::move(offer);
      },
      [this, key, result, lagging, cause, give_up_at, done](std::exception_ptr error) {
        if (!error && *lagging && std::chrono::steady_clock::now() < give_up_at) {
          scheduler_.after(std::chrono::milliseconds(25), [this, key, cause, give_up_at, done] {
            try_create(key, cause, give_up_at, done);
          });
          return;
        }
        finish(result, done)(error);
      });
}

void OfferService::respond(std::string offer_id, std::string actor, bool accept, std::optional<std::string> reason,
                           trace::Cause cause, Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, offer_id = std::move(offer_id), actor = std::move(actor), accept, reason = std::move(reason), cause,
       result](OfferTx& tx) {
        auto offer = tx.load_offer(offer_id);
        if (!offer) {
          result->kind = Result::Kind::NotFound;
          result->message = "Offer not found";
          result->code = "not_found";
          return;
        }
        Millis now = clock_.now_ms();
        Outcome outcome = offer::respond(*offer, actor, accept, reason, now);
        result->kind = kind_of(outcome.verdict);
        result->message = outcome.message;
        result->code = outcome.code;
        if (outcome.verdict == Verdict::Unchanged && offer->contract_id)
          result->contract = tx.load_contract(*offer->contract_id);  // a retried accept gets the instructions again
        if (!outcome.events.empty()) {
          if (offer->status == OfferStatus::Accepted) {
            PaymentTerms payment;
            payment.pay_to = options_.pay_to.get(offer->network).value_or("");
            payment.required_confirmations = std::stoi(options_.confirmations.get(offer->network).value_or("1"));
            payment.chain_adapter = options_.chain_adapter;
            Contract contract = contract_for(*offer, new_sortable_id("ctr_", now), payment, now);
            offer->contract_id = contract.id;
            record(tx, *offer, outcome.events, cause);
            record_contract(tx, contract, {"contract.created"}, cause);
            result->contract = std::move(contract);
          } else {
            record(tx, *offer, outcome.events, cause);  // rejected, or the expiry that refused it
          }
        }
        result->offer = std::move(offer);
      },
      finish(result, std::move(done)));
}

int OfferService::expire_due(int limit) {
  auto ids = store_.due_for_expiry(clock_.now_ms(), limit);
  for (const auto& id : ids) {
    store_.transact(
        [this, id](OfferTx& tx) {
          auto offer = tx.load_offer(id);
          if (!offer) return;
          Outcome outcome = expire_if_due(*offer, clock_.now_ms());
          if (!outcome.events.empty()) record(tx, *offer, outcome.events, trace::background("expiry-sweeper"));
        },
        [](std::exception_ptr error) {
          if (error) log::error("offer expiry failed", {});
        });
  }
  return static_cast<int>(ids.size());
}

void OfferService::follow_job(OfferTx& tx, const events::CloudEvent& e) {
  if (e.type != "job.phase_changed") return;
  auto* job = e.data.if_contains("job");
  if (!job || !job->is_object()) return;
  auto* contract_id = job->get_object().if_contains("contractId");
  auto* phase = job->get_object().if_contains("phase");
  if (!contract_id || !contract_id->is_string() || !phase || !phase->is_int64()) return;
  auto contract = tx.load_contract(std::string(contract_id->get_string()));
  if (!contract) return;
  Outcome outcome = follow_job_phase(*contract, static_cast<int>(phase->get_int64()), clock_.now_ms());
  if (!outcome.events.empty()) record_contract(tx, *contract, outcome.events, e.next_cause());
}

void OfferService::follow_thread(OfferTx& tx, const events::CloudEvent& e) {
  if (e.type.rfind("thread.", 0) != 0) return;
  auto* thread = e.data.if_contains("thread");
  if (!thread || !thread->is_object()) return;
  auto* id = thread->get_object().if_contains("id");
  if (!id || !id->is_string()) return;
  ThreadView view = tx.load_thread(std::string(id->get_string())).value_or(ThreadView{});
  if (apply_thread_event(view, e.type, e.data, e.seq, e.time)) tx.save_thread(view);
}

namespace {
PaymentObservation observation_of(const chain::PaymentCheck& check) {
  return PaymentObservation{check.status, check.confirmations, check.block_number, check.block_hash, check.reorged,
                            check.adapter};
}

chain::PaymentExpectation expectation_for(const Contract& contract, const std::string& tx_hash) {
  chain::PaymentExpectation e{tx_hash, contract.amount, contract.token_address, contract.pay_to, contract.network,
                              contract.required_confirmations};
  if (contract.tx_hash == tx_hash) e.seen_block_hash = contract.payment_block_hash;
  return e;
}
}  // namespace

void OfferService::submit_payment(std::string contract_id, std::string actor, std::string tx_hash,
                                  trace::Cause cause, Callback done) {
  auto current = store_.get_contract(contract_id);
  if (!current) return done(Result{Result::Kind::NotFound, "Contract not found", "not_found", {}, {}});
  Outcome precheck = check_payment(*current, actor, tx_hash);
  if (precheck.verdict == Verdict::Unchanged) return done(Result{Result::Kind::Unchanged, {}, {}, {}, current});
  if (precheck.verdict != Verdict::Applied)
    return done(Result{kind_of(precheck.verdict), precheck.message, precheck.code, {}, current});
  // A hash bound to another contract is refused before the chain is asked: whatever the chain
  // says of it now (a later check may have turned it down), it never pays a second contract.
  if (auto owner = store_.contract_of_tx_hash(tx_hash); owner && *owner != contract_id)
    return done(Result{Result::Kind::Conflict, "Transaction hash already used for another contract", "tx_hash_used", {}, {}});
  chain_.verify(expectation_for(*current, tx_hash), [this, contract_id, tx_hash, cause, done](chain::PaymentCheck check) {
    // Seen but not final ("pending") is a submitted payment the watcher follows; anything else
    // (not found, wrong token or recipient, underpaid, failed …) is refused and changes nothing.
    if (check.status != "verified" && check.status != "pending") {
      Result refused{Result::Kind::Conflict, "Payment not verified: " + check.message, check.status, {}, {}};
      if (check.status == "unavailable") refused.kind = Result::Kind::Internal;
      return done(std::move(refused));
    }
    apply_submission(contract_id, tx_hash, check, cause, done);
  });
}

void OfferService::apply_submission(const std::string& contract_id, const std::string& tx_hash,
                                    const chain::PaymentCheck& check, const trace::Cause& cause, Callback done) {
  auto result = std::make_shared<Result>();
  store_.transact(
      [this, contract_id, tx_hash, check, cause, result](OfferTx& tx) {
        auto contract = tx.load_contract(contract_id);
        if (!contract) {
          result->kind = Result::Kind::NotFound;
          result->message = "Contract not found";
          return;
        }
        if (contract->tx_hash != tx_hash) {
          // First submission: re-check in the transaction (a concurrent request may have won).
          Outcome again = check_payment(*contract, contract->buyer_id, tx_hash);
          if (again.verdict != Verdict::Applied) {
            result->kind = kind_of(again.verdict);
            result->message = again.message;
            result->code = again.code;
            result->contract = std::move(contract);
            return;
          }
          if (!tx.bind_tx_hash(tx_hash, contract->id)) {
            result->kind = Result::Kind::Conflict;
            result->message = "Transaction hash already used for another contract";
            result->code = "tx_hash_used";
            return;
          }
        }
        Outcome applied = apply_payment(*contract, tx_hash, observation_of(check), clock_.now_ms());
        if (!applied.events.empty()) record_contract(tx, *contract, applied.events, cause);
        else tx.save_contract(*contract);  // the confirmations and the block moved
        result->kind = applied.events.empty() ? Result::Kind::Unchanged : Result::Kind::Ok;
        result->contract = std::move(contract);
      },
      finish(result, std::move(done)));
}

void OfferService::apply_observation(const std::string& contract_id, const std::string& tx_hash,
                                     const chain::PaymentCheck& check) {
  store_.transact(
      [this, contract_id, tx_hash, check](OfferTx& tx) {
        auto contract = tx.load_contract(contract_id);
        if (!contract || contract->tx_hash != tx_hash) return;  // paid otherwise meanwhile
        Outcome seen = observe_payment(*contract, observation_of(check), clock_.now_ms(), options_.payment_give_up_ms);
        if (!seen.events.empty()) {
          if (contract->status == "awaiting_payment")
            log::warn("payment turned down after a later chain check",
                      {{"contract", contract_id}, {"status", check.status}, {"message", check.message}});
          record_contract(tx, *contract, seen.events, trace::background("payment-watcher"));
        } else if (check.status == "verified" || check.status == "pending") {
          tx.save_contract(*contract);
        }
      },
      [this, contract_id](std::exception_ptr error) {
        if (error) log::error("payment watcher could not store a chain check", {{"contract", contract_id}});
        std::lock_guard lock(watching_mutex_);
        watching_.erase(contract_id);
      });
}

int OfferService::watch_payments(int limit) {
  // A lease of a few sweeps: long enough for a slow chain answer, short enough for a takeover.
  auto ids = store_.claim_awaiting_confirmation(limit, watcher_id_, 30'000);
  for (const auto& id : ids) {
    auto contract = store_.get_contract(id);
    if (!contract || !contract->tx_hash) continue;
    {
      std::lock_guard lock(watching_mutex_);
      if (!watching_.insert(id).second) continue;
    }
    chain_.verify(expectation_for(*contract, *contract->tx_hash), [this, id, hash = *contract->tx_hash](chain::PaymentCheck check) {
      apply_observation(id, hash, check);  // lets go of the contract once stored
    });
  }
  return static_cast<int>(ids.size());
}

}  // namespace al::offer
