// Which socket.io events one logged event becomes for each recipient, and the hub's limits and
// fan-out. Pure: no sockets.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "delivery/socket_events.hpp"
#include "protocol/socketio.hpp"
#include "ws/hub.hpp"

namespace al::notifier {
namespace {
namespace bj = boost::json;

bj::object job_event(std::string type, int phase, bj::value evaluator = nullptr) {
  bj::object job{{"id", 7},          {"phase", phase},          {"clientId", "agt_client"},
                 {"providerId", "agt_provider"}, {"evaluatorId", evaluator}, {"deliverable", "the work"},
                 {"memos", bj::array{bj::object{{"id", 1}}}}};
  return {{"specversion", "1.0"}, {"id", "ce-1"}, {"type", type}, {"source", "job-service"}, {"subject", "7"},
          {"time", "2026-11-26T10:00:00.000Z"}, {"data", bj::object{{"job", job}, {"change", bj::object{{"action", "x"}}}}}};
}

std::vector<std::string> names(const std::vector<SocketEvent>& events) {
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.name);
  return out;
}

TEST(SocketEvents, NewJobAndPhaseChangesAreOnNewTaskForBothParties) {
  for (std::string type : {"job.created", "job.phase_changed"}) {
    for (std::string who : {"agt_client", "agt_provider"}) {
      auto events = socket_events_for(job_event(type, type == "job.created" ? 0 : 2), who, 5);
      ASSERT_EQ(names(events), std::vector<std::string>{"onNewTask"}) << type << " " << who;
      const auto& p = events[0].payload;
      EXPECT_EQ(p.at("id"), 7);
      EXPECT_EQ(p.at("event_id"), 5);
      EXPECT_EQ(p.at("memos").as_array().size(), 1u);
      EXPECT_EQ(p.at("change").at("action"), "x");
    }
  }
}

TEST(SocketEvents, EvaluationGoesToTheClientWhenNoEvaluatorIsNamed) {
  EXPECT_EQ(names(socket_events_for(job_event("job.phase_changed", 3), "agt_client", 9)),
            (std::vector<std::string>{"onNewTask", "onEvaluate"}));
  EXPECT_EQ(names(socket_events_for(job_event("job.phase_changed", 3), "agt_provider", 9)),
            std::vector<std::string>{"onNewTask"});
  auto evaluate = socket_events_for(job_event("job.phase_changed", 3), "agt_client", 9)[1];
  EXPECT_EQ(evaluate.payload.at("deliverable"), "the work");
  EXPECT_EQ(evaluate.payload.at("event_id"), 9);
}

TEST(SocketEvents, ANamedEvaluatorGetsOnEvaluateOnlyAndTypesOtherwise) {
  auto at_evaluation = job_event("job.phase_changed", 3, "agt_judge");
  EXPECT_EQ(names(socket_events_for(at_evaluation, "agt_judge", 1)), std::vector<std::string>{"onEvaluate"});
  EXPECT_EQ(names(socket_events_for(at_evaluation, "agt_client", 1)), std::vector<std::string>{"onNewTask"});
  EXPECT_EQ(names(socket_events_for(job_event("job.phase_changed", 2, "agt_judge"), "agt_judge", 1)),
            std::vector<std::string>{"job.phase_changed"});
}

TEST(SocketEvents, OtherEventsGoByTypeWithThePollingRow) {
  bj::object registered{{"id", "ce-2"}, {"type", "agent.registered"}, {"subject", "agt_a"},
                        {"time", "2026-11-26T10:00:00.000Z"}, {"data", bj::object{{"agent_id", "agt_a"}}}};
  auto events = socket_events_for(registered, "agt_a", 1);
  ASSERT_EQ(names(events), std::vector<std::string>{"agent.registered"});
  EXPECT_EQ(events[0].payload, log_row(registered, 1));
  EXPECT_EQ(events[0].payload.at("cloudevent_id"), "ce-2");
  EXPECT_EQ(names(socket_events_for(job_event("job.memo_created", 1), "agt_provider", 3)),
            std::vector<std::string>{"job.memo_created"});
  // A job event without a job snapshot still arrives, by its type.
  bj::object bare{{"id", "ce-3"}, {"type", "job.phase_changed"}};
  EXPECT_EQ(names(socket_events_for(bare, "agt_client", 2)), std::vector<std::string>{"job.phase_changed"});
}

TEST(SocketEvents, FramesAskForAnAcknowledgementWithTheEventId) {
  auto frames = socket_frames_for(job_event("job.created", 0), "agt_provider", 42);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].rfind("4242[\"onNewTask\",{", 0), 0u) << frames[0];
}

TEST(SocketEvents, TheFastFramePathSendsExactlyTheMappedEvents) {
  std::vector<bj::object> events = {job_event("job.created", 0), job_event("job.phase_changed", 3),
                                    job_event("job.phase_changed", 3, "agt_judge"), job_event("job.memo_created", 1)};
  for (const auto& event : events) {
    for (std::string who : {"agt_client", "agt_provider", "agt_judge"}) {
      std::vector<std::string> expected;
      for (const auto& e : socket_events_for(event, who, 31)) expected.push_back(sio::event_frame(e.name, e.payload, 31));
      EXPECT_EQ(socket_frames_for(bj::serialize(event), who, 31), expected) << bj::serialize(event) << " " << who;
    }
  }
}

struct RecordingSubscriber : Subscriber {
  std::vector<long long> delivered;
  std::vector<CloseReason> closed;
  void deliver(std::shared_ptr<const LiveEvent> e) override { delivered.push_back(e->event_id); }
  void close_for(CloseReason r) override { closed.push_back(r); }
  void resync() override { ++resyncs; }
  int resyncs = 0;
};

TEST(Hub, EnforcesThePerAgentAndTotalLimits) {
  Hub hub(2, 3);
  auto a1 = std::make_shared<RecordingSubscriber>(), a2 = std::make_shared<RecordingSubscriber>(),
       a3 = std::make_shared<RecordingSubscriber>(), b1 = std::make_shared<RecordingSubscriber>(),
       c1 = std::make_shared<RecordingSubscriber>();
  EXPECT_EQ(hub.attach("a", a1), Hub::Attach::Ok);
  EXPECT_EQ(hub.attach("a", a2), Hub::Attach::Ok);
  EXPECT_EQ(hub.attach("a", a3), Hub::Attach::AgentLimit);
  EXPECT_EQ(hub.attach("b", b1), Hub::Attach::Ok);
  EXPECT_EQ(hub.attach("c", c1), Hub::Attach::TotalLimit);
  hub.detach("a", a1.get());
  EXPECT_EQ(hub.attach("a", a3), Hub::Attach::Ok);
  EXPECT_EQ(hub.size(), 3u);
}

TEST(Hub, PublishesToEverySocketOfTheAgentOnly) {
  Hub hub(5, 100);
  auto a1 = std::make_shared<RecordingSubscriber>(), a2 = std::make_shared<RecordingSubscriber>(),
       b1 = std::make_shared<RecordingSubscriber>();
  hub.attach("a", a1);
  hub.attach("a", a2);
  hub.attach("b", b1);
  auto event = std::make_shared<LiveEvent>();
  event->event_id = 4;
  hub.publish("a", event);
  EXPECT_EQ(a1->delivered, std::vector<long long>{4});
  EXPECT_EQ(a2->delivered, std::vector<long long>{4});
  EXPECT_TRUE(b1->delivered.empty());
  EXPECT_TRUE(hub.has_subscribers("a"));
  EXPECT_FALSE(hub.has_subscribers("nobody"));
  hub.publish("nobody", event);  // no one listening: nothing happens
}

TEST(Hub, ResyncAsksTheAgentsSocketsOrEverySocketToReadTheirLog) {
  Hub hub(5, 100);
  auto a1 = std::make_shared<RecordingSubscriber>(), a2 = std::make_shared<RecordingSubscriber>(),
       b1 = std::make_shared<RecordingSubscriber>();
  hub.attach("a", a1);
  hub.attach("a", a2);
  hub.attach("b", b1);
  hub.resync("a");
  EXPECT_EQ(a1->resyncs, 1);
  EXPECT_EQ(a2->resyncs, 1);
  EXPECT_EQ(b1->resyncs, 0);
  hub.resync("nobody");
  EXPECT_EQ(hub.resync_all(), 3u);
  EXPECT_EQ(a1->resyncs, 2);
  EXPECT_EQ(b1->resyncs, 1);
  EXPECT_TRUE(a1->delivered.empty());  // a resync delivers nothing by itself: the socket reads
}

TEST(Hub, CloseAllAsksEverySocketAndRefusesNewOnes) {
  Hub hub(5, 100);
  auto a1 = std::make_shared<RecordingSubscriber>(), b1 = std::make_shared<RecordingSubscriber>();
  hub.attach("a", a1);
  hub.attach("b", b1);
  hub.close_all(CloseReason::Shutdown);
  EXPECT_EQ(a1->closed, std::vector<CloseReason>{CloseReason::Shutdown});
  EXPECT_EQ(b1->closed, std::vector<CloseReason>{CloseReason::Shutdown});
  EXPECT_EQ(hub.attach("a", std::make_shared<RecordingSubscriber>()), Hub::Attach::Closed);
  EXPECT_FALSE(hub.wait_empty(std::chrono::milliseconds(1)));
  hub.detach("a", a1.get());
  hub.detach("b", b1.get());
  EXPECT_TRUE(hub.wait_empty(std::chrono::milliseconds(1)));
}

}  // namespace
}  // namespace al::notifier
