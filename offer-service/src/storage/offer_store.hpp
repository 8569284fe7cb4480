#pragma once
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/events/cloud_event.hpp"
#include "domain/offer.hpp"
#include "ops/feedback.hpp"

namespace al::offer {

inline constexpr const char* kOffersTopic = "agentlancer.offers.v1";
inline constexpr const char* kContractsTopic = "agentlancer.contracts.v1";

// One write transaction of offer-service: state changes and their outbox events commit together.
class OfferTx {
 public:
  virtual ~OfferTx() = default;
  virtual std::optional<ThreadView> load_thread(const std::string& thread_id) = 0;
  virtual void save_thread(const ThreadView& view) = 0;
  virtual std::optional<Offer> load_offer(const std::string& id) = 0;
  // The thread's open or accepted offer, if any.
  virtual std::optional<Offer> live_offer_for(const std::string& thread_id) = 0;
  virtual void insert_offer(Offer& offer) = 0;  // assigns offer.row
  virtual void save_offer(const Offer& offer) = 0;
  virtual void insert_contract(const Contract& contract) = 0;
  virtual std::optional<Contract> load_contract(const std::string& id) = 0;
  virtual void save_contract(const Contract& contract) = 0;
  // Binds a payment hash to the contract for good; false if another contract holds it.
  virtual bool bind_tx_hash(const std::string& tx_hash, const std::string& contract_id) = 0;
  virtual void publish(const std::string& topic, const events::CloudEvent& event) = 0;
  virtual void insert_feedback(const Feedback& feedback, Millis now) = 0;
};

struct OfferQuery {
  std::string agent_id;
  std::optional<bool> as_provider;  // true: incoming, false: outgoing, none: both
  std::vector<OfferStatus> statuses;
  int limit = 20;
  std::optional<long long> before_row;
};

struct OfferPage {
  std::vector<Offer> offers;
  std::optional<long long> next_before_row;
};

// Aggregate counts for the ops snapshots: no ids, only numbers.
struct OpsCounts {
  // Now.
  long long threads_total = 0, threads_negotiating = 0, threads_quote_locked = 0, threads_offered = 0, threads_closed = 0;
  long long offers_total = 0, offers_open = 0, offers_accepted = 0, offers_rejected = 0, offers_inactive = 0;
  // In the window.
  long long window_threads_opened = 0, window_quotes_locked = 0, window_offers_created = 0, window_offers_accepted = 0;
  long long window_payments_submitted = 0, window_payments_confirmed = 0;
  // Contracts now, by status.
  long long contracts_total = 0, contracts_awaiting_payment = 0, contracts_payment_submitted = 0, contracts_funded = 0;
  long long contracts_completed = 0, contracts_refund_pending = 0, contracts_expired = 0;
};

// Per thread opened in the window: how far it got and when (ms since the epoch; absent = not reached).
struct Journey {
  Millis opened_at = 0;
  std::optional<Millis> quote_locked_at, offer_created_at, offer_accepted_at, payment_submitted_at, funded_at;
};

class OfferStore {
 public:
  virtual ~OfferStore() = default;
  virtual void transact(std::function<void(OfferTx&)> work, std::function<void(std::exception_ptr)> done) = 0;
  virtual std::optional<ThreadView> get_thread(const std::string& thread_id) = 0;
  virtual std::optional<Offer> get_offer(const std::string& id) = 0;
  virtual OfferPage list_offers(const OfferQuery& query) = 0;
  virtual std::optional<Contract> get_contract(const std::string& id) = 0;
  // The contract a payment hash is bound to, if any (payment_hashes).
  virtual std::optional<std::string> contract_of_tx_hash(const std::string& tx_hash) = 0;
  virtual std::vector<std::string> due_for_expiry(Millis now, int limit) = 0;
  // Contracts whose payment was seen but is not yet final (the watcher asks the chain again),
  // claimed by `watcher` for `lease_ms`: among replicas, one asks the chain about a contract at a
  // time; a contract whose watcher died is claimed again once its lease ran out.
  virtual std::vector<std::string> claim_awaiting_confirmation(int limit, const std::string& watcher, long long lease_ms) = 0;
  virtual OpsCounts ops_counts(Millis window_start) = 0;
  virtual std::vector<Journey> journeys(Millis window_start, int limit) = 0;
  virtual bool healthy() = 0;
};

}  // namespace al::offer
