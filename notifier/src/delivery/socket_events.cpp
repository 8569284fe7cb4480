#include "delivery/socket_events.hpp"

#include "protocol/socketio.hpp"

namespace al::notifier {
namespace bj = boost::json;

namespace {
constexpr long long kEvaluationPhase = 3;

const bj::object* job_of(const bj::object& cloud_event) {
  auto data = cloud_event.if_contains("data");
  if (!data || !data->is_object()) return nullptr;
  auto job = data->as_object().if_contains("job");
  return job && job->is_object() ? &job->as_object() : nullptr;
}

bool field_is(const bj::object& o, std::string_view key, std::string_view value) {
  auto v = o.if_contains(key);
  return v && v->is_string() && v->as_string() == value;
}

bj::object job_payload(const bj::object& cloud_event, const bj::object& job, long long event_id) {
  bj::object payload = job;
  payload["event_id"] = event_id;
  if (auto change = cloud_event.at("data").as_object().if_contains("change")) payload["change"] = *change;
  return payload;
}
}  // namespace

bj::object log_row(const bj::object& cloud_event, long long event_id) {
  auto get = [&](std::string_view key) -> bj::value {
    auto v = cloud_event.if_contains(key);
    return v ? *v : bj::value(nullptr);
  };
  return {{"event_id", event_id}, {"type", get("type")},   {"subject", get("subject")},
          {"time", get("time")},  {"cloudevent_id", get("id")}, {"data", get("data")}};
}

std::vector<SocketEvent> socket_events_for(const bj::object& cloud_event, std::string_view recipient,
                                           long long event_id) {
  std::vector<SocketEvent> out;
  auto type = cloud_event.if_contains("type");
  std::string type_name = type && type->is_string() ? std::string(type->as_string()) : std::string("event");
  const bj::object* job = job_of(cloud_event);
  if (job && (type_name == "job.created" || type_name == "job.phase_changed")) {
    bool party = field_is(*job, "clientId", recipient) || field_is(*job, "providerId", recipient);
    if (party) out.push_back({"onNewTask", job_payload(cloud_event, *job, event_id)});
    auto phase = job->if_contains("phase");
    bool evaluation = type_name == "job.phase_changed" && phase && phase->is_int64() &&
                      phase->as_int64() == kEvaluationPhase;
    if (evaluation) {
      auto evaluator = job->if_contains("evaluatorId");
      bool is_evaluator = evaluator && evaluator->is_string() ? evaluator->as_string() == recipient
                                                              : field_is(*job, "clientId", recipient);
      if (is_evaluator) out.push_back({"onEvaluate", job_payload(cloud_event, *job, event_id)});
    }
    if (!out.empty()) return out;
  }
  out.push_back({std::move(type_name), log_row(cloud_event, event_id)});
  return out;
}

std::vector<std::string> socket_frames_for(const bj::object& cloud_event, std::string_view recipient,
                                           long long event_id) {
  std::vector<std::string> frames;
  for (auto& e : socket_events_for(cloud_event, recipient, event_id))
    frames.push_back(sio::event_frame(e.name, e.payload, event_id));
  return frames;
}

}  // namespace al::notifier
