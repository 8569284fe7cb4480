#include "delivery/socket_events.hpp"

#include <boost/json.hpp>

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

namespace {
// The socket.io event names one logged event has for one recipient, and whether the payload is
// the job (else the polling row).
struct Plan {
  std::vector<std::string> names;
  bool job_payload = false;
};

Plan plan_for(const bj::object& cloud_event, std::string_view recipient) {
  Plan plan;
  auto type = cloud_event.if_contains("type");
  std::string type_name = type && type->is_string() ? std::string(type->as_string()) : std::string("event");
  const bj::object* job = job_of(cloud_event);
  if (job && (type_name == "job.created" || type_name == "job.phase_changed")) {
    bool party = field_is(*job, "clientId", recipient) || field_is(*job, "providerId", recipient);
    if (party) plan.names.emplace_back("onNewTask");
    auto phase = job->if_contains("phase");
    bool evaluation = type_name == "job.phase_changed" && phase && phase->is_int64() &&
                      phase->as_int64() == kEvaluationPhase;
    if (evaluation) {
      auto evaluator = job->if_contains("evaluatorId");
      bool is_evaluator = evaluator && evaluator->is_string() ? evaluator->as_string() == recipient
                                                              : field_is(*job, "clientId", recipient);
      if (is_evaluator) plan.names.emplace_back("onEvaluate");
    }
    if (!plan.names.empty()) {
      plan.job_payload = true;
      return plan;
    }
  }
  plan.names.push_back(std::move(type_name));
  return plan;
}
}  // namespace

std::vector<SocketEvent> socket_events_for(const bj::object& cloud_event, std::string_view recipient,
                                           long long event_id) {
  Plan plan = plan_for(cloud_event, recipient);
  std::vector<SocketEvent> out;
  for (auto& name : plan.names) {
    out.push_back({std::move(name), plan.job_payload ? job_payload(cloud_event, *job_of(cloud_event), event_id)
                                                     : log_row(cloud_event, event_id)});
  }
  return out;
}

std::vector<std::string> socket_frames_for(std::string_view cloud_event_json, std::string_view recipient,
                                           long long event_id) {
  // Hot path (every backlog event, every live event per agent): parse into a stack arena and
  // build the payload in place, serialized once however many names it is sent under.
  unsigned char arena[16384];
  bj::monotonic_resource resource(arena, sizeof arena);
  bj::value parsed = bj::parse(cloud_event_json, &resource);
  if (!parsed.is_object()) return {};
  bj::object& cloud_event = parsed.as_object();
  Plan plan = plan_for(cloud_event, recipient);
  std::string payload_text;
  if (plan.job_payload) {
    bj::object& data = cloud_event["data"].as_object();
    bj::value change = data.contains("change") ? data["change"] : bj::value(nullptr);
    bj::object& job = data["job"].as_object();
    job["event_id"] = event_id;
    if (!change.is_null()) job["change"] = std::move(change);
    payload_text = bj::serialize(job);
  } else {
    payload_text = bj::serialize(log_row(cloud_event, event_id));
  }
  std::string prefix = "42" + std::to_string(event_id) + "[";
  std::vector<std::string> frames;
  frames.reserve(plan.names.size());
  for (const auto& name : plan.names) {
    std::string frame;
    frame.reserve(prefix.size() + name.size() + payload_text.size() + 8);
    frame += prefix;
    frame += bj::serialize(bj::string_view(name));
    frame += ',';
    frame += payload_text;
    frame += ']';
    frames.push_back(std::move(frame));
  }
  return frames;
}

std::vector<std::string> socket_frames_for(const bj::object& cloud_event, std::string_view recipient,
                                           long long event_id) {
  return socket_frames_for(bj::serialize(cloud_event), recipient, event_id);
}

}  // namespace al::notifier
