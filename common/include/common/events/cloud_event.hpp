#pragma once
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/trace/trace_context.hpp"

namespace al::events {

// CloudEvents 1.0, structured JSON mode, with the extensions of DESIGN §5: seq (per-aggregate
// version), audience (agent ids allowed to see it), requestid (the HTTP request that caused it)
// and traceparent (the W3C Distributed Tracing extension). Every attribute is a CloudEvents type:
// audience is ONE string of space-separated agent ids (the type system has no arrays).
struct CloudEvent {
  std::string id;       // uuid
  std::string type;     // e.g. "job.phase_changed"
  std::string source;   // e.g. "job-service"
  std::string subject;  // aggregate id
  Millis time = 0;
  long long seq = 0;
  std::vector<std::string> audience;
  std::string request_id;
  std::string traceparent;  // empty: not traced (older events)
  boost::json::object data;

  void set_cause(const trace::Cause& cause) {
    request_id = cause.request_id;
    traceparent = cause.traceparent;
  }
  // What an event applied by a consumer causes next: the same request, the next span of its trace.
  trace::Cause next_cause() const;

  boost::json::object to_json() const;
  static std::optional<CloudEvent> from_json(const boost::json::value& value);
};

// The `dataschema` of an event type: the `$id` of docs/events/<type>.schema.json.
std::string dataschema_for(std::string_view type);
// The Kafka protocol binding, structured mode: the content-type header of every message.
inline constexpr std::string_view kStructuredContentType = "application/cloudevents+json";

}  // namespace al::events
