#include <gtest/gtest.h>

#include "webhooks/webhook_rules.hpp"

namespace al::notifier::webhooks {
namespace {
namespace ip = boost::asio::ip;

TEST(WebhookUrl, AcceptsAbsoluteHttpAndHttpsOnly) {
  auto t = parse_url("https://Hooks.Example.com/in?x=1");
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->https);
  EXPECT_EQ(t->host, "hooks.example.com");
  EXPECT_EQ(t->port, "443");
  EXPECT_EQ(t->target, "/in?x=1");
  auto v6 = parse_url("http://[::1]:8080");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8080");
  EXPECT_EQ(v6->target, "/");
  for (const char* bad : {"ftp://example.com/", "example.com/hook", "http://user:pw@example.com/", "http://example.com/#f",
                          "http:///path", "http://example.com:0/", "/relative", ""})
    EXPECT_FALSE(parse_url(bad)) << bad;
  EXPECT_FALSE(parse_url("http://example.com/" + std::string(2048, 'a')));
}

TEST(WebhookAddresses, InternalRangesAreRefusedUnlessAllowed) {
  for (const char* internal : {"127.0.0.1", "10.1.2.3", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1",
                               "0.0.0.0", "255.255.255.255", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "ff02::1",
                               "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1"})
    EXPECT_TRUE(is_internal(ip::make_address(internal))) << internal;
  for (const char* external : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"})
    EXPECT_FALSE(is_internal(ip::make_address(external))) << external;
  auto allowed = parse_cidrs("127.0.0.0/8, ::1/128");
  ASSERT_TRUE(allowed);
  EXPECT_TRUE(reachable(ip::make_address("127.0.0.1"), *allowed));
  EXPECT_TRUE(reachable(ip::make_address("::ffff:127.0.0.1"), *allowed));  // the mapped form of an allowed range
  EXPECT_TRUE(reachable(ip::make_address("::1"), *allowed));
  EXPECT_FALSE(reachable(ip::make_address("10.0.0.1"), *allowed));
  EXPECT_FALSE(reachable(ip::make_address("169.254.169.254"), *allowed));
  EXPECT_TRUE(reachable(ip::make_address("8.8.8.8"), {}));
  EXPECT_TRUE(parse_cidrs("")->empty());
  EXPECT_TRUE(parse_cidrs("none")->empty());
  for (const char* bad : {"10.0.0.0/33", "::1/129", "nonsense", "10.0.0.0/x", "10.0.0.0/"}) EXPECT_FALSE(parse_cidrs(bad)) << bad;
}

TEST(WebhookRetries, TheScheduleGivesTheWaitBeforeEachAttemptAndRepeatsItsLast) {
  auto s = parse_schedule("0, 5000,300000");
  ASSERT_TRUE(s);
  EXPECT_EQ(wait_before_attempt(*s, 1), 0);
  EXPECT_EQ(wait_before_attempt(*s, 2), 5000);
  EXPECT_EQ(wait_before_attempt(*s, 3), 300000);
  EXPECT_EQ(wait_before_attempt(*s, 9), 300000);
  for (const char* bad : {"", "1,,2", "-1", "5s"}) EXPECT_FALSE(parse_schedule(bad)) << bad;
}

TEST(WebhookSignature, MatchesTheStandardWebhooksReferenceVector) {
  // The test vector of the Standard Webhooks reference libraries.
  EXPECT_EQ(sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                 R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  EXPECT_EQ(sign("not-a-secret", "id", 1, "{}"), "");
  auto secret = new_secret();
  EXPECT_TRUE(secret.starts_with("whsec_"));
  EXPECT_EQ(secret.size(), 6u + 32u);
  EXPECT_NE(secret, new_secret());
  EXPECT_NE(sign(secret, "id", 1, "{}"), "");
}

TEST(WebhookEventTypes, TheCatalogueIsKnownAndNothingElse) {
  EXPECT_TRUE(is_known_event_type("job.phase_changed"));
  EXPECT_TRUE(is_known_event_type(kEndpointDisabledType));
  EXPECT_FALSE(is_known_event_type("job.*"));
  EXPECT_FALSE(is_known_event_type("Job.Phase_Changed"));
}

}  // namespace
}  // namespace al::notifier::webhooks
