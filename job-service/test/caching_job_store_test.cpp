// The committed-job cache: only committed state enters it, and never an older version.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "common/storage/sqlite.hpp"
#include "storage/caching_job_store.hpp"
#include "storage/sql_job_store.hpp"
#include "test_clock.hpp"

namespace al::job {
namespace {

class CachingJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentlancer-cache-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    db_ = std::make_unique<storage::SqliteDatabase>(dir_ + "/jobs.db");
    db_->migrate(job_migrations());
    sqlite_ = std::make_unique<SqlJobStore>(*db_, clock_);
    cache_ = std::make_unique<CachingJobStore>(*sqlite_);
  }
  void TearDown() override {
    cache_.reset();
    sqlite_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::exception_ptr run(JobStore& store, std::function<void(JobTx&)> work) {
    std::promise<std::exception_ptr> done;
    store.transact(std::move(work), [&](std::exception_ptr e) { done.set_value(e); });
    return done.get_future().get();
  }
  long long create() {
    long long id = 0;
    EXPECT_FALSE(run(*cache_, [&](JobTx& tx) {
      Job j;
      j.client_id = "agt_c";
      j.provider_id = "agt_p";
      j.service_requirement = "x";
      j.budget = Decimal::from_int(1);
      j.token_address = "0x" + std::string(40, '1');
      j.version = 1;
      tx.insert(j);
      id = j.id;
    }));
    return id;
  }

  std::string dir_;
  testing::TestClock clock_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<SqlJobStore> sqlite_;
  std::unique_ptr<CachingJobStore> cache_;
};

TEST_F(CachingJobStoreTest, CommittedWritesAreServedFromTheCache) {
  long long id = create();
  EXPECT_EQ(cache_->size(), 1u);
  EXPECT_FALSE(run(*cache_, [&](JobTx& tx) {
    auto j = tx.load(id);
    j->phase = Phase::Negotiation;
    j->version = 2;
    tx.save(*j);
  }));
  // Change the row behind the cache's back: the cache still answers with what it committed.
  db_->write_sync([&](storage::Connection& c) { c.query("UPDATE jobs SET phase = 6 WHERE id = ?", id).run(); });
  EXPECT_EQ(cache_->get(id)->phase, Phase::Negotiation);
  EXPECT_EQ(sqlite_->get(id)->phase, Phase::Expired);
}

TEST_F(CachingJobStoreTest, RolledBackWritesNeverEnterTheCache) {
  long long id = create();
  auto error = run(*cache_, [&](JobTx& tx) {
    auto j = tx.load(id);
    j->phase = Phase::Completed;
    j->version = 2;
    tx.save(*j);
    throw std::runtime_error("fails after the save");
  });
  EXPECT_TRUE(error);
  EXPECT_EQ(cache_->get(id)->phase, Phase::Request);
  EXPECT_EQ(cache_->get(id)->version, 1);
  EXPECT_EQ(sqlite_->get(id)->phase, Phase::Request);
}

TEST_F(CachingJobStoreTest, AMissIsFilledFromTheDatabaseButNeverOverANewerVersion) {
  long long id = create();
  CachingJobStore cold(*sqlite_);  // empty cache over the same database
  EXPECT_EQ(cold.size(), 0u);
  EXPECT_EQ(cold.get(id)->version, 1);
  EXPECT_EQ(cold.size(), 1u);
  // A newer commit through the cache replaces it; an older snapshot cannot come back.
  EXPECT_FALSE(run(cold, [&](JobTx& tx) {
    auto j = tx.load(id);
    j->version = 5;
    j->phase = Phase::Transaction;
    tx.save(*j);
  }));
  EXPECT_EQ(cold.get(id)->version, 5);
  EXPECT_FALSE(run(*sqlite_, [&](JobTx& tx) {  // an out-of-band write with a lower version
    auto j = tx.load(id);
    j->version = 3;
    tx.save(*j);
  }));
  EXPECT_FALSE(run(cold, [&](JobTx& tx) {
    auto j = tx.load(id);  // version 3 from the database, saved again as 3
    tx.save(*j);
  }));
  EXPECT_EQ(cold.get(id)->version, 5);
}

TEST_F(CachingJobStoreTest, MissingJobIsNotCached) {
  EXPECT_FALSE(cache_->get(424242).has_value());
  EXPECT_EQ(cache_->size(), 0u);
}

}  // namespace
}  // namespace al::job
