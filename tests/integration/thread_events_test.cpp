// thread-service on a broker: the events a negotiation produces (schemas, order, no message text),
// and the consumer that makes the thread follow offer-service's offer and contract events,
// including redelivered and stale ones.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "common/events/cloud_event.hpp"
#include "common/kafka/kafka.hpp"
#include "common/util/ids.hpp"
#include "support/event_stream.hpp"
#include "support/test_stack.hpp"

namespace al::testing {
namespace {
namespace bj = boost::json;
using boost::beast::http::verb;

const bj::object kTerms = {{"deliverable", "A markdown document"},
                           {"budget", bj::object{{"amount", "30"}, {"token", "USDC"}, {"network", "base"}}},
                           {"timeline", "2 days"},
                           {"acceptance_criteria", "Approved by the requester"},
                           {"revision_boundary", "Two rounds"}};

struct Negotiation {
  TestAgent provider, requester;
  std::string service_id, thread_id;
};

bj::object expect_status(HttpResult r, unsigned status) {
  EXPECT_EQ(r.status, status) << r.body;
  return r.status == status && !r.body.empty() ? r.json().as_object() : bj::object{};
}

// Publish a service, open a thread, post a complete quote and lock it.
Negotiation lock_a_quote(TestStack& stack) {
  Negotiation n{stack.signup("provider"), stack.signup("requester"), "", ""};
  HttpClient c(stack.port());
  auto service = expect_status(
      c.post("/api/agent/services",
             bj::object{{"title", "Copy"}, {"description", "Landing page copy"}, {"deliverable", "A document"},
                        {"price", bj::object{{"amount", "25"}, {"token", "USDC"}, {"network", "base"}}},
                        {"timeline", "3 days"}},
             n.provider.key),
      201);
  n.service_id = std::string(service.at("id").as_string());
  auto thread = expect_status(c.post("/api/agent/threads",
                                     bj::object{{"service_id", n.service_id}, {"mode", "quick_quote"}, {"message", "Secret plan"}},
                                     n.requester.key),
                              201);
  n.thread_id = std::string(thread.at("id").as_string());
  expect_status(c.post("/api/agent/threads/" + n.thread_id + "/messages",
                       bj::object{{"type", "quote"}, {"body", "My quote text"}, {"terms", kTerms}}, n.provider.key),
                201);
  expect_status(c.post("/api/agent/threads/" + n.thread_id + "/lock-quote", std::string("{}"), n.provider.key), 200);
  return n;
}

// Publishes an offer-service event the way its outbox relay does: keyed by the aggregate id.
void publish(const std::string& bootstrap, const std::string& topic, const events::CloudEvent& e) {
  kafka::Producer producer(bootstrap);
  std::string error;
  ASSERT_TRUE(producer.produce(topic, e.subject, bj::serialize(e.to_json()), 1, error)) << error;
  producer.flush(5000);
  for (const auto& d : producer.poll(0)) ASSERT_EQ(d.error, RD_KAFKA_RESP_ERR_NO_ERROR);
}

events::CloudEvent offer_event(const std::string& type, const std::string& offer_id, const std::string& status,
                               long long seq, const Negotiation& n) {
  events::CloudEvent e;
  e.id = new_uuid_v4();
  e.type = type;
  e.source = "offer-service";
  e.subject = offer_id;
  e.time = 1;
  e.seq = seq;
  e.audience = {n.requester.id, n.provider.id};
  e.request_id = "test";
  e.data = {{"offer", bj::object{{"id", offer_id}, {"thread_id", n.thread_id}, {"status", status}}}};
  return e;
}

events::CloudEvent contract_event(const std::string& type, const std::string& contract_id, const std::string& status,
                                  long long seq, const Negotiation& n) {
  events::CloudEvent e = offer_event(type, contract_id, status, seq, n);
  e.data = {{"contract", bj::object{{"id", contract_id}, {"offer_id", "off_2"}, {"thread_id", n.thread_id}, {"status", status}}}};
  return e;
}

// Polls the thread until `predicate` holds (bounded: events take a moment to arrive).
bj::object wait_for_thread(TestStack& stack, const Negotiation& n, const std::function<bool(const bj::object&)>& predicate) {
  HttpClient c(stack.port());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bj::object last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = c.get("/api/agent/threads/" + n.thread_id, n.requester.key);
    last = r.json().as_object();
    if (predicate(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "thread never reached the expected state: " << bj::serialize(last);
  return last;
}

std::string status_of(const bj::object& t) { return std::string(t.at("status").as_string()); }

TEST(ThreadEvents, NegotiationPublishesSchemaValidEventsWithoutMessageText) {
  TestStack stack;
  Negotiation n = lock_a_quote(stack);
  auto events = dedupe(consume(stack.host().kafka_bootstrap(), "agentlancer.threads.v1", {n.thread_id}, 3));
  ASSERT_EQ(events.size(), 3u);
  const std::vector<std::string> types = {"thread.opened", "thread.message_posted", "thread.quote_locked"};
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    SCOPED_TRACE(bj::serialize(e));
    EXPECT_EQ(e.at("type").as_string(), types[i]);
    EXPECT_EQ(e.at("seq").as_int64(), static_cast<long long>(i + 1));
    EXPECT_EQ(e.at("source").as_string(), "thread-service");
    EXPECT_EQ(testing::audience_of(e), (std::set<std::string>{n.requester.id, n.provider.id}));
    // Message text stays in the thread: neither the opening message nor the quote's body travels.
    std::string text = bj::serialize(e);
    EXPECT_EQ(text.find("Secret plan"), std::string::npos);
    EXPECT_EQ(text.find("My quote text"), std::string::npos);
    expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  }
  EXPECT_EQ(events[1].at("data").at("message").at("body_length").as_int64(), 13);
  EXPECT_EQ(events[2].at("data").at("terms"), kTerms);
  EXPECT_EQ(events[2].at("data").at("thread").at("status"), "quote_locked");

  auto services = dedupe(consume(stack.host().kafka_bootstrap(), "agentlancer.services.v1", {n.service_id}, 1));
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].at("type"), "service.published");
  expect_schema_valid(AGENTLANCER_SOURCE_DIR, services[0]);
}

TEST(ThreadEvents, ThreadFollowsItsOfferAndContractOnceEach) {
  TestStack stack;
  Negotiation n = lock_a_quote(stack);
  const std::string bootstrap = stack.host().kafka_bootstrap();

  // Offer created, delivered twice (a relay replay re-sends the same event id).
  auto created = offer_event("offer.created", "off_1", "open", 1, n);
  publish(bootstrap, "agentlancer.offers.v1", created);
  publish(bootstrap, "agentlancer.offers.v1", created);
  auto t = wait_for_thread(stack, n, [](const bj::object& t) { return status_of(t) == "offered"; });
  EXPECT_EQ(t.at("offer"), (bj::object{{"id", "off_1"}, {"status", "open"}}));
  EXPECT_EQ(t.at("quote_to_offer_next_step").at("action"), "respond_to_offer");
  // The provider's row carries the accept curl.
  HttpClient c(stack.port());
  auto incoming = c.get("/api/agent/threads?mode=incoming&status=offered", n.provider.key).json();
  ASSERT_EQ(incoming.at("threads").as_array().size(), 1u);
  EXPECT_NE(std::string(incoming.at("threads").at(0).at("quote_to_offer_next_step").at("copy_paste_curl").as_string())
                .find("/api/agent/offers/off_1/respond"),
            std::string::npos);

  // Rejected: back to negotiating; the same quote is locked again and a second offer is made.
  publish(bootstrap, "agentlancer.offers.v1", offer_event("offer.rejected", "off_1", "rejected", 2, n));
  wait_for_thread(stack, n, [](const bj::object& t) { return status_of(t) == "negotiating"; });
  expect_status(c.post("/api/agent/threads/" + n.thread_id + "/lock-quote", std::string("{}"), n.provider.key), 200);
  publish(bootstrap, "agentlancer.offers.v1", offer_event("offer.created", "off_2", "open", 1, n));
  wait_for_thread(stack, n, [](const bj::object& t) {
    return status_of(t) == "offered" && t.at("offer").at("id") == "off_2";
  });
  // A late event about the first offer changes nothing.
  publish(bootstrap, "agentlancer.offers.v1", offer_event("offer.expired", "off_1", "inactive", 3, n));
  publish(bootstrap, "agentlancer.offers.v1", offer_event("offer.accepted", "off_2", "accepted", 2, n));
  publish(bootstrap, "agentlancer.contracts.v1", contract_event("contract.created", "ctr_1", "awaiting_payment", 1, n));
  t = wait_for_thread(stack, n, [](const bj::object& t) { return !t.at("contract").is_null(); });
  EXPECT_EQ(status_of(t), "offered");
  EXPECT_EQ(t.at("offer"), (bj::object{{"id", "off_2"}, {"status", "accepted"}}));
  EXPECT_EQ(t.at("quote_to_offer_next_step").at("action"), "pay_contract");
  EXPECT_EQ(t.at("quote_to_offer_next_step").at("monitor_curl").as_string(),
            "curl -fsS 'http://127.0.0.1:" + std::to_string(stack.port()) + "/api/contracts/ctr_1/tx-status'");

  // Completed: closed, once, even when redelivered.
  auto completed = contract_event("contract.completed", "ctr_1", "completed", 3, n);
  publish(bootstrap, "agentlancer.contracts.v1", completed);
  publish(bootstrap, "agentlancer.contracts.v1", completed);
  t = wait_for_thread(stack, n, [](const bj::object& t) { return status_of(t) == "closed"; });
  EXPECT_EQ(t.at("closed_reason"), "contract_completed");
  EXPECT_EQ(t.at("contract"), (bj::object{{"id", "ctr_1"}, {"status", "completed"}}));
  auto tx = c.get("/api/agent/threads/" + n.thread_id + "/tx-status", n.provider.key).json();
  EXPECT_EQ(tx.at("next_action").at("action"), "none");

  // Exactly the expected thread events: opened, message, locked, offered, negotiating, locked,
  // offered, closed — the duplicates and the stale event produced nothing (reading for a 9th one
  // until the time limit finds none).
  auto events = dedupe(consume(bootstrap, "agentlancer.threads.v1", {n.thread_id}, 9, "", std::chrono::seconds(12)));
  std::vector<std::string> types;
  for (const auto& e : events) {
    types.emplace_back(e.at("type").as_string());
    expect_schema_valid(AGENTLANCER_SOURCE_DIR, e);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"thread.opened", "thread.message_posted", "thread.quote_locked",
                                             "thread.status_changed", "thread.status_changed", "thread.quote_locked",
                                             "thread.status_changed", "thread.closed"}));
}

TEST(ThreadEvents, EventsAboutUnknownThreadsOrWithoutAThreadAreSkipped) {
  TestStack stack;
  Negotiation n = lock_a_quote(stack);
  Negotiation stranger = n;
  stranger.thread_id = "thr_doesnotexist";
  publish(stack.host().kafka_bootstrap(), "agentlancer.offers.v1", offer_event("offer.created", "off_x", "open", 1, stranger));
  auto malformed = offer_event("offer.created", "off_y", "open", 1, n);
  malformed.data = {{"unexpected", true}};
  publish(stack.host().kafka_bootstrap(), "agentlancer.offers.v1", malformed);
  // Then a real one: the consumer went past the others without stopping.
  publish(stack.host().kafka_bootstrap(), "agentlancer.offers.v1", offer_event("offer.created", "off_1", "open", 1, n));
  auto t = wait_for_thread(stack, n, [](const bj::object& t) { return status_of(t) == "offered"; });
  EXPECT_EQ(t.at("offer").at("id"), "off_1");
}

}  // namespace
}  // namespace al::testing
