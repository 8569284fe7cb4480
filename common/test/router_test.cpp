#include "common/http/router.hpp"
#include "common/http/forwarded.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using al::http::Request;
using al::http::Response;
using al::http::Router;
using al::http::Upgrade;
using verb = boost::beast::http::verb;

// Each handler writes its name so a test can tell which route's handler it got.
al::http::Handler named(std::string* out, std::string name) {
  return [out, name](const al::http::Request&, al::http::Responder) { *out = name; };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router.add(verb::get, "/health", named(&hit, "health"));
    router.add(verb::get, "/v1/jobs", named(&hit, "list_jobs"));
    router.add(verb::post, "/v1/jobs", named(&hit, "create_job"));
    router.add(verb::get, "/v1/jobs/{job_id}", named(&hit, "get_job"));
    router.add(verb::delete_, "/v1/jobs/{job_id}", named(&hit, "delete_job"));
    router.add(verb::get, "/v1/jobs/{job_id}/events/{seq}", named(&hit, "get_event"));
    router.add(verb::put, "/v1/agents/me", named(&hit, "put_me"));
  }
  std::string run(const Router::Match& m) {
    hit.clear();
    if (m.handler == nullptr) return "<none>";
    (*m.handler)(al::http::Request{}, [](al::http::Response) {});
    return hit;
  }
  Router router;
  std::string hit;
};

TEST_F(RouterTest, LiteralRoutes) {
  auto m = router.match(verb::get, "/health");
  EXPECT_EQ(m.status, 200u);
  EXPECT_EQ(m.route, "/health");
  EXPECT_TRUE(m.params.empty());
  EXPECT_EQ(run(m), "health");

  auto list = router.match(verb::get, "/v1/jobs");
  EXPECT_EQ(list.status, 200u);
  EXPECT_EQ(run(list), "list_jobs");
  auto create = router.match(verb::post, "/v1/jobs");
  EXPECT_EQ(create.status, 200u);
  EXPECT_EQ(create.route, "/v1/jobs");
  EXPECT_EQ(run(create), "create_job");
}

TEST_F(RouterTest, ParamCapture) {
  auto m = router.match(verb::get, "/v1/jobs/job_123");
  ASSERT_EQ(m.status, 200u);
  EXPECT_EQ(m.route, "/v1/jobs/{job_id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "job_id");
  EXPECT_EQ(m.params[0].second, "job_123");
  EXPECT_EQ(run(m), "get_job");

  auto e = router.match(verb::get, "/v1/jobs/j1/events/42");
  ASSERT_EQ(e.status, 200u);
  EXPECT_EQ(e.route, "/v1/jobs/{job_id}/events/{seq}");
  ASSERT_EQ(e.params.size(), 2u);
  EXPECT_EQ(e.params[0], (std::pair<std::string, std::string>{"job_id", "j1"}));
  EXPECT_EQ(e.params[1], (std::pair<std::string, std::string>{"seq", "42"}));
  EXPECT_EQ(run(e), "get_event");

  auto d = router.match(verb::delete_, "/v1/jobs/abc");
  ASSERT_EQ(d.status, 200u);
  EXPECT_EQ(run(d), "delete_job");
  EXPECT_EQ(d.params[0].second, "abc");
}

TEST_F(RouterTest, ParamValueIsTheRawSegment) {
  // The router does no decoding of its own; it captures what it is given.
  auto m = router.match(verb::get, "/v1/jobs/a%20b.c");
  ASSERT_EQ(m.status, 200u);
  EXPECT_EQ(m.params[0].second, "a%20b.c");
}

TEST_F(RouterTest, UnknownPathIs404) {
  for (const char* path : {"/nope", "/v1", "/v1/job", "/V1/jobs", "/healthz", "/v1/agents",
                           "/v1/jobs/x/events", "/v1/jobs/x/other/1"}) {
    auto m = router.match(verb::get, path);
    EXPECT_EQ(m.status, 404u) << path;
    EXPECT_EQ(m.handler, nullptr) << path;
    EXPECT_TRUE(m.allow.empty()) << path;
    EXPECT_TRUE(m.route.empty()) << path;
  }
}

TEST_F(RouterTest, DifferentSegmentCountsDoNotMatch) {
  EXPECT_EQ(router.match(verb::get, "/v1/jobs/a/b").status, 404u);
  EXPECT_EQ(router.match(verb::get, "/v1/jobs/a/events/1/2").status, 404u);
  EXPECT_EQ(router.match(verb::get, "/health/extra").status, 404u);
  EXPECT_EQ(router.match(verb::get, "/").status, 404u);
  EXPECT_EQ(router.match(verb::get, "").status, 404u);
}

TEST_F(RouterTest, KnownPathOtherMethodIs405WithAllow) {
  auto m = router.match(verb::delete_, "/v1/jobs");
  EXPECT_EQ(m.status, 405u);
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(m.allow, "GET, POST");  // registration order

  auto p = router.match(verb::post, "/v1/jobs/j1");
  EXPECT_EQ(p.status, 405u);
  EXPECT_EQ(p.allow, "GET, DELETE");

  auto h = router.match(verb::post, "/health");
  EXPECT_EQ(h.status, 405u);
  EXPECT_EQ(h.allow, "GET");

  auto me = router.match(verb::get, "/v1/agents/me");
  EXPECT_EQ(me.status, 405u);
  EXPECT_EQ(me.allow, "PUT");
}

TEST_F(RouterTest, TrailingAndRepeatedSlashesAreIgnored) {
  // Documented behaviour: empty segments are dropped, so "/v1/jobs/" and "//v1//jobs" route the
  // same as "/v1/jobs". A trailing slash is not a distinct resource and is not redirected.
  auto a = router.match(verb::get, "/v1/jobs/");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(a.route, "/v1/jobs");
  EXPECT_EQ(run(a), "list_jobs");
  auto b = router.match(verb::get, "//v1//jobs");
  EXPECT_EQ(b.status, 200u);
  EXPECT_EQ(run(b), "list_jobs");
  auto c = router.match(verb::get, "/v1/jobs/j1/");
  EXPECT_EQ(c.status, 200u);
  EXPECT_EQ(c.params[0].second, "j1");
  // A path without a leading slash splits the same way.
  EXPECT_EQ(router.match(verb::get, "health").status, 200u);
  // An empty segment never satisfies a {param}: "/v1/jobs//" is "/v1/jobs".
  EXPECT_EQ(run(router.match(verb::get, "/v1/jobs//")), "list_jobs");
}

TEST(Router, FirstRegisteredMatchWins) {
  Router router;
  std::string hit;
  router.add(verb::get, "/items/{id}", named(&hit, "by_id"));
  router.add(verb::get, "/items/search", named(&hit, "search"));
  auto m = router.match(verb::get, "/items/search");
  ASSERT_EQ(m.status, 200u);
  EXPECT_EQ(m.route, "/items/{id}");
  EXPECT_EQ(m.params[0].second, "search");
  (*m.handler)(al::http::Request{}, [](al::http::Response) {});
  EXPECT_EQ(hit, "by_id");
}

TEST(Router, AllowListsEachMethodOnce) {
  Router router;
  std::string hit;
  router.add(verb::get, "/items/{id}", named(&hit, "by_id"));
  router.add(verb::get, "/items/search", named(&hit, "search"));
  auto m = router.match(verb::post, "/items/search");
  EXPECT_EQ(m.status, 405u);
  EXPECT_EQ(m.allow, "GET");
}

TEST(Router, LaterRouteWithMatchingMethodBeatsEarlier405) {
  Router router;
  std::string hit;
  router.add(verb::get, "/items/{id}", named(&hit, "get"));
  router.add(verb::post, "/items/{id}", named(&hit, "post"));
  auto m = router.match(verb::post, "/items/1");
  ASSERT_EQ(m.status, 200u);
  ASSERT_NE(m.handler, nullptr);
  (*m.handler)(al::http::Request{}, [](al::http::Response) {});
  EXPECT_EQ(hit, "post");
}

TEST(Router, RootRoute) {
  Router router;
  std::string hit;
  router.add(verb::get, "/", named(&hit, "root"));
  EXPECT_EQ(router.match(verb::get, "/").status, 200u);
  EXPECT_EQ(router.match(verb::get, "").status, 200u);
  EXPECT_EQ(router.match(verb::get, "/x").status, 404u);
  EXPECT_EQ(router.match(verb::head, "/").status, 405u);
}

TEST(Router, BracesNeedANameToBeAParam) {
  Router router;
  std::string hit;
  router.add(verb::get, "/a/{}", named(&hit, "literal"));
  EXPECT_EQ(router.match(verb::get, "/a/{}").status, 200u);
  EXPECT_EQ(router.match(verb::get, "/a/x").status, 404u);
}

TEST(Router, EmptyRouter) {
  Router router;
  auto m = router.match(verb::get, "/anything");
  EXPECT_EQ(m.status, 404u);
  EXPECT_EQ(m.handler, nullptr);
}

TEST(Router, UpgradeRoutesMatchTheirPathWithOrWithoutTrailingSlash) {
  Router router;
  Upgrade ws{[](const Request&) { return std::optional<Response>{}; }, nullptr};
  router.add_upgrade("/ws/agent", ws);
  std::string route;
  EXPECT_NE(router.match_upgrade("/ws/agent", route), nullptr);
  EXPECT_EQ(route, "/ws/agent");
  EXPECT_NE(router.match_upgrade("/ws/agent/", route), nullptr);
  EXPECT_EQ(router.match_upgrade("/ws/agents", route), nullptr);
  EXPECT_EQ(router.match_upgrade("/ws/agent/x", route), nullptr);
  // Upgrade routes are apart from ordinary ones: a plain GET does not see them.
  EXPECT_EQ(router.match(verb::get, "/ws/agent").status, 404u);
}

}  // namespace

TEST(TrustedProxies, BelievesXForwardedForOnlyFromTheGateway) {
  al::http::TrustedProxies none;
  EXPECT_TRUE(none.empty());
  al::http::TrustedProxies gateway({"127.0.0.1", "10.0.0.0/8", " ::1/128 "});
  // From the gateway: the rightmost entry it did not add itself.
  EXPECT_EQ(gateway.client_address("127.0.0.1", "203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(gateway.client_address("127.0.0.1", "1.2.3.4, 203.0.113.7, 10.1.2.3"), "203.0.113.7");
  EXPECT_EQ(gateway.client_address("::1", "198.51.100.1"), "198.51.100.1");
  // A forged leftmost entry does not help the client: it is to the left of the real one.
  EXPECT_EQ(gateway.client_address("127.0.0.1", "127.0.0.1, 203.0.113.9"), "203.0.113.9");
  // Garbage where the gateway wrote nothing: the last hop it vouched for.
  EXPECT_EQ(gateway.client_address("127.0.0.1", "not-an-ip"), "127.0.0.1");
  EXPECT_EQ(gateway.client_address("127.0.0.1", ""), "127.0.0.1");
  // From anyone else the header is ignored.
  EXPECT_EQ(gateway.client_address("192.0.2.10", "203.0.113.7"), "192.0.2.10");
  EXPECT_TRUE(gateway.trusts(boost::asio::ip::make_address("10.255.0.1")));
  EXPECT_FALSE(gateway.trusts(boost::asio::ip::make_address("11.0.0.1")));
  EXPECT_TRUE(gateway.trusts(boost::asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_THROW(al::http::TrustedProxies({"10.0.0.0/33"}), std::invalid_argument);
  EXPECT_THROW(al::http::TrustedProxies({"gateway"}), std::invalid_argument);
}
