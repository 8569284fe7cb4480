#pragma once
#include <memory>

#include "common/storage/sqlite.hpp"
#include "storage/offer_store.hpp"

namespace al::offer {

std::vector<storage::Migration> offer_migrations();

class SqliteOfferStore final : public OfferStore {
 public:
  SqliteOfferStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  void transact(std::function<void(OfferTx&)> work, std::function<void(std::exception_ptr)> done) override;
  std::optional<ThreadView> get_thread(const std::string& thread_id) override;
  std::optional<Offer> get_offer(const std::string& id) override;
  OfferPage list_offers(const OfferQuery& query) override;
  std::optional<Contract> get_contract(const std::string& id) override;
  std::optional<std::string> contract_of_tx_hash(const std::string& tx_hash) override;
  std::vector<std::string> due_for_expiry(Millis now, int limit) override;
  std::vector<std::string> awaiting_confirmation(int limit) override;
  OpsCounts ops_counts(Millis window_start) override;
  std::vector<Journey> journeys(Millis window_start, int limit) override;
  bool healthy() override { return db_.healthy(); }

  // A transaction on a connection the caller holds (the event consumer's).
  static std::unique_ptr<OfferTx> tx_on(storage::Connection& connection, const Clock& clock);

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace al::offer
