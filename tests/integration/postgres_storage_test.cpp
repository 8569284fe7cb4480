// The PostgreSQL unit of work against a real server (ctest fixture `postgres`): concurrent
// writers, retries, migrations taken under an advisory lock, and the outbox with rows that commit
// out of sequence order.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <latch>
#include <thread>

#include "common/storage/outbox_store.hpp"
#include "common/storage/postgres.hpp"
#include "common/util/ids.hpp"

namespace al::storage {
namespace {

std::string admin_url() {
  const char* state = std::getenv("AGENTLANCER_TEST_PG_STATE");
  if (!state) return {};
  std::string url;
  std::ifstream(std::string(state) + "/url") >> url;
  return url;
}

class PostgresStorage : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = admin_url();
    ASSERT_FALSE(admin_.empty()) << "AGENTLANCER_TEST_PG_STATE must name a running pg_fixture.sh state dir";
    name_ = "s_" + random_hex(6);
    create_postgres_database(admin_, name_);
    url_ = postgres_url_for(admin_, name_);
  }
  void TearDown() override {
    if (!name_.empty()) drop_postgres_database(admin_, name_);
  }
  std::unique_ptr<PostgresDatabase> open(const std::string& schema = "svc", int pool = 8) {
    PostgresOptions options;
    options.pool_size = pool;
    options.max_attempts = 50;
    return std::make_unique<PostgresDatabase>(url_, schema, options);
  }
  static long long scalar(Database& db, const std::string& sql) {
    return db.read([&](Connection& c) {
      auto q = c.query(sql);
      return q.next() ? q.int64(0) : -1LL;
    });
  }
  std::string admin_, name_, url_;
};

const std::vector<Migration> kCounter = {
    {1, "CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, version INTEGER NOT NULL)", {}},
    {2, "INSERT INTO counters(id, n, version) VALUES (1, 0, 0), (2, 0, 0)", {}},
};

TEST_F(PostgresStorage, RowLockedWritesFromManyThreadsAllLand) {
  auto db = open();
  db->migrate(kCounter);
  constexpr int kWriters = 16;
  std::vector<std::future<void>> done;
  for (int i = 0; i < kWriters; ++i) {
    done.push_back(std::async(std::launch::async, [&] {
      db->write_sync([](Connection& c) {
        long long n = 0, version = 0;
        {
          auto q = c.query(std::string("SELECT n, version FROM counters WHERE id = 1") + c.for_update());
          ASSERT_TRUE(q.next());
          n = q.int64(0);
          version = q.int64(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // widen the window
        if (c.query("UPDATE counters SET n = ?, version = ? WHERE id = 1 AND version = ?", n + 1, version + 1, version)
                .run() != 1)
          throw ConcurrentUpdate("counter");
      });
    }));
  }
  for (auto& f : done) f.get();
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 1"), kWriters);
  EXPECT_EQ(scalar(*db, "SELECT version FROM counters WHERE id = 1"), kWriters);
}

TEST_F(PostgresStorage, LostVersionChecksAreRetriedUntilEveryWriteLands) {
  auto db = open();
  db->migrate(kCounter);
  constexpr int kWriters = 16;
  std::vector<std::future<void>> done;
  for (int i = 0; i < kWriters; ++i) {
    done.push_back(std::async(std::launch::async, [&] {
      db->write_sync([](Connection& c) {
        long long n = 0, version = 0;
        {
          // No row lock: optimistic only, so concurrent writers do collide.
          auto q = c.query("SELECT n, version FROM counters WHERE id = 1");
          ASSERT_TRUE(q.next());
          n = q.int64(0);
          version = q.int64(1);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (c.query("UPDATE counters SET n = ?, version = ? WHERE id = 1 AND version = ?", n + 1, version + 1, version)
                .run() != 1)
          throw ConcurrentUpdate("counter");
      });
    }));
  }
  for (auto& f : done) f.get();
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 1"), kWriters);  // no update lost
  EXPECT_GT(db->retries(), 0);  // and they did collide
}

TEST_F(PostgresStorage, ADeadlockIsRetriedAndBothUnitsCommit) {
  auto db = open();
  db->migrate(kCounter);
  std::latch both_hold_one(2);
  std::atomic<int> runs{0};
  auto unit = [&](int first, int second) {
    return [&, first, second](Connection& c) {
      bool first_run = runs.fetch_add(1) < 2;
      c.query("UPDATE counters SET n = n + 1 WHERE id = ?", first).run();
      if (first_run) both_hold_one.arrive_and_wait();  // each holds one row, then wants the other's
      c.query("UPDATE counters SET n = n + 1 WHERE id = ?", second).run();
    };
  };
  auto a = std::async(std::launch::async, [&] { db->write_sync(unit(1, 2)); });
  auto b = std::async(std::launch::async, [&] { db->write_sync(unit(2, 1)); });
  a.get();
  b.get();
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 1"), 2);
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 2"), 2);
  EXPECT_GE(runs.load(), 3);  // the deadlock victim ran again
  EXPECT_GE(db->retries(), 1);
}

TEST_F(PostgresStorage, UniqueViolationsAreConstraintsAndNotRetried) {
  auto db = open();
  db->migrate(kCounter);
  std::atomic<int> runs{0};
  try {
    db->write_sync([&](Connection& c) {
      ++runs;
      c.query("INSERT INTO counters(id, n, version) VALUES (1, 0, 0)").run();
    });
    FAIL() << "duplicate key accepted";
  } catch (const StorageError& e) {
    EXPECT_TRUE(e.is_constraint()) << e.what();
    EXPECT_EQ(e.code, "23505");
  }
  EXPECT_EQ(runs.load(), 1);
  // A failed unit leaves nothing behind and the connection is usable again.
  db->write_sync([](Connection& c) { c.query("UPDATE counters SET n = 5 WHERE id = 2").run(); });
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 2"), 5);
}

TEST_F(PostgresStorage, ReplicasStartingTogetherMigrateOnce) {
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<PostgresDatabase>> replicas;
  for (int i = 0; i < kReplicas; ++i) replicas.push_back(open("shared", 2));
  std::latch go(kReplicas);
  std::vector<std::future<void>> done;
  for (auto& r : replicas)
    done.push_back(std::async(std::launch::async, [&, db = r.get()] {
      go.arrive_and_wait();
      db->migrate(kCounter);
    }));
  for (auto& f : done) EXPECT_NO_THROW(f.get());
  EXPECT_EQ(scalar(*replicas[0], "SELECT COUNT(*) FROM schema_migrations"), 2);
  EXPECT_EQ(scalar(*replicas[0], "SELECT COUNT(*) FROM counters"), 2);  // migration 2 ran once
}

TEST_F(PostgresStorage, SchemasKeepServicesApart) {
  auto a = open("job_service");
  auto b = open("thread_service");
  a->migrate(kCounter);
  b->migrate({kCounter[0]});
  EXPECT_EQ(scalar(*a, "SELECT COUNT(*) FROM counters"), 2);
  EXPECT_EQ(scalar(*b, "SELECT COUNT(*) FROM counters"), 0);
}

TEST_F(PostgresStorage, TheOutboxFindsARowThatCommitsAfterAHigherOne) {
  auto db = open();
  db->migrate({outbox::tables_migration(1), outbox::published_at_migration(2)});
  std::promise<void> low_appended, high_committed;
  auto low_appended_f = low_appended.get_future();
  auto high_committed_f = high_committed.get_future().share();
  std::atomic<int> low_runs{0};
  // The unit with the lower sequence number commits last.
  auto low = std::async(std::launch::async, [&] {
    db->write_sync([&](Connection& c) {
      outbox::append(c, "e-low", "t", "k1", "{}", 1);
      if (low_runs.fetch_add(1) == 0) {
        low_appended.set_value();
        high_committed_f.wait();
      }
    });
  });
  low_appended_f.wait();
  db->write_sync([](Connection& c) { outbox::append(c, "e-high", "t", "k2", "{}", 2); });
  auto first = db->read([](Connection& c) { return outbox::unpublished(c, 10); });
  ASSERT_EQ(first.size(), 1u);
  long long high_seq = first[0].seq;
  db->write_sync([&](Connection& c) { outbox::mark_published(c, {high_seq}, {}, 3); });
  high_committed.set_value();
  low.get();
  // A watermark at high_seq would skip it for good; per-row marks find it.
  auto second = db->read([](Connection& c) { return outbox::unpublished(c, 10); });
  ASSERT_EQ(second.size(), 1u);
  EXPECT_LT(second[0].seq, high_seq);
  EXPECT_EQ(second[0].key, "k1");
  EXPECT_EQ(db->read([](Connection& c) { return outbox::backlog(c); }), 1);
}

TEST_F(PostgresStorage, ABrokenPooledConnectionIsReplaced) {
  auto db = open("svc", 1);
  db->migrate(kCounter);
  db->write_sync([](Connection& c) { c.query("UPDATE counters SET n = 1 WHERE id = 1").run(); });
  // The server ends every session of this database (a restart or an idle timeout looks alike).
  {
    PgConnection admin(admin_, "public", "test-admin");
    admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()", name_)
        .run();
  }
  // The next unit of work finds its connection dead before sending anything: it reconnects.
  db->write_sync([](Connection& c) { c.query("UPDATE counters SET n = 2 WHERE id = 1").run(); });
  EXPECT_EQ(scalar(*db, "SELECT n FROM counters WHERE id = 1"), 2);
}

}  // namespace
}  // namespace al::storage
