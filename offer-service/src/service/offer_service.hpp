#pragma once
#include "common/util/ids.hpp"
#include <chrono>
#include <functional>
#include <mutex>
#include <set>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/chain/chain.hpp"
#include "common/clock/clock.hpp"
#include "common/service/module.hpp"
#include "domain/offer.hpp"
#include "storage/offer_store.hpp"

namespace al::offer {

struct Result {
  using Kind = ResultKind;
  Kind kind = Kind::Ok;
  std::string message;
  std::string code;
  std::optional<Offer> offer;
  std::optional<Contract> contract;
};

// Per-network values written "network:value,…" with "*" as the default, e.g. "base:3,*:1".
class PerNetwork {
 public:
  static PerNetwork parse(const std::string& text);  // throws ConfigError
  std::optional<std::string> get(const std::string& network) const;
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

struct OfferServiceOptions {
  Millis ttl_ms = 72LL * 3600 * 1000;
  Millis projection_wait_ms = 2000;  // how long create-offer waits for a just-locked quote to arrive
  PerNetwork pay_to;
  PerNetwork confirmations;
  TokenRegistry tokens;
  std::string chain_adapter = "sandbox";
  Millis payment_give_up_ms = 3600LL * 1000;  // a submitted payment not found on chain this long is turned down
  std::string source = "offer-service";
};

// The offer and contract use cases. Each runs in one transaction: state change and its events.
class OfferService {
 public:
  using Callback = std::function<void(Result)>;
  OfferService(OfferStore& store, chain::ChainAdapter& chain, const Clock& clock, Scheduler& scheduler,
               OfferServiceOptions options);

  void create_offer(std::string thread_id, std::string actor, trace::Cause cause, Callback done);
  void respond(std::string offer_id, std::string actor, bool accept, std::optional<std::string> reason,
               trace::Cause cause, Callback done);
  int expire_due(int limit = 500);
  // The buyer's payment: checked (403/409) before the chain is asked, then verified there.
  void submit_payment(std::string contract_id, std::string actor, std::string tx_hash, trace::Cause cause,
                      Callback done);
  // Asks the chain again about payments seen but not yet final; returns how many it asked about.
  int watch_payments(int limit = 200);

  // Applies a thread-service event (the consumer's transaction).
  void follow_thread(OfferTx& tx, const events::CloudEvent& event);
  // Applies a job-service event: a contract's job ended → the contract follows.
  void follow_job(OfferTx& tx, const events::CloudEvent& event);

 private:
  void try_create(std::shared_ptr<std::pair<std::string, std::string>> thread_and_actor, trace::Cause cause,
                  std::chrono::steady_clock::time_point give_up_at, Callback done);
  void record(OfferTx& tx, Offer& offer, const std::vector<std::string>& types, const trace::Cause& cause);
  void record_contract(OfferTx& tx, Contract& contract, const std::vector<std::string>& types,
                       const trace::Cause& cause);
  void apply_submission(const std::string& contract_id, const std::string& tx_hash, const chain::PaymentCheck& check,
                        const trace::Cause& cause, Callback done);
  void apply_observation(const std::string& contract_id, const std::string& tx_hash, const chain::PaymentCheck& check);

  // Contracts whose payment the watcher is asking the chain about (a slow node must not pile up
  // checks of the same payment).
  std::mutex watching_mutex_;
  std::set<std::string> watching_;
  const std::string watcher_id_ = "w" + random_hex(6);  // this replica's payment watcher

  OfferStore& store_;
  chain::ChainAdapter& chain_;
  const Clock& clock_;
  Scheduler& scheduler_;
  OfferServiceOptions options_;
};

}  // namespace al::offer
