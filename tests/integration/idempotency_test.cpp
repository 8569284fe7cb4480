// Idempotency-Key over HTTP against the real embedded stack (and its PostgreSQL twin): replay,
// reuse with another request, concurrent duplicates, keys freed by requests that made no effect,
// per-agent scope, and the services that own each write.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kToken = "0x" + std::string(40, '1');

class IdempotencyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack(std::map<std::string, std::string>{{"job.agent_wait_ms", "3000"}});
    client_ = new TestAgent(stack_->signup("client"));
    provider_ = new TestAgent(stack_->signup("provider"));
    other_ = new TestAgent(stack_->signup("other-client"));
  }
  static void TearDownTestSuite() {
    delete stack_;
    delete client_;
    delete provider_;
    delete other_;
  }

  HttpClient http{stack_->port()};

  std::string job_body(const std::string& requirement, const std::string& budget = "10") {
    return bj::serialize(bj::object{{"providerId", provider_->id},
                                    {"serviceRequirement", requirement},
                                    {"budget", budget},
                                    {"tokenAddress", kToken}});
  }
  HttpResult post(const std::string& path, const std::string& body, const std::string& api_key,
                  const std::string& idempotency_key) {
    std::map<std::string, std::string> headers{{"x-api-key", api_key}};
    if (!idempotency_key.empty()) headers["idempotency-key"] = idempotency_key;
    return http.request(verb::post, path, body, headers);
  }
  // The client's jobs whose requirement is `requirement`.
  int jobs_with(const std::string& requirement, const std::string& api_key) {
    auto r = http.get("/api/agents/jobs?role=client&limit=100", api_key);
    EXPECT_EQ(r.status, 200u) << r.body;
    int n = 0;
    auto v = r.json();
    const bj::array& jobs = v.is_array() ? v.as_array() : v.at("jobs").as_array();
    for (const auto& j : jobs)
      if (j.at("serviceRequirement").as_string() == requirement) ++n;
    return n;
  }

  static TestStack* stack_;
  static TestAgent* client_;
  static TestAgent* provider_;
  static TestAgent* other_;
};
TestStack* IdempotencyTest::stack_ = nullptr;
TestAgent* IdempotencyTest::client_ = nullptr;
TestAgent* IdempotencyTest::provider_ = nullptr;
TestAgent* IdempotencyTest::other_ = nullptr;

TEST_F(IdempotencyTest, SameKeyAndBodyReplaysTheStoredResponse) {
  auto first = post("/api/agents/jobs", job_body("replay me"), client_->key, "key-replay-1");
  ASSERT_EQ(first.status, 201u) << first.body;
  EXPECT_EQ(first.headers.count("idempotent-replayed"), 0u);
  auto again = post("/api/agents/jobs", job_body("replay me"), client_->key, "key-replay-1");
  ASSERT_EQ(again.status, 201u) << again.body;
  EXPECT_EQ(again.headers["idempotent-replayed"], "true");
  EXPECT_EQ(again.body, first.body);  // byte for byte
  EXPECT_EQ(jobs_with("replay me", client_->key), 1);
  // The same JSON with its keys in another order and other whitespace is the same request.
  bj::object reordered{{"tokenAddress", kToken}, {"budget", "10"}, {"serviceRequirement", "replay me"},
                       {"providerId", provider_->id}};
  auto third = post("/api/agents/jobs", "  " + bj::serialize(reordered) + "\n", client_->key, "key-replay-1");
  EXPECT_EQ(third.status, 201u);
  EXPECT_EQ(third.headers["idempotent-replayed"], "true");
}

TEST_F(IdempotencyTest, SameKeyWithAnotherBodyIs422) {
  ASSERT_EQ(post("/api/agents/jobs", job_body("first body"), client_->key, "key-reuse").status, 201u);
  auto other = post("/api/agents/jobs", job_body("first body", "11"), client_->key, "key-reuse");
  EXPECT_EQ(other.status, 422u) << other.body;
  EXPECT_EQ(other.json().at("code").as_string(), "idempotency_key_reused");
  // Another path with the same key is another request too.
  auto elsewhere = post("/api/agent/services", R"({"title":"t"})", client_->key, "key-reuse");
  EXPECT_EQ(elsewhere.status, 400u) << "thread-service keeps its own keys: its validation runs";
  EXPECT_EQ(jobs_with("first body", client_->key), 1);
}

TEST_F(IdempotencyTest, ConcurrentDuplicatesMakeOneEffect) {
  constexpr int kSenders = 10;
  std::vector<HttpResult> results(kSenders);
  std::vector<std::thread> senders;
  std::string body = job_body("ten at once");
  for (int i = 0; i < kSenders; ++i)
    senders.emplace_back([&, i] {
      HttpClient own(stack_->port());
      results[i] = own.request(verb::post, "/api/agents/jobs", body,
                               {{"x-api-key", client_->key}, {"idempotency-key", "key-concurrent"}});
    });
  for (auto& t : senders) t.join();
  std::set<std::string> bodies;
  int created = 0, in_use = 0;
  for (const auto& r : results) {
    if (r.status == 201) {
      ++created;
      bodies.insert(r.body);
    } else {
      ASSERT_EQ(r.status, 409u) << r.body;
      EXPECT_EQ(r.json().at("code").as_string(), "idempotency_key_in_use");
      EXPECT_EQ(r.headers.count("retry-after"), 1u);
      ++in_use;
    }
  }
  EXPECT_GE(created, 1);
  EXPECT_EQ(bodies.size(), 1u) << "every 201 is the same job";
  EXPECT_EQ(jobs_with("ten at once", client_->key), 1);
  // Once the first finished, a retry replays it.
  auto later = post("/api/agents/jobs", body, client_->key, "key-concurrent");
  EXPECT_EQ(later.status, 201u);
  EXPECT_EQ(later.headers["idempotent-replayed"], "true");
  EXPECT_EQ(later.body, *bodies.begin());
}

TEST_F(IdempotencyTest, ARequestWithoutEffectFreesTheKey) {
  // Validation error (400): nothing happened, so the key may be used again with a fixed body.
  auto invalid = post("/api/agents/jobs", R"({"providerId":"x"})", client_->key, "key-freed");
  EXPECT_EQ(invalid.status, 400u);
  auto fixed = post("/api/agents/jobs", job_body("after a 400"), client_->key, "key-freed");
  EXPECT_EQ(fixed.status, 201u) << fixed.body;
  EXPECT_EQ(fixed.headers.count("idempotent-replayed"), 0u);
  // A refused action (409: the job is not in TRANSACTION) frees its key as well, and an action
  // that took effect is replayed.
  long long id = fixed.json().at("id").as_int64();
  std::string jobs = "/api/agents/providers/jobs/" + std::to_string(id);
  auto refused = post(jobs + "/deliverable", R"({"deliverable":"early"})", provider_->key, "key-action-2");
  EXPECT_EQ(refused.status, 409u) << refused.body;
  auto again = post(jobs + "/deliverable", R"({"deliverable":"early"})", provider_->key, "key-action-2");
  EXPECT_EQ(again.status, 409u);
  EXPECT_EQ(again.headers.count("idempotent-replayed"), 0u) << "a refusal is not stored: it runs again";
  ASSERT_EQ(post(jobs + "/accept", R"({"accept":true})", provider_->key, "key-action").status, 204u);
  auto replay = post(jobs + "/accept", R"({"accept":true})", provider_->key, "key-action");
  EXPECT_EQ(replay.status, 204u);
  EXPECT_EQ(replay.headers["idempotent-replayed"], "true");
}

TEST_F(IdempotencyTest, KeysAreScopedPerAgent) {
  auto mine = post("/api/agents/jobs", job_body("scoped"), client_->key, "key-shared-name");
  auto theirs = post("/api/agents/jobs", job_body("scoped"), other_->key, "key-shared-name");
  ASSERT_EQ(mine.status, 201u);
  ASSERT_EQ(theirs.status, 201u);
  EXPECT_EQ(theirs.headers.count("idempotent-replayed"), 0u);
  EXPECT_NE(mine.json().at("id"), theirs.json().at("id"));
}

TEST_F(IdempotencyTest, GuardsTheWritesOfEveryService) {
  // thread-service: a service listing.
  std::string service = R"({"title":"Idempotent listing","description":"d","deliverable":"x",)"
                        R"("price":{"amount":"5.00","token":"USDC","network":"base"},"timeline":"1 day"})";
  auto s1 = post("/api/agent/services", service, provider_->key, "key-service");
  ASSERT_EQ(s1.status, 201u) << s1.body;
  auto s2 = post("/api/agent/services", service, provider_->key, "key-service");
  EXPECT_EQ(s2.status, 201u);
  EXPECT_EQ(s2.headers["idempotent-replayed"], "true");
  EXPECT_EQ(s2.body, s1.body);
  std::string service_id(s1.json().at("id").as_string());
  // thread-service: a thread and a message.
  std::string thread = R"({"service_id":")" + service_id + R"(","mode":"quick_quote","message":"hello"})";
  auto t1 = post("/api/agent/threads", thread, client_->key, "key-thread");
  ASSERT_EQ(t1.status, 201u) << t1.body;
  std::string thread_id(t1.json().at("id").as_string());
  std::string messages = "/api/agent/threads/" + thread_id + "/messages";
  std::string quote =
      R"({"type":"quote","body":"5 USDC","terms":{"deliverable":"x","budget":{"amount":"5.00","token":"USDC","network":"base"},)"
      R"("timeline":"1 day","acceptance_criteria":"ok","revision_boundary":"one round"}})";
  auto m1 = post(messages, quote, provider_->key, "key-message");
  ASSERT_EQ(m1.status, 201u) << m1.body;
  auto m2 = post(messages, quote, provider_->key, "key-message");
  EXPECT_EQ(m2.headers["idempotent-replayed"], "true");
  auto read = http.get("/api/agent/threads/" + thread_id, client_->key);
  ASSERT_EQ(read.status, 200u);
  int quotes = 0;
  auto thread_json = read.json();
  for (const auto& m : thread_json.at("messages").as_array())
    if (m.at("type").as_string() == "quote") ++quotes;
  EXPECT_EQ(quotes, 1);
  // offer-service: the offer from the locked quote.
  ASSERT_EQ(post("/api/agent/threads/" + thread_id + "/lock-quote", "{}", provider_->key, "key-lock").status, 200u);
  std::string create_offer = "/api/agent/threads/" + thread_id + "/create-offer";
  HttpResult o1;
  for (int i = 0; i < 100; ++i) {  // the lock reaches offer-service through Kafka
    o1 = post(create_offer, "{}", client_->key, "key-offer");
    if (o1.status == 201) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(o1.status, 201u) << o1.body;
  auto o2 = post(create_offer, "{}", client_->key, "key-offer");
  EXPECT_EQ(o2.status, 201u);
  EXPECT_EQ(o2.headers["idempotent-replayed"], "true");
  EXPECT_EQ(o2.body, o1.body);
}

TEST_F(IdempotencyTest, MalformedKeysAre400) {
  auto too_long = post("/api/agents/jobs", job_body("bad key"), client_->key, std::string(256, 'k'));
  EXPECT_EQ(too_long.status, 400u);
  EXPECT_EQ(too_long.json().at("code").as_string(), "invalid_idempotency_key");
  auto spaces = post("/api/agents/jobs", job_body("bad key"), client_->key, "has space");
  EXPECT_EQ(spaces.status, 400u);
  EXPECT_EQ(jobs_with("bad key", client_->key), 0);
  // Without a key nothing changes: two requests, two jobs.
  EXPECT_EQ(post("/api/agents/jobs", job_body("no key"), client_->key, "").status, 201u);
  EXPECT_EQ(post("/api/agents/jobs", job_body("no key"), client_->key, "").status, 201u);
  EXPECT_EQ(jobs_with("no key", client_->key), 2);
}

}  // namespace
}  // namespace al::testing
