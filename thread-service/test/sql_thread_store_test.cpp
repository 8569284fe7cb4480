// The thread database: threads stored before lock-quote knew who posted a quote get it from their
// messages when the schema is upgraded, and a message is loaded by its seq.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "common/storage/sqlite.hpp"
#include "storage/sql_thread_store.hpp"
#include "test_clock.hpp"

namespace al::thread {
namespace {

constexpr int kQuoteAuthorsMigration = 7;

class SqlThreadStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentlancer-thread-sql-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    db_ = std::make_unique<storage::SqliteDatabase>(dir_ + "/threads.db");
  }
  void TearDown() override {
    db_->stop();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The schema as it was before quote authors were kept.
  void migrate_before_quote_authors() {
    auto all = thread_migrations();
    std::vector<storage::Migration> before;
    for (const auto& m : all)
      if (m.version < kQuoteAuthorsMigration) before.push_back(m);
    ASSERT_LT(before.size(), all.size());
    db_->migrate(before);
  }

  void old_thread(long long pos, const std::string& id, const std::optional<std::string>& latest_quote,
                  const std::optional<std::string>& locked_quote) {
    db_->write_sync([&](storage::Connection& c) {
      c.query("INSERT INTO threads(pos, id, service_id, service_title, service_terms, requester_id, provider_id, mode, "
              "status, message_count, latest_quote_message_id, latest_quote_terms, locked_quote_message_id, "
              "locked_terms, created_at, updated_at, version, revision) "
              "VALUES (?,?,'svc_a','t','{}','agt_r','agt_p','quick_quote',?,4,?,?,?,?,1,1,1,1)",
              pos, id, locked_quote ? "quote_locked" : "negotiating", latest_quote,
              latest_quote ? std::optional<std::string>(R"({"timeline":"1 day"})") : std::nullopt, locked_quote,
              locked_quote ? std::optional<std::string>(R"({"timeline":"3 days"})") : std::nullopt)
          .run();
    });
  }
  void old_message(long long thread_pos, long long seq, const std::string& id, const std::string& role,
                   const std::string& type, const std::optional<std::string>& terms) {
    db_->write_sync([&](storage::Connection& c) {
      c.query("INSERT INTO messages(thread_pos, seq, id, sender_id, sender_role, type, body, terms, created_at) "
              "VALUES (?,?,?,?,?,?,'b',?,1)",
              thread_pos, seq, id, role == "provider" ? "agt_p" : "agt_r", role, type, terms)
          .run();
    });
  }

  testing::TestClock clock_;
  std::string dir_;
  std::unique_ptr<storage::Database> db_;
};

TEST_F(SqlThreadStoreTest, UpgradeFillsInQuoteAuthorsFromTheMessages) {
  migrate_before_quote_authors();
  // A thread whose latest quote (seq 3) is the requester's counter to the provider's (seq 2).
  old_thread(1, "thr_countered", "msg_c3", std::nullopt);
  old_message(1, 1, "msg_c1", "requester", "text", std::nullopt);
  old_message(1, 2, "msg_c2", "provider", "quote", R"({"timeline":"3 days"})");
  old_message(1, 3, "msg_c3", "requester", "quote", R"({"timeline":"1 day"})");
  // A thread locked on the provider's quote at seq 2.
  old_thread(2, "thr_locked", "msg_l2", "msg_l2");
  old_message(2, 1, "msg_l1", "requester", "text", std::nullopt);
  old_message(2, 2, "msg_l2", "provider", "quote", R"({"timeline":"3 days"})");
  // A thread nobody quoted on.
  old_thread(3, "thr_quiet", std::nullopt, std::nullopt);
  old_message(3, 1, "msg_q1", "requester", "text", std::nullopt);

  db_->migrate(thread_migrations());
  SqlThreadStore store(*db_, clock_);

  auto countered = store.find_thread("thr_countered");
  ASSERT_TRUE(countered);
  EXPECT_EQ(countered->latest_quote_seq, 3);
  EXPECT_EQ(countered->provider_quote_message_id, "msg_c2");
  EXPECT_EQ(countered->provider_quote_seq, 2);
  ASSERT_TRUE(countered->provider_quote_terms);
  EXPECT_EQ(countered->provider_quote_terms->timeline, "3 days");
  EXPECT_TRUE(latest_quote_is_requesters(*countered));
  EXPECT_FALSE(countered->locked_quote_seq);

  auto locked = store.find_thread("thr_locked");
  ASSERT_TRUE(locked);
  EXPECT_EQ(locked->locked_quote_seq, 2);
  EXPECT_EQ(locked->provider_quote_seq, 2);
  EXPECT_FALSE(latest_quote_is_requesters(*locked));

  auto quiet = store.find_thread("thr_quiet");
  ASSERT_TRUE(quiet);
  EXPECT_FALSE(quiet->latest_quote_seq);
  EXPECT_FALSE(quiet->provider_quote_message_id);
  EXPECT_FALSE(quiet->provider_quote_seq);
  EXPECT_FALSE(quiet->provider_quote_terms);
  EXPECT_FALSE(quiet->locked_quote_seq);
}

TEST_F(SqlThreadStoreTest, LoadsAMessageOfTheThreadBySeq) {
  db_->migrate(thread_migrations());
  old_thread(1, "thr_a", "msg_a2", std::nullopt);
  old_message(1, 1, "msg_a1", "requester", "text", std::nullopt);
  old_message(1, 2, "msg_a2", "provider", "quote", R"({"timeline":"3 days"})");
  old_thread(2, "thr_b", std::nullopt, std::nullopt);
  SqlThreadStore store(*db_, clock_);
  auto a = store.find_thread("thr_a");
  auto b = store.find_thread("thr_b");
  ASSERT_TRUE(a && b);
  std::optional<Message> quote, missing, other_thread;
  db_->write_sync([&](storage::Connection& c) {
    auto tx = SqlThreadStore::tx_on(c, clock_);
    quote = tx->load_message(*a, 2);
    missing = tx->load_message(*a, 3);
    other_thread = tx->load_message(*b, 2);
  });
  ASSERT_TRUE(quote);
  EXPECT_EQ(quote->id, "msg_a2");
  EXPECT_EQ(quote->seq, 2);
  EXPECT_EQ(quote->type, MessageType::Quote);
  EXPECT_EQ(quote->sender_role, Role::Provider);
  EXPECT_EQ(quote->terms->timeline, "3 days");
  EXPECT_FALSE(missing);
  EXPECT_FALSE(other_thread);
}

}  // namespace
}  // namespace al::thread
