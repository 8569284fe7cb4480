// The contract read cache of SqlOfferStore against a real SQLite file: reads fill it, every
// committed write of a contract (use case or event consumer) drops its entry before anyone hears
// of the commit, and a read that raced a commit never stores what it read.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "common/clock/clock.hpp"
#include "domain/offer.hpp"
#include "common/storage/sqlite.hpp"
#include "storage/sql_offer_store.hpp"

namespace al::offer {
namespace {

Contract contract(const std::string& id) {
  Contract c;
  c.id = id;
  c.offer_id = "off_" + id;
  c.thread_id = "thr_1";
  c.buyer_id = "agt_r";
  c.provider_id = "agt_p";
  c.amount = *Decimal::parse("12.5");
  c.token = "USDC";
  c.token_address = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913";
  c.network = "base";
  c.pay_to = "0xabc";
  c.chain_adapter = "sandbox";
  c.created_at = c.updated_at = 1000;
  c.version = 1;
  return c;
}

class ContractCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/contract-cache-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    db_ = std::make_unique<storage::SqliteDatabase>(dir_ + "/offer-service.db", storage::DatabaseOptions{"NORMAL"});
    db_->migrate(offer_migrations());
    store_ = std::make_unique<SqlOfferStore>(*db_, SystemClock::instance());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Runs a use-case transaction and waits for its commit.
  void transact(std::function<void(OfferTx&)> work) {
    std::promise<void> committed;
    store_->transact(std::move(work), [&](std::exception_ptr e) {
      // The entry is already dropped when the caller hears of the commit.
      if (!e) seen_in_done_ = store_->get_contract("ctr_1");
      if (e) committed.set_exception(e); else committed.set_value();
    });
    committed.get_future().get();
  }

  std::string dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<SqlOfferStore> store_;
  std::optional<Contract> seen_in_done_;
};

TEST_F(ContractCacheTest, ReadsFillItAndUseCaseCommitsDropTheEntryBeforeTheyAnswer) {
  transact([](OfferTx& tx) { tx.insert_contract(contract("ctr_1")); });
  EXPECT_EQ(store_->contract_cache().size(), 1u);  // the read in the callback filled it
  ASSERT_TRUE(store_->get_contract("ctr_1"));
  EXPECT_EQ(store_->get_contract("ctr_1")->status, "awaiting_payment");
  EXPECT_EQ(store_->contract_cache().size(), 1u);

  transact([](OfferTx& tx) {
    auto c = tx.load_contract("ctr_1");
    c->status = "payment_submitted";
    c->tx_hash = "0x" + std::string(64, 'a');
    tx.save_contract(*c);
  });
  ASSERT_TRUE(seen_in_done_);
  EXPECT_EQ(seen_in_done_->status, "payment_submitted");
  EXPECT_EQ(store_->get_contract("ctr_1")->tx_hash, "0x" + std::string(64, 'a'));
  EXPECT_FALSE(store_->get_contract("ctr_404"));
  EXPECT_EQ(store_->contract_cache().size(), 1u);  // misses are not stored
}

TEST_F(ContractCacheTest, ConsumerCommitsDropTheEntryOnceCommitted) {
  transact([](OfferTx& tx) { tx.insert_contract(contract("ctr_1")); });
  ASSERT_EQ(store_->get_contract("ctr_1")->status, "awaiting_payment");
  std::vector<std::string> written;
  std::promise<void> committed;
  db_->write(
      [&](storage::Connection& c) {
        auto tx = store_->tx_on(c, &written);
        auto k = tx->load_contract("ctr_1");
        k->status = "completed";
        tx->save_contract(*k);
      },
      [&](std::exception_ptr) { committed.set_value(); });
  committed.get_future().get();
  EXPECT_EQ(written, std::vector<std::string>{"ctr_1"});
  // Committed, not yet announced: the cache may still answer the old state ...
  EXPECT_EQ(store_->get_contract("ctr_1")->status, "awaiting_payment");
  store_->contracts_committed(written);
  // ... and never after.
  EXPECT_EQ(store_->get_contract("ctr_1")->status, "completed");
}

TEST_F(ContractCacheTest, AReadThatRacedACommitIsNotStored) {
  ContractCache cache(3);
  auto before = cache.generation();
  cache.drop({"ctr_1"});  // a commit lands between the read and the store
  cache.offer(std::make_shared<const Contract>(contract("ctr_1")), before);
  EXPECT_EQ(cache.find("ctr_1"), nullptr);
  cache.offer(std::make_shared<const Contract>(contract("ctr_1")), cache.generation());
  EXPECT_NE(cache.find("ctr_1"), nullptr);
  cache.drop({});  // a commit that wrote no contract changes nothing
  EXPECT_NE(cache.find("ctr_1"), nullptr);
  // Full: it starts over rather than grow.
  for (auto id : {"ctr_2", "ctr_3", "ctr_4"}) cache.offer(std::make_shared<const Contract>(contract(id)), cache.generation());
  EXPECT_LE(cache.size(), 3u);
  EXPECT_NE(cache.find("ctr_4"), nullptr);
}

}  // namespace
}  // namespace al::offer
