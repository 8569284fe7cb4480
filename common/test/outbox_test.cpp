#include "common/events/outbox.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/kafka/kafka.hpp"
#include "common/storage/sqlite.hpp"
#include "common/log/log.hpp"
#include "common/util/ids.hpp"
#include "test_clock.hpp"

namespace {

namespace fs = std::filesystem;
using al::events::CloudEvent;
using al::events::ConsumerLoop;
using al::events::OutboxRelay;
using al::events::RelayOptions;
using al::storage::Connection;
using al::storage::Database;
using al::storage::SqliteDatabase;
using namespace std::chrono_literals;

const std::string kTopic = "agentlancer.jobs.v1";

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 10000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "al_outbox_test_XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

long long scalar(Database& db, const std::string& sql) {
  return db.read([&](Connection& c) {
    auto q = c.query(sql);
    return q.next() ? q.int64(0) : -1LL;
  });
}

CloudEvent make_event(const std::string& subject, long long seq, const std::string& type = "test.happened") {
  CloudEvent e;
  e.id = al::new_uuid_v4();
  e.type = type;
  e.source = "common-test";
  e.subject = subject;
  e.time = 1'800'000'000'000 + seq;
  e.seq = seq;
  e.audience = {"agt_a"};
  e.request_id = "req-" + std::to_string(seq);
  e.data = boost::json::object{{"n", seq}};
  return e;
}

// ---- Database group commit -------------------------------------------------------------------

TEST(DatabaseGroupCommit, ConcurrentWritesCommitTogetherAndAFailureIsIsolated) {
  TempDir dir;
  SqliteDatabase db(dir.file("group.db"));
  db.migrate({{1, "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL)"}});
  std::atomic<int> commits{0};
  db.add_commit_listener([&] { ++commits; });

  // Hold the writer thread so that every following write queues up behind it.
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  db.write([&](Connection&) {
    entered.set_value();
    released.wait();
  }, nullptr);
  entered.get_future().wait();

  constexpr int kThreads = 4, kPerThread = 50, kTotal = kThreads * kPerThread, kPoison = 77;
  std::atomic<int> ok{0}, failed{0}, done{0}, failed_index{-1};
  std::string failure_text;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kPerThread; ++j) {
        int i = t * kPerThread + j;
        db.write(
            [i](Connection& c) {
              c.query("INSERT INTO t(k, v) VALUES (?, ?)", i, "v" + std::to_string(i)).run();
              if (i == kPoison) throw std::runtime_error("boom " + std::to_string(i));
            },
            [&, i](std::exception_ptr error) {
              if (error) {
                ++failed;
                failed_index = i;
                try {
                  std::rethrow_exception(error);
                } catch (const std::exception& e) {
                  failure_text = e.what();
                }
              } else {
                ++ok;
              }
              ++done;
            });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(db.pending_writes(), static_cast<std::size_t>(kTotal));
  EXPECT_EQ(commits.load(), 0);
  release.set_value();

  ASSERT_TRUE(eventually([&] { return done.load() == kTotal && commits.load() >= 2; }));
  EXPECT_EQ(ok.load(), kTotal - 1);
  EXPECT_EQ(failed.load(), 1);
  EXPECT_EQ(failed_index.load(), kPoison);
  EXPECT_EQ(failure_text, "boom 77");
  // The blocker's transaction, then one transaction for all 200 queued writes.
  EXPECT_EQ(commits.load(), 2);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t"), kTotal - 1);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t WHERE k = 77"), 0);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t WHERE k = 76"), 1);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t WHERE k = 78"), 1);
  EXPECT_EQ(db.pending_writes(), 0u);
}

TEST(DatabaseGroupCommit, BatchesAreBoundedByMaxBatch) {
  TempDir dir;
  al::storage::DatabaseOptions options;
  options.max_batch = 10;
  SqliteDatabase db(dir.file("bounded.db"), options);
  db.migrate({{1, "CREATE TABLE t(k INTEGER PRIMARY KEY)"}});
  std::atomic<int> commits{0};
  db.add_commit_listener([&] { ++commits; });
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  db.write([&](Connection&) {
    entered.set_value();
    released.wait();
  }, nullptr);
  entered.get_future().wait();
  std::atomic<int> done{0};
  for (int i = 0; i < 25; ++i)
    db.write([i](Connection& c) { c.query("INSERT INTO t(k) VALUES (?)", i).run(); },
             [&](std::exception_ptr) { ++done; });
  release.set_value();
  ASSERT_TRUE(eventually([&] { return done.load() == 25 && commits.load() >= 4; }));
  EXPECT_EQ(commits.load(), 4);  // 1 (blocker) + 10 + 10 + 5
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t"), 25);
}

TEST(DatabaseGroupCommit, WriteSyncRethrowsAndConstraintErrorsAreRecognisable) {
  TempDir dir;
  SqliteDatabase db(dir.file("sync.db"));
  db.migrate({{1, "CREATE TABLE t(k INTEGER PRIMARY KEY)"}});
  db.write_sync([](Connection& c) { c.query("INSERT INTO t(k) VALUES (1)").run(); });
  try {
    db.write_sync([](Connection& c) { c.query("INSERT INTO t(k) VALUES (1)").run(); });
    FAIL() << "duplicate insert succeeded";
  } catch (const al::storage::SqliteError& e) {
    EXPECT_TRUE(e.is_constraint()) << e.what();
  }
  EXPECT_THROW(db.write_sync([](Connection&) { throw std::logic_error("nope"); }), std::logic_error);
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM t"), 1);
  EXPECT_TRUE(db.healthy());
}

TEST(DatabaseGroupCommit, MigrationsApplyOnceInOrder) {
  TempDir dir;
  {
    SqliteDatabase db(dir.file("m.db"));
    db.migrate({al::events::outbox_migration(1), {2, "CREATE TABLE extra(x INTEGER)"}});
    EXPECT_EQ(scalar(db, "SELECT MAX(version) FROM schema_migrations"), 2);
  }
  SqliteDatabase again(dir.file("m.db"));
  // Re-running is a no-op (CREATE TABLE would fail if re-applied); a new version is applied.
  EXPECT_NO_THROW(again.migrate({al::events::outbox_migration(1), {2, "CREATE TABLE extra(x INTEGER)"},
                                 {3, "CREATE TABLE more(y INTEGER)"}}));
  EXPECT_EQ(scalar(again, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

TEST(DatabaseGroupCommit, WritesAfterStopAreRejected) {
  TempDir dir;
  SqliteDatabase db(dir.file("stop.db"));
  db.stop();
  std::exception_ptr error;
  db.write([](Connection&) {}, [&](std::exception_ptr e) { error = e; });
  EXPECT_TRUE(error);
  EXPECT_THROW(db.write_sync([](Connection&) {}), std::runtime_error);
}

// ---- outbox helpers without Kafka ------------------------------------------------------------

TEST(Outbox, ClaimEventIsOncePerConsumer) {
  TempDir dir;
  SqliteDatabase db(dir.file("claim.db"));
  db.migrate({al::events::outbox_migration(1)});
  std::vector<bool> results;
  db.write_sync([&](Connection& c) {
    results.push_back(al::events::claim_event(c, "c1", "e1", 1));
    results.push_back(al::events::claim_event(c, "c1", "e1", 2));
    results.push_back(al::events::claim_event(c, "c2", "e1", 3));
    results.push_back(al::events::claim_event(c, "c1", "e2", 4));
  });
  EXPECT_EQ(results, (std::vector<bool>{true, false, true, true}));
  EXPECT_EQ(scalar(db, "SELECT COUNT(*) FROM processed_events"), 3);
}

TEST(Outbox, AppendStoresTheCloudEvent) {
  TempDir dir;
  SqliteDatabase db(dir.file("append.db"));
  db.migrate({al::events::outbox_migration(1), al::events::outbox_published_at_migration(2)});
  CloudEvent e = make_event("job_1", 3);
  db.write_sync([&](Connection& c) { al::events::append_to_outbox(c, kTopic, e, 42); });
  auto row = db.read([](Connection& c) {
    auto q = c.query(
        "SELECT event_id, topic, msg_key, payload, created_at, "
        "CASE WHEN published_at IS NULL THEN 1 ELSE 0 END FROM outbox");
    EXPECT_TRUE(q.next());
    return std::make_tuple(q.text(0), q.text(1), q.text(2), q.text(3), q.int64(4), q.int64(5) == 1);
  });
  EXPECT_EQ(std::get<0>(row), e.id);
  EXPECT_EQ(std::get<1>(row), kTopic);
  EXPECT_EQ(std::get<2>(row), "job_1");
  EXPECT_EQ(std::get<4>(row), 42);
  EXPECT_TRUE(std::get<5>(row));
  auto parsed = CloudEvent::from_json(boost::json::parse(std::get<3>(row)));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->id, e.id);
  EXPECT_EQ(parsed->type, e.type);
  EXPECT_EQ(parsed->subject, "job_1");
  EXPECT_EQ(parsed->seq, 3);
  EXPECT_EQ(parsed->time, e.time);
  EXPECT_EQ(parsed->audience, e.audience);
  EXPECT_EQ(parsed->request_id, "req-3");
  EXPECT_EQ(parsed->data.at("n").as_int64(), 3);
  // The event id is unique in the outbox.
  EXPECT_THROW(db.write_sync([&](Connection& c) { al::events::append_to_outbox(c, kTopic, e, 43); }),
               al::storage::SqliteError);
}

// ---- relay and consumer against the embedded Kafka ---------------------------------------------

std::vector<std::string> subjects(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

struct StalledHolderRun {
  long long applied = 0, distinct = 0, duplicates = 0, stalled_published = 0;
};

// A topic of its own on a real broker (the tests share it with others).
void create_topic(const std::string& bootstrap, const std::string& name, int partitions) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), error, sizeof error), RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  ASSERT_NE(rk, nullptr) << error;
  rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(name.c_str(), partitions, 1, error, sizeof error);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &topic, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 30000);
  ASSERT_NE(event, nullptr) << "CreateTopics timed out";
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(rd_kafka_topic_result_error(results[0]), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_topic_result_error_string(results[0]);
  rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(topic);
  rd_kafka_destroy(rk);
}

class OutboxKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (real_kafka) {
      const char* state = std::getenv("AGENTLANCER_TEST_KAFKA_STATE");
      if (!state || !*state) GTEST_SKIP() << "AGENTLANCER_TEST_KAFKA_STATE not set (ctest starts Kafka for this test)";
      std::ifstream in(std::string(state) + "/bootstrap");
      std::getline(in, bootstrap);
      ASSERT_FALSE(bootstrap.empty()) << "no bootstrap in " << state;
      topic = "outbox-test-" + al::random_hex(6);
      create_topic(bootstrap, topic, 3);
    } else {
      cluster = std::make_unique<al::kafka::EmbeddedCluster>(1, 3);
      bootstrap = cluster->bootstrap();
    }
    db = std::make_unique<SqliteDatabase>(dir.file("outbox.db"));
    db->migrate({al::events::outbox_migration(1), al::events::outbox_published_at_migration(2),
                 al::events::outbox_positions_migration(3)});
    sink = std::make_unique<SqliteDatabase>(dir.file("sink.db"));
    sink->migrate({al::events::outbox_migration(1),
                   {2, "CREATE TABLE applied(n INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, "
                       "subject TEXT NOT NULL, seq INTEGER NOT NULL)"}});
    group = "g-" + al::random_hex(6);
  }

  void TearDown() override {
    for (auto& c : consumers) c->stop();
    for (auto& r : relays) r->stop();
    // Stop the databases before the relays are destroyed: a relay's commit listener stays
    // registered after it is gone (see RelayCommitListenerOutlivesRelay).
    if (db) db->stop();
    if (sink) sink->stop();
    consumers.clear();
    relays.clear();
    db.reset();
    sink.reset();
    cluster.reset();
  }

  OutboxRelay& relay(RelayOptions options = {}, al::kafka::Settings producer_settings = {}) {
    options.retry_backoff_ms = 100;
    relays.push_back(std::make_unique<OutboxRelay>(*db, bootstrap, clock, &metrics, options,
                                                   std::move(producer_settings)));
    relays.back()->start();
    return *relays.back();
  }

  ConsumerLoop& consumer(ConsumerLoop::Apply apply = {}, al::kafka::Settings settings = {}) {
    if (!apply) {
      apply = [](Connection& c, const CloudEvent& e) {
        c.query("INSERT INTO applied(event_id, subject, seq) VALUES (?,?,?)", e.id, e.subject, e.seq).run();
      };
    }
    consumers.push_back(std::make_unique<ConsumerLoop>("sink", bootstrap, group,
                                                       std::vector<std::string>{topic}, *sink, clock,
                                                       std::move(apply), &metrics, std::move(settings)));
    consumers.back()->start();
    return *consumers.back();
  }

  std::vector<CloudEvent> append(const std::vector<std::string>& subjects, long long first_seq, int per_subject) {
    std::vector<CloudEvent> events;
    for (int i = 0; i < per_subject; ++i)
      for (const auto& s : subjects) events.push_back(make_event(s, first_seq + i));
    db->write_sync([&](Connection& c) {
      for (const auto& e : events) al::events::append_to_outbox(c, topic, e, clock.now_ms());
    });
    return events;
  }

  long long applied() { return scalar(*sink, "SELECT COUNT(*) FROM applied"); }
  long long applied_distinct() { return scalar(*sink, "SELECT COUNT(DISTINCT event_id) FROM applied"); }
  // Rows not marked published.
  long long backlog() {
    return scalar(*db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL");
  }

  // subject -> seqs in the order they were applied
  std::map<std::string, std::vector<long long>> applied_order() {
    return sink->read([](Connection& c) {
      std::map<std::string, std::vector<long long>> out;
      auto q = c.query("SELECT subject, seq FROM applied ORDER BY n");
      while (q.next()) out[q.text(0)].push_back(q.int64(1));
      return out;
    });
  }

  // A holder takes the lease, reads a batch and stalls 4 s before producing it; its lease (600
  // ms) runs out, a second relay takes over and publishes the batch (well within the stall, even
  // on a loaded machine); then the first one wakes up.
  StalledHolderRun stalled_holder(bool transactional) {
    constexpr int kEvents = 12;
    auto& sub = consumer();
    RelayOptions options;
    options.transactional = transactional;
    options.lease_ms = 600;
    RelayOptions stalling = options;
    stalling.fault_pause_before_produce_ms = 4000;
    auto& stalled = relay(stalling);
    EXPECT_TRUE(eventually([&] { return stalled.publishing(); }));
    append(subjects("s", 4), 1, 3);
    auto& next = relay(options);
    EXPECT_TRUE(eventually([&] { return next.publishing() && backlog() == 0 && applied() >= kEvents; }))
        << backlog() << " " << applied();
    std::this_thread::sleep_for(std::chrono::milliseconds(5000));  // the stalled one wakes and tries
    sub.stop();
    return {applied(), applied_distinct(), sub.duplicate_count(), stalled.published_count()};
  }

  bool real_kafka = false;  // a real broker (OutboxRealKafkaTest) instead of the embedded one
  std::string bootstrap;
  std::string topic = kTopic;
  TempDir dir;
  al::testing::TestClock clock;
  al::Metrics metrics;
  std::unique_ptr<al::kafka::EmbeddedCluster> cluster;
  std::unique_ptr<Database> db;
  std::unique_ptr<Database> sink;
  std::string group;
  std::vector<std::unique_ptr<OutboxRelay>> relays;
  std::vector<std::unique_ptr<ConsumerLoop>> consumers;
};

std::vector<long long> range(long long first, long long last) {
  std::vector<long long> out;
  for (long long i = first; i <= last; ++i) out.push_back(i);
  return out;
}

TEST_F(OutboxKafkaTest, RelayPublishesInOrderPerKeyAndConsumerAppliesOnce) {
  auto& sub = consumer();
  // 3 keys x 60 versions, committed in 6 transactions of 30, interleaved across keys; the relay
  // starts after the first two.
  for (int chunk = 0; chunk < 2; ++chunk) append({"job_a", "job_b", "job_c"}, 1 + chunk * 10, 10);
  auto& r = relay();
  for (int chunk = 2; chunk < 6; ++chunk) append({"job_a", "job_b", "job_c"}, 1 + chunk * 10, 10);
  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; })) << "backlog " << r.backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 180; })) << "applied " << applied();
  EXPECT_TRUE(sub.joined());  // readiness flag: it has been assigned partitions
  sub.stop();

  EXPECT_EQ(r.published_count(), 180);
  EXPECT_EQ(r.failed_count(), 0);
  EXPECT_EQ(scalar(*db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL"), 180);  // every row delivered
  EXPECT_EQ(applied(), 180);
  EXPECT_EQ(applied_distinct(), 180);
  EXPECT_EQ(sub.applied_count(), 180);
  EXPECT_EQ(sub.duplicate_count(), 0);
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM processed_events WHERE consumer = 'sink'"), 180);
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM dead_letters"), 0);
  auto order = applied_order();
  ASSERT_EQ(order.size(), 3u);
  for (const auto& [subject, seqs] : order) EXPECT_EQ(seqs, range(1, 60)) << subject;

  std::string text = metrics.render();
  EXPECT_NE(text.find("outbox_published_total 180"), std::string::npos) << text;
  EXPECT_NE(text.find("consumer_events_total 180"), std::string::npos) << text;
}

TEST_F(OutboxKafkaTest, BrokerOutageLosesNothing) {
  auto& sub = consumer();
  auto& r = relay();
  append(subjects("k", 5), 1, 2);
  ASSERT_TRUE(eventually([&] { return applied() == 10; })) << applied();

  cluster->set_broker_down(1);
  append(subjects("k", 5), 3, 4);  // 20 more while the broker is down
  std::this_thread::sleep_for(1s);  // the outage itself
  EXPECT_EQ(r.backlog(), 20);       // nothing could be delivered, nothing marked
  EXPECT_EQ(applied(), 10);
  cluster->set_broker_up(1);

  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; }, 15000ms)) << "backlog " << r.backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 30; }, 15000ms)) << "applied " << applied();
  sub.stop();
  EXPECT_EQ(applied(), 30);
  EXPECT_EQ(applied_distinct(), 30);
  for (const auto& [subject, seqs] : applied_order()) EXPECT_EQ(seqs, range(1, 6)) << subject;
}

TEST_F(OutboxKafkaTest, DeliveriesThatTimeOutAreRetriedInOrder) {
  // With a message timeout shorter than the outage the deliveries fail; the relay rewinds to the
  // first failed row and publishes again once the broker is back.
  auto& sub = consumer();
  auto& r = relay({}, {{"message.timeout.ms", "400"}});
  append(subjects("m", 3), 1, 1);
  ASSERT_TRUE(eventually([&] { return applied() == 3; })) << applied();

  cluster->set_broker_down(1);
  append(subjects("m", 3), 2, 4);  // seq 2..5 for each key
  ASSERT_TRUE(eventually([&] { return r.failed_count() >= 12; }, 5000ms)) << r.failed_count();
  EXPECT_EQ(r.backlog(), 12);
  cluster->set_broker_up(1);

  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; }, 15000ms)) << "backlog " << r.backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 15; }, 15000ms)) << "applied " << applied();
  sub.stop();
  EXPECT_EQ(applied_distinct(), 15);
  for (const auto& [subject, seqs] : applied_order()) EXPECT_EQ(seqs, range(1, 5)) << subject;
  EXPECT_NE(metrics.render().find("outbox_publish_failures_total"), std::string::npos);
}

TEST_F(OutboxKafkaTest, EventsCommittedWhileNoRelayRunsArePublishedLater) {
  append(subjects("j", 5), 1, 5);
  EXPECT_EQ(backlog(), 25);
  auto& sub = consumer();
  auto& r = relay();
  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; })) << r.backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 25; })) << applied();
  sub.stop();
  EXPECT_EQ(applied_distinct(), 25);
  EXPECT_EQ(sub.duplicate_count(), 0);
}

TEST_F(OutboxKafkaTest, RelayCrashRightAfterStartIsRecoveredByTheNextRelay) {
  append(subjects("j", 5), 1, 5);
  auto& sub = consumer();
  relay().abandon();  // "killed": whatever it sent is never marked
  auto& second = relay();
  ASSERT_TRUE(eventually([&] { return second.backlog() == 0; })) << second.backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 25; })) << applied();
  sub.stop();
  EXPECT_EQ(applied(), 25);
  EXPECT_EQ(applied_distinct(), 25);
  EXPECT_EQ(sub.applied_count(), 25);
  for (const auto& [subject, seqs] : applied_order()) EXPECT_EQ(seqs, range(1, 5)) << subject;
}

// Replicas share one outbox: one relay publishes at a time, and when it dies without a word the
// other takes over once the lease expires; nothing is lost and every event arrives once.
TEST_F(OutboxKafkaTest, OneRelayPublishesAndAnotherTakesOverWhenItDies) {
  auto& sub = consumer();
  RelayOptions options;
  options.lease_ms = 1500;
  auto& a = relay(options);
  auto& b = relay(options);
  append(subjects("l", 4), 1, 5);
  ASSERT_TRUE(eventually([&] { return backlog() == 0; })) << backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 20; })) << applied();
  ASSERT_NE(a.publishing(), b.publishing());  // exactly one holds the lease
  auto& holder = a.publishing() ? a : b;
  auto& standby = a.publishing() ? b : a;
  EXPECT_EQ(holder.published_count(), 20);
  EXPECT_EQ(standby.published_count(), 0);
  holder.abandon();  // killed: keeps its lease until it expires
  append(subjects("l", 4), 6, 5);
  ASSERT_TRUE(eventually([&] { return backlog() == 0; })) << backlog();
  ASSERT_TRUE(eventually([&] { return applied() == 40; })) << applied();
  EXPECT_TRUE(standby.publishing());
  EXPECT_EQ(standby.published_count(), 20);
  sub.stop();
  EXPECT_EQ(applied_distinct(), 40);
  for (const auto& [subject, seqs] : applied_order()) EXPECT_EQ(seqs, range(1, 10)) << subject;
}

// A relay killed between the broker's acknowledgement and its mark leaves rows on Kafka that the
// outbox calls unpublished. The next holder reads the partitions back from the recorded offsets
// and marks them instead of producing them again: each event is on Kafka once.
TEST_F(OutboxKafkaTest, DeliveredButUnmarkedRowsAreFoundOnKafkaNotProducedAgain) {
  constexpr int kEvents = 15;
  auto& sub = consumer();
  auto& before = relay();  // publishes and marks normally: its offsets are recorded
  append(subjects("f", 5), 1, 2);
  ASSERT_TRUE(eventually([&] { return backlog() == 0 && applied() == 10; })) << applied();
  before.stop();
  EXPECT_GT(scalar(*db, "SELECT COUNT(*) FROM relay_positions"), 0);

  RelayOptions faulty;
  faulty.fault_drop_delivery_reports = true;
  auto& first = relay(faulty);
  append(subjects("f", 5), 3, 3);
  // The events reach the consumer, but the relay never records the deliveries.
  ASSERT_TRUE(eventually([&] { return applied() == 10 + kEvents; })) << applied();
  EXPECT_EQ(first.backlog(), kEvents);
  EXPECT_EQ(first.published_count(), 0);
  first.stop();
  EXPECT_EQ(backlog(), kEvents);

  auto& second = relay();
  ASSERT_TRUE(eventually([&] { return second.backlog() == 0; })) << second.backlog();
  // The rows are marked in the database before the relay counts them.
  EXPECT_TRUE(eventually([&] { return second.recovered_count() == kEvents; })) << second.recovered_count();
  EXPECT_EQ(second.published_count(), 0);
  // New events after the read-back are produced as usual.
  append(subjects("f", 5), 6, 1);
  ASSERT_TRUE(eventually([&] { return applied() == 10 + kEvents + 5; })) << applied();
  EXPECT_TRUE(eventually([&] { return second.published_count() == 5; })) << second.published_count();
  sub.stop();
  EXPECT_EQ(sub.duplicate_count(), 0);  // nothing reached Kafka twice
  EXPECT_EQ(applied_distinct(), 10 + kEvents + 5);
  for (const auto& [subject, seqs] : applied_order()) EXPECT_EQ(seqs, range(1, 6)) << subject;
  EXPECT_NE(metrics.render().find("outbox_recovered_total"), std::string::npos);
}

// A holder stalled past its lease (paused, not dead) produces its batch after the next holder
// has read the partitions back and published the same rows. Without transactions that batch lands
// a second time; with them the next holder's init_transactions has fenced the stalled producer and
// consumers (read_committed) see each event once.
TEST_F(OutboxKafkaTest, StalledHolderWithoutTransactionsPublishesItsBatchAgain) {
  auto run = stalled_holder(false);
  EXPECT_GT(run.duplicates, 0);  // the gap the transactions close
  EXPECT_EQ(run.distinct, 12);
}

// The embedded broker (librdkafka's mock cluster) does not fence a producer whose transactional id
// another one registered, so the guarantee is tested on a real broker.
class OutboxRealKafkaTest : public OutboxKafkaTest {
 protected:
  void SetUp() override {
    real_kafka = true;
    OutboxKafkaTest::SetUp();
  }
};

TEST_F(OutboxRealKafkaTest, StalledHolderWithoutTransactionsPublishesItsBatchAgain) {
  auto run = stalled_holder(false);
  EXPECT_GT(run.duplicates, 0);
  EXPECT_EQ(run.distinct, 12);
}

TEST_F(OutboxRealKafkaTest, StalledHolderIsFencedByTheNextHoldersTransactions) {
  auto run = stalled_holder(true);
  EXPECT_EQ(run.duplicates, 0);
  EXPECT_EQ(run.applied, 12);
  EXPECT_EQ(run.distinct, 12);
  EXPECT_EQ(run.stalled_published, 0);  // its late batch was refused
}

TEST_F(OutboxKafkaTest, ReplayPublishedOnStartRefillsARestartedBroker) {
  constexpr int kOld = 12;
  auto& first = relay();
  append(subjects("r", 4), 1, 3);
  ASSERT_TRUE(eventually([&] { return first.backlog() == 0; })) << first.backlog();
  first.stop();

  // The embedded broker restarts empty.
  cluster = std::make_unique<al::kafka::EmbeddedCluster>(1, 3);
  bootstrap = cluster->bootstrap();
  auto& sub = consumer();

  // A plain relay only publishes what is unpublished: the one new event.
  auto& plain = relay();
  append({"r0"}, 4, 1);
  ASSERT_TRUE(eventually([&] { return plain.backlog() == 0 && plain.published_count() == 1; }));
  ASSERT_TRUE(eventually([&] { return applied() == 1; })) << applied();
  EXPECT_EQ(plain.published_count(), 1);
  plain.stop();

  RelayOptions replay;
  replay.replay_published_on_start = true;
  auto& replaying = relay(replay);
  ASSERT_TRUE(eventually([&] { return replaying.published_count() == kOld + 1; }))
      << replaying.published_count();
  ASSERT_TRUE(eventually([&] { return applied() == kOld + 1; })) << applied();
  ASSERT_TRUE(eventually([&] { return sub.duplicate_count() == 1; })) << sub.duplicate_count();
  // After the replay it keeps relaying new events, once.
  append({"r1"}, 4, 1);
  ASSERT_TRUE(eventually([&] { return applied() == kOld + 2; })) << applied();
  EXPECT_TRUE(eventually([&] { return replaying.published_count() == kOld + 2; }));
  sub.stop();
  EXPECT_EQ(applied_distinct(), kOld + 2);
  EXPECT_EQ(backlog(), 0);
  // r0's seq 4 was published (and applied) before the replay re-sent 1..3: a replay after a broker
  // restart does not restore order relative to events published in between.
  auto order = applied_order();
  EXPECT_EQ(order["r0"], (std::vector<long long>{4, 1, 2, 3}));
  EXPECT_EQ(order["r1"], range(1, 4));
  EXPECT_EQ(order["r3"], range(1, 3));
}

TEST_F(OutboxKafkaTest, RestartedConsumerDoesNotReapply) {
  // The mock cluster's group coordinator waits (session timeout - 1 s) after the last member
  // leaves before it lets a new member in; a short session keeps the test fast.
  const al::kafka::Settings fast_session = {{"session.timeout.ms", "2500"}, {"heartbeat.interval.ms", "500"}};
  relay();
  auto& first = consumer({}, fast_session);
  append(subjects("c", 30), 1, 1);
  ASSERT_TRUE(eventually([&] { return applied() == 30; })) << applied();
  first.stop();
  EXPECT_EQ(first.applied_count(), 30);
  EXPECT_EQ(first.duplicate_count(), 0);

  // Same group, same database: offsets were stored only after the commits and committed on stop,
  // so the new member starts after them.
  auto& second = consumer({}, fast_session);
  append(subjects("c", 30), 2, 1);  // 30 more, over the same keys (so every partition moves on)
  ASSERT_TRUE(eventually([&] { return applied() == 60; }, 12000ms)) << applied();
  second.stop();
  EXPECT_EQ(second.applied_count(), 30);
  EXPECT_EQ(second.duplicate_count(), 0);
  EXPECT_EQ(applied_distinct(), 60);
}

TEST_F(OutboxKafkaTest, OffsetsAreNotStoredWhileTheWritesFail) {
  const al::kafka::Settings fast_session = {{"session.timeout.ms", "2500"}, {"heartbeat.interval.ms", "500"}};
  // Without a dead_letters table a failing apply fails the whole write, so the batch is retried
  // and its offsets must not be stored.
  sink->write_sync([](Connection& c) { c.exec("DROP TABLE dead_letters"); });
  auto attempts = std::make_shared<std::atomic<int>>(0);
  relay();
  auto& failing = consumer(
      [attempts](Connection&, const CloudEvent&) {
        ++*attempts;
        throw std::runtime_error("not yet");
      },
      fast_session);
  append(subjects("o", 10), 1, 1);
  ASSERT_TRUE(eventually([&] { return attempts->load() >= 20; })) << attempts->load();  // retried
  failing.stop();
  EXPECT_EQ(failing.applied_count(), 0);
  EXPECT_EQ(applied(), 0);
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM processed_events"), 0);  // rolled back with the write

  sink->write_sync([](Connection& c) {
    c.exec("CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL, "
           "topic TEXT NOT NULL, payload TEXT NOT NULL, error TEXT NOT NULL, created_at INTEGER NOT NULL)");
  });
  auto& healthy = consumer({}, fast_session);  // same group
  ASSERT_TRUE(eventually([&] { return applied() == 10; }, 12000ms)) << applied();
  healthy.stop();
  EXPECT_EQ(healthy.applied_count(), 10);
  EXPECT_EQ(applied_distinct(), 10);
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM dead_letters"), 0);
}

TEST_F(OutboxKafkaTest, FailedApplyGoesToDeadLettersAndOthersProceed) {
  auto& sub = consumer([](Connection& c, const CloudEvent& e) {
    c.query("INSERT INTO applied(event_id, subject, seq) VALUES (?,?,?)", e.id, e.subject, e.seq).run();
    if (e.type == "test.poison") throw std::runtime_error("cannot apply " + e.subject);
  });
  relay();
  append({"ok1"}, 1, 1);
  CloudEvent poison = make_event("bad", 1, "test.poison");
  db->write_sync([&](Connection& c) { al::events::append_to_outbox(c, kTopic, poison, clock.now_ms()); });
  append({"ok2"}, 1, 1);
  // A message that is not a CloudEvent at all.
  {
    al::kafka::Producer producer(cluster->bootstrap());
    std::string error;
    ASSERT_TRUE(producer.produce(kTopic, "junk", "{not json", 1, error)) << error;
    producer.flush(5000);
    auto deliveries = producer.poll(0);
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].error, RD_KAFKA_RESP_ERR_NO_ERROR);
    EXPECT_EQ(deliveries[0].opaque, 1);
  }
  ASSERT_TRUE(eventually([&] { return scalar(*sink, "SELECT COUNT(*) FROM dead_letters") == 2; }));
  ASSERT_TRUE(eventually([&] { return applied() == 2; }));
  sub.stop();
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM applied WHERE subject = 'bad'"), 0);  // rolled back
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM dead_letters WHERE error = 'cannot apply bad'"), 1);
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM dead_letters WHERE error = 'not a CloudEvent' AND payload = '{not json'"), 1);
  // The poison event is claimed, so a redelivery would not retry it.
  EXPECT_EQ(scalar(*sink, "SELECT COUNT(*) FROM processed_events WHERE event_id = '" + poison.id + "'"), 1);
  EXPECT_EQ(sub.applied_count(), 2);
}

TEST_F(OutboxKafkaTest, PublishedRowsAreTrimmedAfterRetention) {
  RelayOptions options;
  options.retention_ms = 60'000'000;  // 1000 minutes
  auto& r = relay(options);
  append(subjects("t", 3), 1, 2);
  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; }));
  EXPECT_EQ(scalar(*db, "SELECT COUNT(*) FROM outbox"), 6);
  clock.advance(30'000'000);  // half the retention: kept
  r.wake();
  append({"late"}, 1, 1);
  ASSERT_TRUE(eventually([&] { return r.backlog() == 0; }));
  EXPECT_EQ(scalar(*db, "SELECT COUNT(*) FROM outbox"), 7);
  clock.advance(40'000'000);  // the first six are now past retention, the late one is not
  r.wake();
  ASSERT_TRUE(eventually([&] { return scalar(*db, "SELECT COUNT(*) FROM outbox") == 1; }))
      << scalar(*db, "SELECT COUNT(*) FROM outbox");
  EXPECT_EQ(scalar(*db, "SELECT COUNT(*) FROM outbox WHERE msg_key = 'late'"), 1);
}

TEST_F(OutboxKafkaTest, BrokerReachable) {
  auto& r = relay();
  EXPECT_TRUE(r.broker_reachable(5000));
  OutboxRelay not_started(*db, cluster->bootstrap(), clock, nullptr);
  EXPECT_FALSE(not_started.broker_reachable(100));
}

TEST_F(OutboxKafkaTest, RelayCommitListenerOutlivesRelay) {
  {
    OutboxRelay short_lived(*db, cluster->bootstrap(), clock, nullptr);
    short_lived.start();
    short_lived.stop();
  }
  append({"after"}, 1, 1);  // the commit listener of the destroyed relay runs here
  EXPECT_EQ(backlog(), 1);
}

}  // namespace
