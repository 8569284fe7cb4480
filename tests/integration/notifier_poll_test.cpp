// The notifier's per-agent event log, read by polling: every event reaches the agents in its
// audience, each agent's event_ids are 1, 2, 3 … in order, since_id resumes exactly, and other
// agents' events never show.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include <fstream>

#include "common/storage/database.hpp"
#include "support/test_stack.hpp"
#include "test_clock.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;

const std::string kToken = "0x" + std::string(40, '1');

bj::array poll_until(HttpClient& c, const TestAgent& agent, long long since, std::size_t want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bj::array events;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.get("/api/agent/events?since_id=" + std::to_string(since), agent.key);
    EXPECT_EQ(r.status, 200u) << r.body;
    events = r.json().at("events").as_array();
    if (events.size() >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return events;
}

// Order is guaranteed per aggregate (one key, one partition), not across aggregates: compare the
// job's events in order and the agent's registration wherever it landed.
std::vector<std::string> job_types(const bj::array& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    if (e.at("type").as_string().starts_with("job.")) out.emplace_back(e.at("type").as_string());
  return out;
}
int count_type(const bj::array& events, std::string_view type) {
  int n = 0;
  for (const auto& e : events) n += e.at("type").as_string() == type;
  return n;
}

std::vector<std::string> types(const bj::array& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.emplace_back(e.at("type").as_string());
  return out;
}

TEST(NotifierPoll, EachAgentGetsItsEventsInOrderAndResumesWithSinceId) {
  TestStack stack;
  auto client = stack.signup("poll-client");
  auto provider = stack.signup("poll-provider");
  auto other = stack.signup("poll-other");
  HttpClient c(stack.port());
  auto created = c.post("/api/agents/jobs",
                        bj::object{{"providerId", provider.id}, {"serviceRequirement", "x"}, {"budget", "0"},
                                   {"tokenAddress", kToken}},
                        client.key);
  ASSERT_EQ(created.status, 201u) << created.body;
  std::string job_id = std::to_string(created.json().at("id").as_int64());
  ASSERT_EQ(c.post("/api/agents/providers/jobs/" + job_id + "/accept", R"({"accept":true})", provider.key).status, 204u);

  // client: its registration, then the job's creation and acceptance.
  auto events = poll_until(c, client, 0, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(job_types(events), (std::vector<std::string>{"job.created", "job.phase_changed"}));
  EXPECT_EQ(count_type(events, "agent.registered"), 1);
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].at("event_id").as_int64(), static_cast<long long>(i + 1));
  const auto& accepted = events[events[2].at("type").as_string() == "job.phase_changed" ? 2 : 1];
  EXPECT_EQ(accepted.at("subject").as_string(), job_id);
  EXPECT_EQ(accepted.at("data").at("job").at("phase").as_int64(), 1);

  // The provider sees the same job events under its own numbering.
  auto provider_events = poll_until(c, provider, 0, 3);
  EXPECT_EQ(job_types(provider_events), job_types(events));
  EXPECT_EQ(count_type(provider_events, "agent.registered"), 1);

  // Another agent sees only its own registration.
  EXPECT_EQ(types(poll_until(c, other, 0, 1)), (std::vector<std::string>{"agent.registered"}));

  // Resume: since_id returns exactly what came after, then the new events.
  ASSERT_EQ(c.post("/api/agents/providers/jobs/" + job_id + "/negotiation", R"({"accept":true})", provider.key).status, 204u);
  auto after = poll_until(c, client, 3, 1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].at("event_id").as_int64(), 4);
  EXPECT_EQ(after[0].at("data").at("job").at("phase").as_int64(), 2);
  auto page = c.get("/api/agent/events?since_id=1&limit=2", client.key).json();
  ASSERT_EQ(page.at("events").as_array().size(), 2u);
  EXPECT_EQ(page.at("next_since_id").as_int64(), 3);
}

// The embedded broker forgets everything on restart and every retained event is published
// again: the log must neither lose nor repeat anything.
TEST(NotifierPoll, RestartNeitherLosesNorRepeats) {
  char tmpl[] = "/tmp/agentlancer-restart-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  TestAgent client, provider;
  std::string job_id;
  {
    TestStack first({}, nullptr, dir);
    client = first.signup("restart-client");
    provider = first.signup("restart-provider");
    HttpClient c(first.port());
    auto created = c.post("/api/agents/jobs",
                          bj::object{{"providerId", provider.id}, {"serviceRequirement", "x"}, {"budget", "0"},
                                     {"tokenAddress", kToken}},
                          client.key);
    ASSERT_EQ(created.status, 201u) << created.body;
    job_id = std::to_string(created.json().at("id").as_int64());
    ASSERT_EQ(c.post("/api/agents/providers/jobs/" + job_id + "/accept", R"({"accept":true})", provider.key).status, 204u);
    ASSERT_EQ(poll_until(c, client, 0, 3).size(), 3u);
  }
  {
    TestStack second({}, nullptr, dir);  // same data, fresh embedded broker: the outbox is replayed
    HttpClient c(second.port());
    ASSERT_EQ(c.post("/api/agents/providers/jobs/" + job_id + "/negotiation", R"({"accept":true})", provider.key).status, 204u);
    auto events = poll_until(c, client, 0, 4);
    // Give the replay time to arrive completely, then look again: still exactly four.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    events = c.get("/api/agent/events", client.key).json().at("events").as_array();
    ASSERT_EQ(events.size(), 4u);
    std::set<std::string> ids;
    for (std::size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].at("event_id").as_int64(), static_cast<long long>(i + 1));
      ids.insert(std::string(events[i].at("cloudevent_id").as_string()));
    }
    EXPECT_EQ(ids.size(), 4u);
    EXPECT_EQ(job_types(events), (std::vector<std::string>{"job.created", "job.phase_changed", "job.phase_changed"}));
    EXPECT_EQ(count_type(events, "agent.registered"), 1);
  }
  std::filesystem::remove_all(dir);
}

TEST(NotifierPoll, RetentionTrimsOldEventsButIdsNeverRestart) {
  TestClock clock;
  TestStack stack({{"notifier.retention_ms", "60000"}, {"notifier.trim_interval_ms", "50"}}, &clock);
  auto client = stack.signup("retention-client");
  auto provider = stack.signup("retention-provider");
  HttpClient c(stack.port());
  auto create = [&] {
    auto r = c.post("/api/agents/jobs",
                    bj::object{{"providerId", provider.id}, {"serviceRequirement", "x"}, {"budget", "0"}, {"tokenAddress", kToken}},
                    client.key);
    ASSERT_EQ(r.status, 201u) << r.body;
  };
  create();
  ASSERT_EQ(poll_until(c, client, 0, 2).size(), 2u);  // agent.registered, job.created

  clock.advance(61'000);  // both are now older than the retention
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bj::array events;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    events = c.get("/api/agent/events?since_id=0", client.key).json().at("events").as_array();
  } while (!events.empty() && std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(events.empty()) << "trimmed after the retention";

  create();
  events = poll_until(c, client, 0, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].at("event_id").as_int64(), 3) << "ids continue after a trim; a client's since stays valid";
  EXPECT_EQ(events[0].at("type").as_string(), "job.created");
}

TEST(NotifierPoll, BadRequests) {
  TestStack stack;
  auto agent = stack.signup("poll-bad");
  HttpClient c(stack.port());
  EXPECT_EQ(c.get("/api/agent/events").status, 401u);
  EXPECT_EQ(c.get("/api/agent/events?since_id=-1", agent.key).status, 400u);
  EXPECT_EQ(c.get("/api/agent/events?since_id=abc", agent.key).status, 400u);
  EXPECT_EQ(c.get("/api/agent/events?limit=0", agent.key).status, 400u);
  EXPECT_EQ(c.get("/api/agent/events?limit=501", agent.key).status, 400u);
  EXPECT_EQ(c.get("/api/agent/events?color=red", agent.key).status, 400u);
  auto r = c.get("/api/agent/events?since_id=0&limit=500", agent.key);
  EXPECT_EQ(r.status, 200u);
}

// A log written by the previous schema (entries in a WITHOUT ROWID table keyed by agent) is
// carried over by migration 3: same entries, same ids, and new events continue the numbering.
TEST(NotifierPoll, LogFromThePreviousSchemaSurvivesTheMigration) {
  char tmpl[] = "/tmp/agentlancer-migrate-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  TestAgent client, provider;
  bj::array before;
  {
    TestStack first({}, nullptr, dir);
    client = first.signup("migrate-client");
    provider = first.signup("migrate-provider");
    HttpClient c(first.port());
    auto created = c.post("/api/agents/jobs",
                          bj::object{{"providerId", provider.id}, {"serviceRequirement", "x"}, {"budget", "0"},
                                     {"tokenAddress", kToken}},
                          client.key);
    ASSERT_EQ(created.status, 201u) << created.body;
    before = poll_until(c, client, 0, 2);
    ASSERT_EQ(before.size(), 2u);
  }
  {
    // Put the database back in the shape of schema version 2 (on whichever backend the stack ran).
    std::string url;
    std::ifstream(dir + "/storage.url") >> url;
    auto db = storage::open_database(storage::StorageSettings{url, dir}, "notifier");
    db->write_sync([](storage::Connection& c) {
      std::string sql = R"sql(
CREATE TABLE old_agent_events (
  agent_id TEXT NOT NULL, event_id INTEGER NOT NULL, cloudevent_id TEXT NOT NULL, type TEXT NOT NULL,
  payload TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (agent_id, event_id)
) WITHOUT ROWID;
INSERT INTO old_agent_events SELECT agent_id, event_id, cloudevent_id, type, payload, created_at FROM agent_events;
DROP TABLE agent_events;
ALTER TABLE old_agent_events RENAME TO agent_events;
CREATE INDEX agent_events_by_age ON agent_events(created_at);
DELETE FROM schema_migrations WHERE version = 3;
)sql";
      c.exec(c.dialect() == storage::Dialect::Postgres ? storage::postgres_ddl(sql) : sql);
    });
    db->stop();
  }
  TestStack second({}, nullptr, dir);
  HttpClient c(second.port());
  auto again = c.get("/api/agent/events", client.key).json().at("events").as_array();
  ASSERT_EQ(again.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(again[i].at("event_id"), before[i].at("event_id"));
    EXPECT_EQ(again[i].at("cloudevent_id"), before[i].at("cloudevent_id"));
  }
  auto created = c.post("/api/agents/jobs",
                        bj::object{{"providerId", provider.id}, {"serviceRequirement", "y"}, {"budget", "0"},
                                   {"tokenAddress", kToken}},
                        client.key);
  ASSERT_EQ(created.status, 201u) << created.body;
  auto after = poll_until(c, client, 2, 1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].at("event_id").as_int64(), 3);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace al::testing
