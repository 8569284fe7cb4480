// Rate limits over HTTP against the real embedded stack: per key and route class, per address
// for signups and public routes (X-Forwarded-For believed only from the trusted gateway), 429
// with Retry-After and the RateLimit fields, health never limited.
#include <gtest/gtest.h>

#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const std::string kToken = "0x" + std::string(40, '1');

class RateLimitHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack(std::map<std::string, std::string>{{"rate_limit.enabled", "true"},
                                                              {"rate_limit.writes", "5/1m"},
                                                              {"rate_limit.reads", "1000/1s"},
                                                              {"rate_limit.signup", "4/1h"},
                                                              {"rate_limit.public", "3/1m"},
                                                              {"http.trusted_proxies", "127.0.0.1/32"}});
    client_ = new TestAgent(stack_->signup("client"));
    provider_ = new TestAgent(stack_->signup("provider"));
  }
  static void TearDownTestSuite() {
    delete stack_;
    delete client_;
    delete provider_;
  }
  HttpClient http{stack_->port()};
  HttpResult signup_from(const std::string& address) {
    return http.request(verb::post, "/api/agent/signup", R"({"name":"rl"})", {{"x-forwarded-for", address}});
  }
  static TestStack* stack_;
  static TestAgent* client_;
  static TestAgent* provider_;
};
TestStack* RateLimitHttpTest::stack_ = nullptr;
TestAgent* RateLimitHttpTest::client_ = nullptr;
TestAgent* RateLimitHttpTest::provider_ = nullptr;

TEST_F(RateLimitHttpTest, SignupsArePerClientAddressBehindTheGateway) {
  for (int i = 0; i < 4; ++i) {
    auto r = signup_from("203.0.113.7");
    ASSERT_EQ(r.status, 201u) << i << r.body;
    EXPECT_EQ(r.headers["ratelimit-policy"], "\"signup\";q=4;w=3600");
  }
  auto refused = signup_from("203.0.113.7");
  ASSERT_EQ(refused.status, 429u) << refused.body;
  EXPECT_EQ(refused.json().at("code").as_string(), "rate_limited");
  EXPECT_GE(std::stoi(refused.headers["retry-after"]), 800);  // a signup back every 900 s
  EXPECT_EQ(refused.headers["ratelimit"].rfind("\"signup\";r=0;t=", 0), 0u) << refused.headers["ratelimit"];
  // Another client behind the same gateway has its own bucket.
  EXPECT_EQ(signup_from("203.0.113.8").status, 201u);
}

TEST_F(RateLimitHttpTest, WritesPerKeyGet429WithRetryAfter) {
  bj::object job{{"providerId", provider_->id}, {"serviceRequirement", "limited"}, {"budget", "1"}, {"tokenAddress", kToken}};
  for (int i = 0; i < 5; ++i) {
    auto r = http.post("/api/agents/jobs", job, client_->key);
    ASSERT_EQ(r.status, 201u) << i << r.body;
    EXPECT_EQ(r.headers["ratelimit"], "\"writes\";r=" + std::to_string(4 - i) + ";t=" + std::to_string(12 * (i + 1)))
        << "a token every 12 s";
  }
  auto refused = http.post("/api/agents/jobs", job, client_->key);
  ASSERT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.headers["retry-after"], "12");
  EXPECT_EQ(refused.headers["ratelimit-policy"], "\"writes\";q=5;w=60");
  // Reads are another class; another key another client.
  auto read = http.get("/api/agents/jobs?role=client", client_->key);
  EXPECT_EQ(read.status, 200u);
  EXPECT_EQ(read.headers["ratelimit-policy"], "\"reads\";q=1000;w=1");
  EXPECT_EQ(http.post("/api/agents/jobs",
                      bj::object{{"providerId", client_->id}, {"serviceRequirement", "other key"}, {"budget", "1"},
                                 {"tokenAddress", kToken}},
                      provider_->key)
                .status,
            201u);
}

TEST_F(RateLimitHttpTest, PublicRoutesPerAddressAndHealthNever) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(http.request(verb::get, "/api/services", "", {{"x-forwarded-for", "198.51.100.1"}}).status, 200u);
  auto refused = http.request(verb::get, "/api/services", "", {{"x-forwarded-for", "198.51.100.1"}});
  EXPECT_EQ(refused.status, 429u);
  EXPECT_EQ(refused.headers["ratelimit-policy"], "\"public\";q=3;w=60");
  for (int i = 0; i < 20; ++i) {
    auto health = http.get("/healthz");
    ASSERT_EQ(health.status, 200u);
    EXPECT_EQ(health.headers.count("ratelimit"), 0u);
  }
}

}  // namespace
}  // namespace al::testing
