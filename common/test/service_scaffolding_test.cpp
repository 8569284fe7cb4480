// The scaffolding every service shares: the query-parameter reader of list routes, the outcome
// mapping, named columns, version checks, completions on the caller's executor, the worker
// pool and the module lifecycle.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "common/kafka/kafka.hpp"
#include "common/service/lifecycle.hpp"
#include "common/service/query_params.hpp"
#include "common/service/result.hpp"
#include "common/service/worker_pool.hpp"
#include "common/storage/columns.hpp"
#include "common/storage/sqlite.hpp"
#include "common/util/caller_executor.hpp"

namespace al {
namespace {

using namespace std::chrono_literals;

http::Request request_with(http::Pairs query) {
  http::Request r;
  r.query = std::move(query);
  return r;
}

enum class Colour { Red, Blue };
std::optional<Colour> parse_colour(std::string_view s) {
  if (s == "red") return Colour::Red;
  if (s == "blue") return Colour::Blue;
  return std::nullopt;
}

TEST(QueryParams, TakesDeclaredParametersAndThePaginationPair) {
  int limit = 20;
  std::optional<long long> cursor;
  std::optional<bool> incoming;
  std::vector<Colour> colours;
  auto params = QueryParams()
                    .limit(limit)
                    .cursor(cursor)
                    .one_of<std::optional<bool>>("mode", {{"incoming", true}, {"outgoing", false}}, incoming, "must be incoming or outgoing")
                    .comma_list<Colour>("colour", parse_colour, colours, "must be red or blue");
  auto errors = params.read(request_with({{"limit", "7"}, {"cursor", "42"}, {"mode", "outgoing"}, {"colour", "red,blue"}}));
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(limit, 7);
  EXPECT_EQ(cursor, 42);
  EXPECT_EQ(incoming, false);
  EXPECT_EQ(colours, (std::vector<Colour>{Colour::Red, Colour::Blue}));
}

TEST(QueryParams, CollectsEveryProblemInTheOrderOfTheQuery) {
  int limit = 20;
  long long cursor = 0;
  std::vector<Colour> colours;
  auto params = QueryParams().limit(limit).cursor(cursor).comma_list<Colour>("colour", parse_colour, colours, "must be red or blue");
  auto errors = params.read(request_with(
      {{"colour", ""}, {"limit", "0"}, {"nope", "1"}, {"cursor", "-3"}, {"limit", "101"}, {"colour", "red,green"}}));
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_EQ(errors[0].field, "colour");
  EXPECT_EQ(errors[0].message, "must not be empty");
  EXPECT_EQ(errors[1].field, "limit");
  EXPECT_EQ(errors[1].message, "must be 1..100");
  EXPECT_EQ(errors[2].field, "nope");
  EXPECT_EQ(errors[2].message, "unknown query parameter");
  EXPECT_EQ(errors[3].message, "is not a cursor from a previous page");
  EXPECT_EQ(errors[4].message, "must be 1..100");
  EXPECT_EQ(errors[5].message, "must be red or blue");
  EXPECT_EQ(limit, 20);  // nothing invalid was taken
}

TEST(QueryParams, EchoesAnUnknownNameAsValidUtf8OfAtMost64Bytes) {
  std::string bold;  // 17 four-byte characters: 68 bytes
  for (int i = 0; i < 17; ++i) bold += "\xF0\x9D\x90\x93";
  auto errors = QueryParams().read(request_with({{bold, "1"}, {"\xFF", "1"}}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].field, bold.substr(0, 64));
  EXPECT_EQ(errors[1].field, "\xEF\xBF\xBD");
  EXPECT_EQ(errors[1].message, "unknown query parameter");
}

TEST(QueryParams, AnswersOne400WithEveryProblem) {
  long long limit = 100;
  std::optional<http::Response> sent;
  bool ok = QueryParams().limit(limit, 500).read(request_with({{"limit", "501"}, {"x", "1"}}),
                                                 [&](http::Response r) { sent = std::move(r); });
  EXPECT_FALSE(ok);
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->status, 400u);
  auto body = boost::json::parse(sent->body).as_object();
  EXPECT_EQ(body.at("code"), "validation_error");
  EXPECT_EQ(body.at("details").as_array().size(), 2u);
  EXPECT_EQ(body.at("details").as_array()[0].at("message"), "must be 1..500");
}

TEST(Outcomes, VerdictsMapOntoResultsAndRefusalsOntoStatuses) {
  EXPECT_EQ(kind_of(Verdict::Applied), ResultKind::Ok);
  EXPECT_EQ(kind_of(Verdict::Unprocessable), ResultKind::Unprocessable);
  EXPECT_TRUE(succeeded(ResultKind::Unchanged));
  EXPECT_FALSE(succeeded(ResultKind::Conflict));
  struct Case {
    ResultKind kind;
    unsigned status;
    const char* code;
  };
  for (auto c : {Case{ResultKind::Forbidden, 403, "forbidden"}, Case{ResultKind::NotFound, 404, "not_found"},
                 Case{ResultKind::Conflict, 409, "conflict"}, Case{ResultKind::Invalid, 400, "validation_error"},
                 Case{ResultKind::Unprocessable, 422, "unprocessable"}, Case{ResultKind::Unavailable, 503, "unavailable"},
                 Case{ResultKind::Internal, 500, "internal"}}) {
    auto r = refusal(c.kind, "why");
    EXPECT_EQ(r.status, c.status);
    auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(body.at("code"), c.code);
    EXPECT_EQ(body.at("error"), c.kind == ResultKind::Internal ? "Internal error" : "why");  // never an internal detail
  }
  auto specific = refusal(ResultKind::Conflict, "exists", "offer_exists", boost::json::object{{"offer_id", "off_1"}});
  auto body = boost::json::parse(specific.body).as_object();
  EXPECT_EQ(body.at("code"), "offer_exists");
  EXPECT_EQ(body.at("details").at("offer_id"), "off_1");
}

TEST(Columns, PositionsAreComputedFromNamesAtCompileTime) {
  constexpr auto kRow = storage::columns("id", "name", "version");
  static_assert(kRow["id"] == 0 && kRow["version"] == 2 && kRow.size() == 3);
  EXPECT_EQ(kRow.list(), "id, name, version");
  EXPECT_EQ(kRow.list("t"), "t.id, t.name, t.version");
}

TEST(VersionChecks, ExpectTheLoadedVersionAndRefuseALostUpdate) {
  storage::LoadedVersions<std::string> versions;
  EXPECT_EQ(versions.expected("a", 5), 4);  // not loaded here: the version before the new one
  versions.loaded("a", 7);
  EXPECT_EQ(versions.expected("a", 8), 7);
  versions.saved("a", 1, 8, "thing a");
  EXPECT_EQ(versions.expected("a", 9), 8);
  EXPECT_THROW(versions.saved("a", 0, 9, "thing a"), storage::ConcurrentUpdate);
}

TEST(VersionChecks, ATakenUniqueRuleRerunsTheUnitOfWork) {
  EXPECT_EQ(storage::rerun_if_taken("x", [] { return 3; }), 3);
  try {
    storage::rerun_if_taken("offer insert", []() -> int {
      throw storage::StorageError(storage::ErrorKind::Constraint, "23505", "duplicate key");
    });
    FAIL();
  } catch (const storage::ConcurrentUpdate& e) {
    EXPECT_TRUE(e.is_retryable());
    EXPECT_NE(std::string(e.what()).find("offer insert"), std::string::npos);
  }
  EXPECT_THROW(storage::rerun_if_taken("x", []() -> int { throw storage::StorageError(storage::ErrorKind::Other, "42601", "syntax"); }),
               storage::StorageError);
}

class ScaffoldingDb : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("al-scaffolding-" + std::to_string(::getpid()) + "-" +
                                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
    db = std::make_unique<storage::SqliteDatabase>((dir / "t.db").string());
    db->migrate({{1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)", {}}});
  }
  void TearDown() override {
    db->stop();
    db.reset();
    std::filesystem::remove_all(dir);
  }
  std::filesystem::path dir;
  std::unique_ptr<storage::SqliteDatabase> db;
};

// A unit of work started on a worker completes on the workers, not on the database's writer.
TEST_F(ScaffoldingDb, AWritesCompletionResumesOnTheCallersExecutor) {
  WorkerPool workers("test", 2);
  std::promise<std::thread::id> caller, completion;
  std::promise<std::thread::id> writer;
  workers.post([&] {
    caller.set_value(std::this_thread::get_id());
    db->write([&](storage::Connection& c) {
      static std::once_flag once;
      std::call_once(once, [&] { writer.set_value(std::this_thread::get_id()); });
      c.query("INSERT INTO t(id, v) VALUES (1, 1)").run();
    }, [&](std::exception_ptr error) {
      EXPECT_FALSE(error);
      completion.set_value(std::this_thread::get_id());
    });
  });
  auto caller_id = caller.get_future().get();
  auto completed_on = completion.get_future().get();
  auto writer_id = writer.get_future().get();
  EXPECT_NE(completed_on, writer_id);
  // Posted back to the pool: one of its threads (the caller's, or the other one).
  std::set<std::thread::id> seen;
  for (int i = 0; i < 20; ++i) {
    std::promise<std::thread::id> p;
    workers.post([&p] { p.set_value(std::this_thread::get_id()); });
    seen.insert(p.get_future().get());
  }
  seen.insert(caller_id);
  EXPECT_TRUE(seen.count(completed_on)) << "the completion ran on a thread outside the pool";
  workers.stop();
}

TEST_F(ScaffoldingDb, WithoutAnExecutorTheCompletionRunsWhereTheWorkFinished) {
  EXPECT_EQ(CallerExecutor::current(), nullptr);
  std::promise<void> done;
  db->write([](storage::Connection& c) { c.query("INSERT INTO t(id, v) VALUES (2, 2)").run(); },
            [&](std::exception_ptr error) {
              EXPECT_FALSE(error);
              done.set_value();
            });
  EXPECT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  db->write_sync([](storage::Connection& c) { c.query("UPDATE t SET v = 3 WHERE id = 2").run(); });
  EXPECT_EQ(db->read([](storage::Connection& c) {
              auto q = c.query("SELECT v FROM t WHERE id = 2");
              q.next();
              return q.int64(0);
            }),
            3);
}

TEST_F(ScaffoldingDb, TheLifecycleSweepsOnTheWorkersAndStopsThem) {
  WorkerPool workers("test", 1);
  std::atomic<int> sweeps{0};
  std::atomic<bool> on_worker{true};
  std::atomic<int> hooks{0};
  Lifecycle lifecycle("test-service", *db, workers.context());
  lifecycle.every("count", 5ms, [&] {
    if (CallerExecutor::current() == nullptr) on_worker = false;
    if (++sweeps == 2) throw std::runtime_error("a failed sweep is logged and the next one runs");
  });
  lifecycle.before_stop([&] { ++hooks; });
  std::string reason;
  EXPECT_TRUE(lifecycle.ready(reason)) << reason;
  lifecycle.start();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (sweeps < 4 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_GE(sweeps.load(), 4);
  EXPECT_TRUE(on_worker.load());
  workers.stop();  // as the host does: no sweep runs once the workers stop
  lifecycle.stop();
  lifecycle.stop();  // idempotent
  EXPECT_EQ(hooks.load(), 1);
  EXPECT_FALSE(lifecycle.ready(reason));
  EXPECT_EQ(reason, "test-service database unavailable");
}

}  // namespace
}  // namespace al

namespace al {
namespace {
// deploy/topics.tsv (the cluster's and k8s/'s topic declaration) names exactly the topics the
// services produce and consume, with the replication the cluster issue asks for.
TEST(TopicDeclaration, MatchesTheCodeAndIsReplicated) {
  std::ifstream in(std::string(AGENTLANCER_SOURCE_DIR) + "/deploy/topics.tsv");
  ASSERT_TRUE(in) << "deploy/topics.tsv not found";
  std::set<std::string> declared;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name;
    int partitions = 0, replicas = 0, min_insync = 0;
    fields >> name >> partitions >> replicas >> min_insync;
    EXPECT_GE(partitions, 1) << line;
    EXPECT_EQ(replicas, 3) << line;
    EXPECT_EQ(min_insync, 2) << line;
    declared.insert(name);
  }
  std::set<std::string> used(kafka::all_topics().begin(), kafka::all_topics().end());
  EXPECT_EQ(declared, used);
}
}  // namespace
}  // namespace al
