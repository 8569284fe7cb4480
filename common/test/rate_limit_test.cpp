#include "common/service/rate_limit.hpp"

#include <gtest/gtest.h>

namespace {
using al::rate_limit::Limiter;
using al::rate_limit::parse_policy;
using al::rate_limit::RouteClass;
using al::rate_limit::Settings;
using namespace std::chrono_literals;

class RateLimitTest : public ::testing::Test {
 protected:
  al::auth::ApiKeyAuthority auth{{{"k1", std::string(40, 'a')}}, "k1"};
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + 1h;
  Limiter::Now clock() {
    return [this] { return now; };
  }
  al::http::Request request(al::http::bhttp::verb method, const std::string& key, const std::string& address = "10.0.0.1") {
    al::http::Request r;
    r.method = method;
    if (!key.empty()) r.headers.set("x-api-key", key);
    r.remote_address = address;
    return r;
  }
};

TEST_F(RateLimitTest, ParsesPolicies) {
  auto p = parse_policy("100/1s");
  EXPECT_EQ(p.quota, 100);
  EXPECT_EQ(p.window, 1000ms);
  EXPECT_EQ(parse_policy("20/1h").window, 3600s);
  EXPECT_EQ(parse_policy("5/10m").window, 600s);
  EXPECT_EQ(parse_policy("off").quota, 0);
  for (const char* bad : {"", "100", "/1s", "100/", "100/s", "0/1s", "-1/1s", "1/1d", "1/0s", "x/1s", "1.5x/1s"})
    EXPECT_THROW(parse_policy(bad), std::invalid_argument) << bad;
}

TEST_F(RateLimitTest, BucketRefusesPastItsQuotaAndRefillsContinuously) {
  Settings s;
  s.writes = parse_policy("4/1s");
  Limiter limiter(s, auth, clock());
  std::string key = auth.issue("agt_a");
  for (int i = 0; i < 4; ++i) {
    auto d = limiter.admit(request(al::http::bhttp::verb::post, key), false);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->allowed) << i;
    EXPECT_EQ(d->route_class, RouteClass::Writes);
    EXPECT_EQ(d->remaining, 3 - i);
  }
  auto refused = limiter.admit(request(al::http::bhttp::verb::post, key), false);
  EXPECT_FALSE(refused->allowed);
  EXPECT_EQ(refused->retry_after_s, 1);
  // Reads have their own bucket.
  EXPECT_TRUE(limiter.admit(request(al::http::bhttp::verb::get, key), false)->allowed);
  now += 250ms;  // one token back
  EXPECT_TRUE(limiter.admit(request(al::http::bhttp::verb::post, key), false)->allowed);
  EXPECT_FALSE(limiter.admit(request(al::http::bhttp::verb::post, key), false)->allowed);
  // Another key is another client.
  EXPECT_TRUE(limiter.admit(request(al::http::bhttp::verb::post, auth.issue("agt_b")), false)->allowed);
}

TEST_F(RateLimitTest, ReplicasShareTheLimit) {
  Settings s;
  s.writes = parse_policy("9/1s");
  s.replicas = 3;
  Limiter limiter(s, auth, clock());
  std::string key = auth.issue("agt_a");
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.admit(request(al::http::bhttp::verb::post, key), false)->allowed;
  EXPECT_EQ(allowed, 3);  // 9 / 3 on this replica: 9 across three replicas a gateway spreads over
}

TEST_F(RateLimitTest, KeylessAndInvalidKeysCountPerAddress) {
  Settings s;
  s.public_routes = parse_policy("2/1m");
  s.signup = parse_policy("1/1h");
  Limiter limiter(s, auth, clock());
  auto anonymous = limiter.admit(request(al::http::bhttp::verb::get, ""), false);
  EXPECT_EQ(anonymous->route_class, RouteClass::Public);
  // Random keys do not escape the address's bucket.
  EXPECT_TRUE(limiter.admit(request(al::http::bhttp::verb::get, "alk.k1.agt_x.forged"), false)->allowed);
  EXPECT_FALSE(limiter.admit(request(al::http::bhttp::verb::get, "alk.k1.agt_y.forged"), false)->allowed);
  EXPECT_TRUE(limiter.admit(request(al::http::bhttp::verb::get, "", "10.0.0.2"), false)->allowed);
  // Signup: per address even with a valid key.
  auto first = limiter.admit(request(al::http::bhttp::verb::post, auth.issue("agt_a")), true);
  EXPECT_EQ(first->route_class, RouteClass::Signup);
  EXPECT_TRUE(first->allowed);
  auto second = limiter.admit(request(al::http::bhttp::verb::post, ""), true);
  EXPECT_FALSE(second->allowed);
  EXPECT_EQ(second->retry_after_s, 3600);
}

TEST_F(RateLimitTest, HeadersFollowTheIetfDraft) {
  Settings s;
  s.reads = parse_policy("10/1s");
  Limiter limiter(s, auth, clock());
  std::string key = auth.issue("agt_a");
  auto d = limiter.admit(request(al::http::bhttp::verb::get, key), false);
  al::http::Response r;
  al::rate_limit::add_headers(r, *d);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"ratelimit-policy", "\"reads\";q=10;w=1"}));
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>{"ratelimit", "\"reads\";r=9;t=1"}));
  for (int i = 0; i < 9; ++i) limiter.admit(request(al::http::bhttp::verb::get, key), false);
  auto refused = limiter.admit(request(al::http::bhttp::verb::get, key), false);
  al::http::Response r429;
  al::rate_limit::add_headers(r429, *refused);
  ASSERT_EQ(r429.headers.size(), 3u);
  EXPECT_EQ(r429.headers[1].second, "\"reads\";r=0;t=1");
  EXPECT_EQ(r429.headers[2], (std::pair<std::string, std::string>{"retry-after", "1"}));
}

TEST_F(RateLimitTest, DisabledOrOffPoliciesDecideNothing) {
  Settings s;
  s.enabled = false;
  Limiter off(s, auth, clock());
  EXPECT_FALSE(off.admit(request(al::http::bhttp::verb::get, ""), false));
  Settings t;
  t.reads = parse_policy("off");
  Limiter reads_off(t, auth, clock());
  EXPECT_FALSE(reads_off.admit(request(al::http::bhttp::verb::get, auth.issue("agt_a")), false));
  EXPECT_TRUE(reads_off.admit(request(al::http::bhttp::verb::post, auth.issue("agt_a")), false));
}

}  // namespace
