#pragma once
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/storage/database.hpp"
#include "storage/offer_store.hpp"

namespace al::offer {

std::vector<storage::Migration> offer_migrations();

// Committed contracts by id, so the public monitor (tx-status) and the payment path stop reading
// SQLite once warm. Every commit that wrote a contract drops its entry afterwards; a read that
// raced such a commit does not store what it read (the generation moved), so an entry is never
// older than the last commit that has dropped it.
class ContractCache {
 public:
  // capacity 0: off, for replicas that share one database (their commits never reach this one).
  explicit ContractCache(std::size_t capacity = 100'000) : capacity_(capacity) {}
  std::shared_ptr<const Contract> find(const std::string& id);
  std::uint64_t generation();
  // Stores what a read found, unless a commit dropped contracts since `generation_before_read`.
  void offer(std::shared_ptr<const Contract> contract, std::uint64_t generation_before_read);
  void drop(const std::vector<std::string>& ids);
  std::size_t size();

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const Contract>> entries_;
  std::uint64_t generation_ = 0;
  std::size_t capacity_;
};

class SqlOfferStore final : public OfferStore {
 public:
  SqlOfferStore(storage::Database& db, const Clock& clock, std::size_t contract_cache_capacity = 100'000)
      : db_(db), clock_(clock), contracts_(contract_cache_capacity) {}

  void transact(std::function<void(OfferTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<ThreadView> get_thread(const std::string& thread_id) override;
  std::optional<Offer> get_offer(const std::string& id) override;
  OfferPage list_offers(const OfferQuery& query) override;
  std::optional<Contract> get_contract(const std::string& id) override;
  std::optional<std::string> contract_of_tx_hash(const std::string& tx_hash) override;
  std::vector<std::string> due_for_expiry(Millis now, int limit) override;
  std::vector<std::string> claim_awaiting_confirmation(int limit, const std::string& watcher, long long lease_ms) override;
  OpsCounts ops_counts(Millis window_start) override;
  std::vector<Journey> journeys(Millis window_start, int limit) override;
  bool healthy() override { return db_.healthy(); }

  // A transaction on a connection the caller holds (the event consumer's). The ids of the
  // contracts it writes go to `written`: pass them to contracts_committed once it has committed.
  std::unique_ptr<OfferTx> tx_on(storage::Connection& connection, std::vector<std::string>* written);
  void contracts_committed(const std::vector<std::string>& ids) { contracts_.drop(ids); }
  ContractCache& contract_cache() { return contracts_; }

 private:
  storage::Database& db_;
  const Clock& clock_;
  ContractCache contracts_;
};

}  // namespace al::offer
