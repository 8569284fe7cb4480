#pragma once
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock/clock.hpp"

namespace al::events {

// CloudEvents 1.0, structured JSON mode, with the extensions of DESIGN §5: seq (per-aggregate
// version), audience (agent ids allowed to see it) and requestid (the HTTP request that caused it).
struct CloudEvent {
  std::string id;       // uuid
  std::string type;     // e.g. "job.phase_changed"
  std::string source;   // e.g. "job-service"
  std::string subject;  // aggregate id
  Millis time = 0;
  long long seq = 0;
  std::vector<std::string> audience;
  std::string request_id;
  boost::json::object data;

  boost::json::object to_json() const;
  static std::optional<CloudEvent> from_json(const boost::json::value& value);
};

}  // namespace al::events
