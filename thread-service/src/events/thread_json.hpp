#pragma once
#include <boost/json.hpp>
#include <optional>
#include <string_view>

#include "domain/next_step.hpp"
#include "domain/thread.hpp"

namespace al::thread {

boost::json::object terms_to_json(const Terms& terms);
// Reads terms this service wrote (storage, events); nullopt on anything else.
std::optional<Terms> terms_from_json(const boost::json::value& value);

// The public "active service JSON", with the quick_quote curl that opens a thread on it.
boost::json::object service_to_json(const Service& service, std::string_view base_url);
boost::json::object service_event_json(const Service& service);

// A thread as its member `viewer` sees it (lists, GET, responses), with its next step.
boost::json::object thread_to_json(const Thread& thread, Role viewer, std::string_view base_url);
// The summary events carry (no next step, no message text).
boost::json::object thread_summary_json(const Thread& thread);
boost::json::object next_step_to_json(const NextStep& step);
boost::json::object message_to_json(const Message& message);
// A message in an event: its length instead of its text.
boost::json::object message_event_json(const Message& message);

}  // namespace al::thread
