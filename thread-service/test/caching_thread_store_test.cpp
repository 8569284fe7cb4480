// The thread read model: lists served from memory agree with the database, only committed state
// enters, an agent's index picks up threads created before and after it was loaded, and a
// snapshot never replaces a newer revision.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "common/storage/sqlite.hpp"
#include "service/thread_service.hpp"
#include "storage/caching_thread_store.hpp"
#include "storage/sql_thread_store.hpp"
#include "test_clock.hpp"

namespace al::thread {
namespace {

class CachingThreadStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentlancer-threads-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    db_ = std::make_unique<storage::SqliteDatabase>(dir_ + "/threads.db");
    db_->migrate(thread_migrations());
    sqlite_ = std::make_unique<SqlThreadStore>(*db_, clock_);
    cache_ = std::make_unique<CachingThreadStore>(*sqlite_);
    service_ = std::make_unique<ThreadService>(*cache_, clock_);
    service_id_ = publish("agt_p");
  }
  void TearDown() override {
    service_.reset();
    cache_.reset();
    sqlite_.reset();
    db_->stop();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  template <class F>
  Result await(F&& call) {
    std::promise<Result> done;
    call([&](Result r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  std::string publish(const std::string& provider) {
    ServiceFields f{"t", "d", "x", "1 day", Decimal::from_int(5), "USDC", "base", std::vector<std::string>{}, true};
    auto r = await([&](auto cb) { service_->publish_service(provider, f, trace::Cause{"rid", ""}, cb); });
    EXPECT_EQ(r.kind, Result::Kind::Created);
    return r.service->id;
  }
  std::string open(const std::string& requester, const std::string& service_id) {
    auto r = await([&](auto cb) { service_->open_thread(requester, service_id, "hello", trace::Cause{"rid", ""}, cb); });
    EXPECT_EQ(r.kind, Result::Kind::Created) << r.message;
    return r.thread->id;
  }
  std::vector<std::string> ids(ThreadStore& store, ThreadQuery q) {
    std::vector<std::string> out;
    for (;;) {
      auto page = store.list_threads(q);
      for (auto& t : page.threads) out.push_back(t->id);
      if (!page.next_before_row) return out;
      q.before_row = page.next_before_row;
    }
  }

  testing::TestClock clock_;
  std::string dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<SqlThreadStore> sqlite_;
  std::unique_ptr<CachingThreadStore> cache_;
  std::unique_ptr<ThreadService> service_;
  std::string service_id_;
};

TEST_F(CachingThreadStoreTest, ListsAgreeWithTheDatabaseForEveryModeStatusAndPage) {
  std::string other_service = publish("agt_r1");  // agt_r1 is also a provider
  std::vector<std::string> opened;
  for (int i = 0; i < 7; ++i) opened.push_back(open(i % 2 ? "agt_r1" : "agt_r2", service_id_));
  opened.push_back(open("agt_r2", other_service));
  // Lock one so the status filter has something to find.
  ASSERT_EQ(await([&](auto cb) {
              service_->post_message(opened[3], "agt_p", MessageType::Quote, "q",
                                     Terms{"d", Budget{Decimal::from_int(1), "USDC", "base"}, "t", "a", "r"}, trace::Cause{"rid", ""}, cb);
            }).kind,
            Result::Kind::Ok);
  ASSERT_EQ(await([&](auto cb) { service_->lock_quote(opened[3], "agt_p", std::nullopt, trace::Cause{"rid", ""}, cb); }).kind, Result::Kind::Ok);

  for (std::string agent : {"agt_p", "agt_r1", "agt_r2", "agt_nobody"})
    for (std::optional<Role> as : {std::optional<Role>{}, std::optional<Role>{Role::Requester}, std::optional<Role>{Role::Provider}})
      for (std::vector<Status> statuses : {std::vector<Status>{}, std::vector<Status>{Status::QuoteLocked},
                                           std::vector<Status>{Status::Negotiating, Status::Offered}})
        for (int limit : {1, 2, 20}) {
          ThreadQuery q{agent, as, statuses, limit, std::nullopt};
          SCOPED_TRACE(agent + " limit " + std::to_string(limit));
          EXPECT_EQ(ids(*cache_, q), ids(*sqlite_, q));
        }
  ThreadQuery locked{"agt_r1", Role::Requester, {Status::QuoteLocked}, 20, std::nullopt};
  EXPECT_EQ(ids(*cache_, locked), std::vector<std::string>{opened[3]});
  EXPECT_EQ(cache_->find_thread(opened[3])->status, Status::QuoteLocked);
}

TEST_F(CachingThreadStoreTest, IndexLoadedEarlierSeesNewThreads) {
  std::string first = open("agt_r", service_id_);
  ThreadQuery q{"agt_r", Role::Requester, {}, 20, std::nullopt};
  EXPECT_EQ(ids(*cache_, q), std::vector<std::string>{first});  // loads agt_r's index
  std::string second = open("agt_r", service_id_);
  EXPECT_EQ(ids(*cache_, q), (std::vector<std::string>{second, first}));
  ThreadQuery incoming{"agt_p", Role::Provider, {}, 20, std::nullopt};
  EXPECT_EQ(ids(*cache_, incoming), (std::vector<std::string>{second, first}));
}

TEST_F(CachingThreadStoreTest, ConsumerChangesAppearOnlyAfterCommitAndNeverGoBackwards) {
  std::string id = open("agt_r", service_id_);
  auto before = cache_->find_thread(id);
  std::function<void()> after_commit;
  db_->write_sync([&](storage::Connection& c) {
    auto tx = SqlThreadStore::tx_on(c, clock_);
    after_commit = cache_->recording(*tx, [&](ThreadTx& t) {
      auto loaded = t.load_thread(id);
      ASSERT_TRUE(loaded);
      loaded->contract = Linked{"ctr_1", "awaiting_payment", 1};
      loaded->revision += 1;
      t.save_thread(*loaded);
    });
  });
  EXPECT_FALSE(cache_->find_thread(id)->contract);  // committed, but not yet announced
  ASSERT_TRUE(after_commit);
  after_commit();
  auto now = cache_->find_thread(id);
  ASSERT_TRUE(now->contract);
  EXPECT_EQ(now->revision, before->revision + 1);
  // The database refuses a write based on the older revision (version check)…
  EXPECT_THROW(db_->write_sync([&](storage::Connection& c) {
                 auto tx = SqlThreadStore::tx_on(c, clock_);
                 tx->save_thread(*before);
               }),
               storage::ConcurrentUpdate);
  // …and a late snapshot of it reaching the cache (e.g. a slow writer's) does not replace it.
  struct SnapshotOnlyTx final : ThreadTx {
    std::optional<Service> load_service(const std::string&) override { return std::nullopt; }
    void insert_service(Service&) override {}
    void save_service(const Service&) override {}
    std::optional<Thread> load_thread(const std::string&) override { return std::nullopt; }
    void insert_thread(Thread&) override {}
    void save_thread(const Thread&) override {}
    void insert_message(const Thread&, const Message&) override {}
    std::optional<Message> load_message(const Thread&, long long) override { return std::nullopt; }
    void publish(const std::string&, const events::CloudEvent&) override {}
  } snapshot_only;
  auto stale = cache_->recording(snapshot_only, [&](ThreadTx& t) { t.save_thread(*before); });
  stale();
  EXPECT_TRUE(cache_->find_thread(id)->contract);
}

TEST_F(CachingThreadStoreTest, FailedTransactionLeavesTheCacheUntouched) {
  std::string id = open("agt_r", service_id_);
  std::promise<std::exception_ptr> done;
  cache_->transact(
      [&](ThreadTx& tx) {
        auto t = tx.load_thread(id);
        t->status = Status::Closed;
        t->revision += 1;
        tx.save_thread(*t);
        throw std::runtime_error("rolled back");
      },
      [&](std::exception_ptr e) { done.set_value(e); });
  EXPECT_TRUE(done.get_future().get());
  EXPECT_EQ(cache_->find_thread(id)->status, Status::Negotiating);
  EXPECT_EQ(sqlite_->find_thread(id)->status, Status::Negotiating);
}

}  // namespace
}  // namespace al::thread
