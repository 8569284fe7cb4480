// The README walk-through produces the expected CloudEvents, in order, on a broker: the embedded
// broker and a real Apache Kafka broker. Faults: the broker down for a while, and the process
// killed (-9) between commit and publish. Nothing committed is lost; after dedupe nothing is twice.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "common/kafka/kafka.hpp"
#include "support/event_stream.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kToken = "0x" + std::string(40, '1');

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Walkthrough {
  TestAgent client, provider;
  long long job_id = 0;
  std::vector<std::string> request_ids;  // of the seven job changes, in order
};

HttpResult call(HttpClient& c, const std::string& path, const std::string& body, const std::string& key,
                const std::string& request_id) {
  return c.request(verb::post, path, body, {{"x-api-key", key}, {"x-request-id", request_id}});
}

TestAgent signup(unsigned short port, const std::string& name) {
  HttpClient c(port);
  auto r = c.post("/api/agent/signup", bj::object{{"name", name}});
  if (r.status != 201) throw std::runtime_error("signup: " + r.body);
  return {std::string(r.json().at("agent_id").as_string()), std::string(r.json().at("api_key").as_string())};
}

// Create job, accept, escrow, negotiation, requirement, deliverable, evaluate — for two agents
// signed up beforehand.
Walkthrough run_job_walkthrough(unsigned short port, const TestAgent& client, const TestAgent& provider,
                                const std::string& tag) {
  Walkthrough w;
  w.client = client;
  w.provider = provider;
  HttpClient c(port);
  std::string rid = "wt-" + tag + "-";
  auto created = call(c, "/api/agents/jobs",
                      bj::serialize(bj::object{{"providerId", w.provider.id}, {"serviceRequirement", "logo"},
                                               {"budget", "25"}, {"tokenAddress", kToken}}),
                      w.client.key, rid + "1");
  if (created.status != 201) throw std::runtime_error("create: " + created.body);
  w.job_id = created.json().at("id").as_int64();
  w.request_ids.push_back(rid + "1");
  std::string base = "/api/agents/providers/jobs/" + std::to_string(w.job_id);
  std::string client_base = "/api/agents/jobs/" + std::to_string(w.job_id);
  char hash[80];
  std::snprintf(hash, sizeof hash, "0x%064llx", static_cast<unsigned long long>(std::hash<std::string>{}(tag)));
  struct Step {
    std::string path, body, key;
  };
  std::vector<Step> steps = {
      {base + "/accept", R"({"accept":true})", w.provider.key},
      {client_base + "/escrow", std::string(R"({"txHash":")") + hash + "\"}", w.client.key},
      {base + "/negotiation", R"({"accept":true})", w.provider.key},
      {base + "/requirement", R"({"content":"vector format please"})", w.provider.key},
      {base + "/deliverable", R"({"deliverable":"https://example.test/logo.svg"})", w.provider.key},
      {client_base + "/evaluate", R"({"accept":true})", w.client.key},
  };
  int n = 2;
  for (const auto& s : steps) {
    std::string id = rid + std::to_string(n++);
    auto r = call(c, s.path, s.body, s.key, id);
    if (r.status / 100 != 2) throw std::runtime_error(s.path + ": " + std::to_string(r.status) + " " + r.body);
    w.request_ids.push_back(id);
  }
  return w;
}

// The README walk-through: two signups, then the whole job.
Walkthrough run_walkthrough(unsigned short port, const std::string& tag) {
  auto client = signup(port, "client-" + tag);
  auto provider = signup(port, "provider-" + tag);
  return run_job_walkthrough(port, client, provider, tag);
}

void expect_schema_valid(const bj::object& event) { testing::expect_schema_valid(AGENTLANCER_SOURCE_DIR, event); }

void check_walkthrough_events(const std::string& bootstrap, const Walkthrough& w) {
  std::string subject = std::to_string(w.job_id);
  auto events = dedupe(consume(bootstrap, "agentlancer.jobs.v1", {subject}, 7, w.client.id));
  ASSERT_EQ(events.size(), 7u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"job.created", "create"},          {"job.phase_changed", "accept"},  {"job.escrow_verified", "escrow"},
      {"job.phase_changed", "negotiation"}, {"job.memo_created", "requirement"},
      {"job.phase_changed", "deliverable"}, {"job.phase_changed", "evaluate"}};
  const std::vector<int> phase_after = {0, 1, 1, 2, 2, 3, 4};
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    SCOPED_TRACE("event " + std::to_string(i) + ": " + bj::serialize(e).substr(0, 300));
    EXPECT_EQ(e.at("type").as_string(), expected[i].first);
    EXPECT_EQ(e.at("data").at("change").at("action").as_string(), expected[i].second);
    EXPECT_EQ(e.at("seq").as_int64(), static_cast<long long>(i + 1));  // in order, per aggregate
    EXPECT_EQ(e.at("source").as_string(), "job-service");
    EXPECT_EQ(e.at("subject").as_string(), subject);
    EXPECT_EQ(e.at("data").at("job").at("phase").as_int64(), phase_after[i]);
    EXPECT_EQ(e.at("requestid").as_string(), w.request_ids[i]);  // the request id travels onto the event
    EXPECT_EQ(testing::audience_of(e), (std::set<std::string>{w.client.id, w.provider.id}));
    expect_schema_valid(e);
  }
  auto agents = dedupe(consume(bootstrap, "agentlancer.agents.v1", {w.client.id, w.provider.id}, 2));
  ASSERT_EQ(agents.size(), 2u);
  for (const auto& a : agents) {
    EXPECT_EQ(a.at("type").as_string(), "agent.registered");
    expect_schema_valid(a);
  }
}

TEST(JobEventsEmbedded, WalkthroughProducesExpectedEvents) {
  TestStack stack;
  auto w = run_walkthrough(stack.port(), "embedded");
  check_walkthrough_events(stack.host().kafka_bootstrap(), w);
}

// --- real Apache Kafka (started by ctest's kafka fixture: tests/kafka_fixture.sh) ---

class RealKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = env("AGENTLANCER_TEST_KAFKA_STATE");
    if (state_.empty()) GTEST_SKIP() << "AGENTLANCER_TEST_KAFKA_STATE not set (ctest sets it and starts Kafka)";
    std::ifstream in(state_ + "/bootstrap");
    std::getline(in, bootstrap_);
    ASSERT_FALSE(bootstrap_.empty()) << "no bootstrap file in " << state_ << ": is the kafka fixture running?";
  }
  void kafka(const std::string& args) {
    std::string cmd = "bash " + env("AGENTLANCER_KAFKA_SCRIPT") + " " + args + " " + state_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string state_, bootstrap_;
};

TEST_F(RealKafka, WalkthroughProducesExpectedEvents) {
  TestStack stack({{"kafka.bootstrap", bootstrap_}});
  auto w = run_walkthrough(stack.port(), "real");
  check_walkthrough_events(bootstrap_, w);
}

TEST_F(RealKafka, BrokerDownForAWhileLosesNothing) {
  TestStack stack({{"kafka.bootstrap", bootstrap_}});
  // job-service learns of agents from their events, so they sign up while the broker is up.
  auto client = signup(stack.port(), "client-outage");
  auto provider = signup(stack.port(), "provider-outage");
  {
    HttpClient c(stack.port());
    auto r = c.post("/api/agents/jobs", bj::object{{"providerId", provider.id}, {"serviceRequirement", "warm-up"},
                                                    {"budget", "0"}, {"tokenAddress", kToken}}, client.key);
    ASSERT_EQ(r.status, 201u) << r.body;
  }
  kafka("stop");
  // Requests still succeed: the change and its event are committed together in the outbox.
  Walkthrough w;
  try {
    w = run_job_walkthrough(stack.port(), client, provider, "outage");
  } catch (...) {
    kafka("restart-broker");
    throw;
  }
  HttpClient c(stack.port());
  auto metrics = c.get("/metrics").body;
  EXPECT_NE(metrics.find("job_service_outbox_backlog 7"), std::string::npos) << "events wait in the outbox";
  EXPECT_EQ(c.get("/readyz").status, 503u);  // not ready while the broker is unreachable
  kafka("restart-broker");
  check_walkthrough_events(bootstrap_, w);
}

// The process is killed with SIGKILL after its commits but before it could publish (the broker
// is down at that moment), then restarted: the relay publishes the retained outbox rows.
TEST_F(RealKafka, KillDashNineBetweenCommitAndPublish) {
  std::string bin = env("AGENTLANCER_BIN");
  ASSERT_FALSE(bin.empty());
  char tmpl[] = "/tmp/agentlancer-kill-XXXXXX";
  std::string data_dir = ::mkdtemp(tmpl);
  unsigned short port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto start = [&]() -> pid_t {
    pid_t pid = ::fork();
    if (pid == 0) {
      std::string log = data_dir + "/server.log";
      std::freopen(log.c_str(), "a", stderr);
      ::execl(bin.c_str(), bin.c_str(), "all", "--port", std::to_string(port).c_str(), "--data_dir", data_dir.c_str(),
              "--kafka.bootstrap", bootstrap_.c_str(), "--http.access_log", "false", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    return pid;
  };
  auto wait_ready = [&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        HttpClient c(port);
        if (c.get("/readyz").status == 200) return true;
      } catch (...) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  pid_t pid = start();
  ASSERT_TRUE(wait_ready());
  auto client = signup(port, "kill-client");
  auto provider = signup(port, "kill-provider");
  // Let the provider reach job-service before the broker goes away.
  {
    HttpClient c(port);
    auto r = c.post("/api/agents/jobs", bj::object{{"providerId", provider.id}, {"serviceRequirement", "warm-up"},
                                                    {"budget", "0"}, {"tokenAddress", kToken}}, client.key);
    ASSERT_EQ(r.status, 201u) << r.body;
  }
  kafka("stop");
  std::set<std::string> subjects;
  const int kJobs = 40;
  {
    HttpClient c(port);
    for (int i = 0; i < kJobs; ++i) {
      auto r = c.post("/api/agents/jobs", bj::object{{"providerId", provider.id}, {"serviceRequirement", "job"},
                                                      {"budget", "0"}, {"tokenAddress", kToken}}, client.key);
      ASSERT_EQ(r.status, 201u) << r.body;
      std::string id = std::to_string(r.json().at("id").as_int64());
      subjects.insert(id);
      ASSERT_EQ(c.post("/api/agents/providers/jobs/" + id + "/accept", R"({"accept":true})", provider.key).status, 204u);
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  kafka("restart-broker");
  pid = start();
  ASSERT_TRUE(wait_ready());
  auto events = consume(bootstrap_, "agentlancer.jobs.v1", subjects, 2 * kJobs, client.id);
  auto unique = dedupe(events);
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(2 * kJobs));
  std::map<std::string, std::vector<long long>> seqs;
  for (const auto& e : unique) seqs[std::string(e.at("subject").as_string())].push_back(e.at("seq").as_int64());
  for (const auto& s : subjects) EXPECT_EQ(seqs[s], (std::vector<long long>{1, 2})) << "job " << s;
  ::kill(pid, SIGTERM);
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "graceful exit on SIGTERM";
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
}

}  // namespace
}  // namespace al::testing
