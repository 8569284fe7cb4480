// API key rotation and revocation over HTTP against the real embedded stack (and its PostgreSQL
// twin): more keys, the list, revocation refused by every service's routes, rotation with a grace
// period, limits and strangers, the agent.key_* events (Kafka, schema-valid, in the agent's log),
// and the WebSockets of a revoked key closed with 4401.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "common/auth/api_key.hpp"
#include "common/util/time_format.hpp"
#include "support/event_stream.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;
using Clock = std::chrono::steady_clock;

// One authenticated route of each service: a revoked key must be refused by all of them.
const std::vector<std::pair<std::string, std::string>> kRouteOfEachService = {
    {"thread-service", "/api/agent/me"},
    {"offer-service", "/api/agent/offers"},
    {"job-service", "/api/agents/jobs?role=client"},
    {"notifier", "/api/agent/events"},
};

class ApiKeysTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack(std::map<std::string, std::string>{{"auth.key_rotation_grace_ms", "1500"},
                                                              {"auth.max_active_keys", "3"}});
  }
  static void TearDownTestSuite() { delete stack_; }

  HttpClient http{stack_->port()};

  HttpResult create_key(const std::string& api_key, const std::string& body = "") {
    return http.request(verb::post, "/api/agent/keys", body, {{"x-api-key", api_key}});
  }
  HttpResult revoke(const std::string& api_key, const std::string& key_id) {
    return http.request(verb::delete_, "/api/agent/keys/" + key_id, "", {{"x-api-key", api_key}});
  }
  // The statuses each service's route answers with this key.
  std::map<std::string, unsigned> statuses(const std::string& api_key) {
    std::map<std::string, unsigned> out;
    for (const auto& [service, route] : kRouteOfEachService) out[service] = http.get(route, api_key).status;
    return out;
  }
  // Polls until every service refuses the key (bounded); the time it took.
  std::chrono::milliseconds until_refused_everywhere(const std::string& api_key) {
    auto start = Clock::now();
    std::map<std::string, unsigned> last;
    while (Clock::now() - start < std::chrono::seconds(10)) {
      last = statuses(api_key);
      bool all = true;
      for (const auto& [service, status] : last) all = all && status == 401;
      if (all) return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    for (const auto& [service, status] : last) ADD_FAILURE() << service << " still answers " << status;
    return std::chrono::milliseconds(-1);
  }
  void expect_works_everywhere(const std::string& api_key) {
    for (const auto& [service, status] : statuses(api_key)) EXPECT_EQ(status, 200u) << service;
  }
  static std::string key_id(const std::string& api_key) { return auth::ApiKeyAuthority::key_id(api_key); }

  static TestStack* stack_;
};
TestStack* ApiKeysTest::stack_ = nullptr;

TEST_F(ApiKeysTest, AnotherKeyIsShownOnceListedWithoutItselfAndWorksEverywhere) {
  auto agent = stack_->signup("keys-lister");
  auto made = create_key(agent.key);
  ASSERT_EQ(made.status, 201u) << made.body;
  auto v = made.json().as_object();
  std::string second(v.at("api_key").as_string());
  EXPECT_NE(second, agent.key);
  EXPECT_EQ(second.rfind("alk.", 0), 0u);
  EXPECT_EQ(v.at("key_id").as_string(), key_id(second));
  EXPECT_EQ(v.at("fingerprint").as_string(), auth::ApiKeyAuthority::fingerprint(second));
  EXPECT_EQ(v.at("created_by").as_string(), key_id(agent.key));
  EXPECT_TRUE(v.at("replaced_key").is_null());
  expect_works_everywhere(second);
  expect_works_everywhere(agent.key);

  auto list = http.get("/api/agent/keys", second);
  ASSERT_EQ(list.status, 200u) << list.body;
  EXPECT_EQ(list.body.find(second), std::string::npos) << "a listed key revealed itself";
  EXPECT_EQ(list.body.find(agent.key), std::string::npos);
  std::map<std::string, bj::object> by_id;
  auto listed = list.json();
  for (const auto& k : listed.at("keys").as_array()) by_id[std::string(k.at("key_id").as_string())] = k.as_object();
  ASSERT_EQ(by_id.size(), 2u) << list.body;
  const auto& signup_row = by_id.at(key_id(agent.key));
  EXPECT_EQ(signup_row.at("fingerprint").as_string(), auth::ApiKeyAuthority::fingerprint(agent.key));
  EXPECT_TRUE(signup_row.at("created_by").is_null());
  EXPECT_FALSE(signup_row.at("current").as_bool());
  EXPECT_TRUE(signup_row.at("expires_at").is_null());
  EXPECT_TRUE(by_id.at(key_id(second)).at("current").as_bool());
  for (const char* field : {"key_id", "fingerprint", "created_at", "created_by", "last_used_at", "expires_at", "current"})
    EXPECT_TRUE(signup_row.contains(field)) << field;
}

TEST_F(ApiKeysTest, ARevokedKeyIsRefusedByEveryServiceAndTheOthersKeepWorking) {
  auto agent = stack_->signup("keys-revoker");
  std::string second(create_key(agent.key).json().at("api_key").as_string());
  auto gone = revoke(second, key_id(agent.key));
  ASSERT_EQ(gone.status, 204u) << gone.body;
  auto took = until_refused_everywhere(agent.key);
  std::cout << "revoked key refused by all 4 services after " << took.count() << " ms" << std::endl;
  EXPECT_GE(took.count(), 0);
  expect_works_everywhere(second);
  // Revoking it again: it is no longer there.
  EXPECT_EQ(revoke(second, key_id(agent.key)).status, 404u);
  auto list = http.get("/api/agent/keys", second).json().at("keys").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("key_id").as_string(), key_id(second));

  // A key may revoke itself: the answer still arrives, then the key is refused.
  EXPECT_EQ(revoke(second, key_id(second)).status, 204u);
  EXPECT_GE(until_refused_everywhere(second).count(), 0);
  EXPECT_EQ(http.request(verb::post, "/api/agent/keys", "", {{"x-api-key", second}}).status, 401u);
}

TEST_F(ApiKeysTest, ARotatedKeyWorksThroughItsGracePeriodThenStops) {
  auto agent = stack_->signup("keys-rotator");
  auto made = create_key(agent.key, bj::serialize(bj::object{{"replaces", key_id(agent.key)}}));
  ASSERT_EQ(made.status, 201u) << made.body;
  std::string fresh(made.json().at("api_key").as_string());
  auto made_json = made.json();
  const auto& replaced = made_json.at("replaced_key");
  ASSERT_TRUE(replaced.is_object()) << made.body;
  EXPECT_EQ(replaced.at("key_id").as_string(), key_id(agent.key));
  auto expires_at = parse_rfc3339(replaced.at("expires_at").as_string());
  ASSERT_TRUE(expires_at);
  auto rotated_at = Clock::now();
  // In the grace period (1.5 s here): both work, and the list says when the old one stops.
  expect_works_everywhere(agent.key);
  bool listed_with_expiry = false;
  auto keys_now = http.get("/api/agent/keys", fresh).json();
  for (const auto& k : keys_now.at("keys").as_array())
    if (k.at("key_id").as_string() == key_id(agent.key))
      listed_with_expiry = k.at("expires_at").is_string() && parse_rfc3339(k.at("expires_at").as_string()) == expires_at;
  EXPECT_TRUE(listed_with_expiry);
  until_refused_everywhere(agent.key);
  EXPECT_GE(Clock::now() - rotated_at, std::chrono::milliseconds(1200)) << "stopped before its grace period ended";
  expect_works_everywhere(fresh);
  // Replacing a key that no longer works: not found.
  EXPECT_EQ(create_key(fresh, bj::serialize(bj::object{{"replaces", key_id(agent.key)}})).status, 404u);
}

TEST_F(ApiKeysTest, LimitsStrangersAndBadBodies) {
  auto agent = stack_->signup("keys-limited");
  auto stranger = stack_->signup("keys-stranger");
  ASSERT_EQ(create_key(agent.key).status, 201u);
  ASSERT_EQ(create_key(agent.key).status, 201u);
  auto over = create_key(agent.key);  // 3 active keys is the limit here
  EXPECT_EQ(over.status, 422u) << over.body;
  EXPECT_EQ(over.json().at("code").as_string(), "too_many_keys");
  // Replacing one is allowed at the limit (the replaced key is on its way out).
  EXPECT_EQ(create_key(agent.key, bj::serialize(bj::object{{"replaces", key_id(agent.key)}})).status, 201u);

  // A stranger can neither revoke nor replace another agent's key, nor see it.
  EXPECT_EQ(revoke(stranger.key, key_id(agent.key)).status, 404u);
  EXPECT_EQ(create_key(stranger.key, bj::serialize(bj::object{{"replaces", key_id(agent.key)}})).status, 404u);
  auto theirs = http.get("/api/agent/keys", stranger.key).json().at("keys").as_array();
  ASSERT_EQ(theirs.size(), 1u);
  EXPECT_EQ(theirs[0].at("key_id").as_string(), key_id(stranger.key));
  expect_works_everywhere(agent.key);  // still in its grace period

  EXPECT_EQ(create_key(stranger.key, "[]").status, 400u);
  EXPECT_EQ(create_key(stranger.key, R"({"replaces": 5})").status, 400u);
  EXPECT_EQ(create_key(stranger.key, R"({"other": "x"})").status, 400u);
  EXPECT_EQ(create_key(stranger.key, R"({"replaces": "key_nope"})").status, 404u);
  EXPECT_EQ(revoke(stranger.key, "key_nope").status, 404u);
  EXPECT_EQ(http.get("/api/agent/keys").status, 401u);
  EXPECT_EQ(http.get("/api/agent/keys", stranger.key + "x").status, 401u);
}

TEST_F(ApiKeysTest, KeyEventsAreOnKafkaSchemaValidAndInTheAgentsLog) {
  auto agent = stack_->signup("keys-events");
  auto made = create_key(agent.key, bj::serialize(bj::object{{"replaces", key_id(agent.key)}}));
  ASSERT_EQ(made.status, 201u);
  std::string fresh(made.json().at("api_key").as_string());
  std::string third(create_key(fresh).json().at("api_key").as_string());
  ASSERT_EQ(revoke(fresh, key_id(third)).status, 204u);
  // registered, key_created, key_revoked (rotated), key_created, key_revoked (revoked)
  auto events = dedupe(consume(stack_->host().kafka_bootstrap(), "agentlancer.agents.v1", {agent.id}, 5));
  ASSERT_EQ(events.size(), 5u);
  const std::vector<std::string> types = {"agent.registered", "agent.key_created", "agent.key_revoked",
                                          "agent.key_created", "agent.key_revoked"};
  for (std::size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE(bj::serialize(events[i]));
    EXPECT_EQ(events[i].at("type").as_string(), types[i]);
    EXPECT_EQ(events[i].at("seq").as_int64(), static_cast<long long>(i + 1));
    if (i > 0) expect_schema_valid(AGENTLANCER_SOURCE_DIR, events[i]);
    EXPECT_EQ(bj::serialize(events[i]).find("alk."), std::string::npos) << "an event carried a key";
  }
  EXPECT_EQ(events[2].at("data").at("reason").as_string(), "rotated");
  EXPECT_EQ(events[2].at("data").at("key_id").as_string(), key_id(agent.key));
  EXPECT_EQ(events[2].at("data").at("replaced_by").as_string(), key_id(fresh));
  EXPECT_EQ(events[4].at("data").at("reason").as_string(), "revoked");
  EXPECT_EQ(events[4].at("data").at("key_id").as_string(), key_id(third));

  // The agent reads them in its own log too.
  std::multiset<std::string> logged;
  for (int i = 0; i < 100 && logged.count("agent.key_revoked") < 2; ++i) {
    logged.clear();
    auto page = http.get("/api/agent/events?since_id=0", fresh).json();
    for (const auto& e : page.at("events").as_array())
      logged.insert(std::string(e.at("type").as_string()));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(logged.count("agent.key_created"), 2u);
  EXPECT_EQ(logged.count("agent.key_revoked"), 2u);
}

// A socket.io session over a raw WebSocket: the frames it received and how it was closed.
struct SocketSession {
  boost::asio::io_context io;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws{io};
  std::vector<std::string> frames;

  SocketSession(unsigned short port, const std::string& api_key) {
    namespace net = boost::asio;
    ws.next_layer().connect(net::ip::tcp::endpoint(net::ip::address_v4::loopback(), port));
    ws.handshake("127.0.0.1", "/ws/agent/?EIO=4&transport=websocket");
    ws.text(true);
    read_one();  // OPEN
    ws.write(net::buffer(std::string("40") + bj::serialize(bj::object{{"apiKey", api_key}})));
  }
  bool read_one(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    boost::beast::flat_buffer buffer;
    boost::system::error_code ec;
    bool done = false;
    ws.async_read(buffer, [&](boost::system::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    io.restart();
    io.run_for(limit);
    if (!done) {
      ws.next_layer().cancel();
      io.restart();
      io.run();
      return false;
    }
    if (ec) return false;
    std::string frame = boost::beast::buffers_to_string(buffer.data());
    if (frame == "2") {  // answer pings so the session stays up
      ws.write(boost::asio::buffer(std::string("3")));
      return read_one(limit);
    }
    frames.push_back(std::move(frame));
    return true;
  }
  bool joined() {
    for (int i = 0; i < 20; ++i) {
      for (const auto& f : frames)
        if (f.find("roomJoined") != std::string::npos) return true;
      if (!read_one()) return false;
    }
    return false;
  }
  // Reads until the server closes; the close code (0 when it did not close in time).
  int read_until_closed(std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline)
      if (!read_one(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()))) break;
    return ws.reason().code;
  }
};

TEST_F(ApiKeysTest, TheWebSocketsOfARevokedKeyCloseWith4401AndOthersStay) {
  auto agent = stack_->signup("keys-socket");
  std::string second(create_key(agent.key).json().at("api_key").as_string());
  SocketSession doomed(stack_->port(), agent.key), kept(stack_->port(), second);
  ASSERT_TRUE(doomed.joined());
  ASSERT_TRUE(kept.joined());
  auto revoked_at = Clock::now();
  ASSERT_EQ(revoke(second, key_id(agent.key)).status, 204u);
  EXPECT_EQ(doomed.read_until_closed(std::chrono::seconds(5)), 4401);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - revoked_at);
  std::cout << "socket of the revoked key closed after " << took.count() << " ms" << std::endl;
  bool told = false;
  for (const auto& f : doomed.frames) told = told || (f.find("closing") != std::string::npos && f.find("key_revoked") != std::string::npos);
  EXPECT_TRUE(told) << "no closing notice with reason key_revoked";
  // The other key's socket stays open and hears of the revocation.
  bool heard = false;
  for (int i = 0; i < 20 && !heard; ++i) {
    for (const auto& f : kept.frames) heard = heard || f.find("agent.key_revoked") != std::string::npos;
    if (!heard && !kept.read_one(std::chrono::milliseconds(500))) break;
  }
  EXPECT_TRUE(heard);
  EXPECT_TRUE(kept.ws.is_open());
  // A revoked key cannot connect again.
  SocketSession again(stack_->port(), agent.key);
  again.read_one();
  bool refused = false;
  for (const auto& f : again.frames) refused = refused || (f.rfind("44", 0) == 0 && f.find("unauthorized") != std::string::npos);
  EXPECT_TRUE(refused) << (again.frames.empty() ? "" : again.frames.back());
}

TEST_F(ApiKeysTest, TheSocketOfARotatedKeyClosesWhenItsGracePeriodEnds) {
  auto agent = stack_->signup("keys-socket-rotation");
  SocketSession old_socket(stack_->port(), agent.key);
  ASSERT_TRUE(old_socket.joined());
  auto rotated_at = Clock::now();
  ASSERT_EQ(create_key(agent.key, bj::serialize(bj::object{{"replaces", key_id(agent.key)}})).status, 201u);
  EXPECT_EQ(old_socket.read_until_closed(std::chrono::seconds(8)), 4401);
  EXPECT_GE(Clock::now() - rotated_at, std::chrono::milliseconds(1200));
}

}  // namespace
}  // namespace al::testing
