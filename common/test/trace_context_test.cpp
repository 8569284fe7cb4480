// W3C Trace Context parsing and continuation, and the CloudEvents envelope every event carries.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/events/cloud_event.hpp"
#include "common/trace/trace_context.hpp"

namespace al {
namespace {

constexpr const char* kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, ParsesTheSpecificationsExample) {
  auto parsed = trace::TraceParent::parse(kExample);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(parsed->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parsed->flags, 1);
  EXPECT_EQ(parsed->to_string(), kExample);
}

TEST(TraceParent, RefusesWhatTheSpecificationCallsInvalid) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // version 00 has no more fields
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
       })
    EXPECT_FALSE(trace::TraceParent::parse(bad)) << bad;
}

TEST(TraceParent, ReadsALaterVersionByItsVersionZeroPrefix) {
  auto parsed = trace::TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(trace::TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01future"));
}

TEST(TraceParent, ContinuesTheCallersTraceWithANewSpan) {
  auto next = trace::continue_from(kExample);
  auto parsed = trace::TraceParent::parse(next);
  ASSERT_TRUE(parsed) << next;
  EXPECT_EQ(parsed->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(parsed->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(parsed->flags, 1);
  EXPECT_EQ(trace::trace_id_of(next), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceParent, StartsANewTraceWhenThereIsNoneOrItIsInvalid) {
  auto a = trace::TraceParent::parse(trace::continue_from(""));
  auto b = trace::TraceParent::parse(trace::continue_from("garbage"));
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_NE(a->trace_id, b->trace_id);
  EXPECT_EQ(a->flags, 1);  // every request is logged
  EXPECT_EQ(trace::trace_id_of("garbage"), "");
}

events::CloudEvent sample() {
  events::CloudEvent e;
  e.id = "018f0000-0000-7000-8000-000000000001";
  e.type = "job.created";
  e.source = "job-service";
  e.subject = "42";
  e.time = 1700000000123;
  e.seq = 1;
  e.audience = {"agt_aaa", "agt_bbb"};
  e.set_cause({"req-1", kExample});
  e.data = boost::json::object{{"k", 1}};
  return e;
}

TEST(CloudEventEnvelope, EveryAttributeIsACloudEventsType) {
  auto json = sample().to_json();
  EXPECT_EQ(json.at("audience"), "agt_aaa agt_bbb");  // a String, not an array
  EXPECT_EQ(json.at("dataschema"), "urn:agentlancer:event-schema:job.created");
  EXPECT_EQ(json.at("traceparent"), kExample);
  EXPECT_EQ(json.at("requestid"), "req-1");
  EXPECT_TRUE(json.at("seq").is_int64());
  for (const auto& [key, value] : json)
    if (key != "data") EXPECT_TRUE(value.is_string() || value.is_int64()) << key;
}

TEST(CloudEventEnvelope, ReadsBackWhatItWritesAndTheOlderArrayForm) {
  auto back = events::CloudEvent::from_json(sample().to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->audience, (std::vector<std::string>{"agt_aaa", "agt_bbb"}));
  EXPECT_EQ(back->traceparent, kExample);

  auto older = sample().to_json();
  older["audience"] = boost::json::array{"agt_ccc", "agt_ddd"};
  older.erase("traceparent");
  auto read = events::CloudEvent::from_json(older);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->audience, (std::vector<std::string>{"agt_ccc", "agt_ddd"}));
  EXPECT_EQ(read->traceparent, "");
  EXPECT_EQ(read->to_json().count("traceparent"), 0u);  // untraced stays untraced

  auto nobody = sample();
  nobody.audience.clear();
  EXPECT_EQ(nobody.to_json().at("audience"), "");
  EXPECT_TRUE(events::CloudEvent::from_json(nobody.to_json())->audience.empty());
}

TEST(CloudEventEnvelope, AConsumersNextEventContinuesTheSameTrace) {
  auto next = sample().next_cause();
  EXPECT_EQ(next.request_id, "req-1");
  EXPECT_EQ(trace::trace_id_of(next.traceparent), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(next.traceparent, kExample);
}

}  // namespace
}  // namespace al
