#pragma once
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

// What one logged event becomes for one agent: on the socket (named socket.io events) and in
// the polling API (one row). Pure: no I/O.
namespace al::notifier {

struct SocketEvent {
  std::string name;
  boost::json::object payload;  // always carries "event_id"
};

// Job events: `job.created` and `job.phase_changed` are `onNewTask` for the client and the
// provider (the job snapshot with its memos, plus "event_id" and "change"); a change to
// EVALUATION (phase 3) is also `onEvaluate` for the evaluator (the client when none is named).
// Everything else, and job events for anyone else, goes by its CloudEvent type with the
// polling row as payload.
std::vector<SocketEvent> socket_events_for(const boost::json::object& cloud_event,
                                           std::string_view recipient, long long event_id);

// Text frames for the socket, each asking for an acknowledgement with ack id = event_id; the
// same events as socket_events_for. From the logged JSON text (the fast path) or an object.
std::vector<std::string> socket_frames_for(std::string_view cloud_event_json, std::string_view recipient,
                                           long long event_id);
std::vector<std::string> socket_frames_for(const boost::json::object& cloud_event,
                                           std::string_view recipient, long long event_id);

// {event_id, type, subject, time, cloudevent_id, data}
boost::json::object log_row(const boost::json::object& cloud_event, long long event_id);

}  // namespace al::notifier
