#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// W3C Trace Context (https://www.w3.org/TR/trace-context/), the `traceparent` field only: one
// request can be followed through the services, the events it causes and the consumers that
// apply them, by its trace id in the logs. Pure: no I/O.
namespace al::trace {

struct TraceParent {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // 16 lowercase hex digits, not all zero: the span that caused what follows
  std::uint8_t flags = 0; // bit 0: sampled

  // Version 00 exactly; a higher version is read by its version-00 prefix (as the spec asks),
  // "ff" and anything malformed is nullopt (the caller then starts a new trace).
  static std::optional<TraceParent> parse(std::string_view header);
  // A new trace: random trace id and span id, sampled (every request is logged).
  static TraceParent start();
  // The next span of the same trace (same trace id and flags, a new random parent id).
  TraceParent child() const;
  std::string to_string() const;  // "00-<trace_id>-<parent_id>-<flags>"
};

// Continues `incoming` (a request's or an event's traceparent) with a new span, or starts a new
// trace when it is absent or invalid.
std::string continue_from(std::string_view incoming);
// The trace id of a traceparent text ("" when it is not a valid one), for logs.
std::string trace_id_of(std::string_view traceparent);

// What caused a change: the HTTP request (its id, as the client sees it in x-request-id) and the
// position in the caller's trace. Every event a use case appends carries both.
struct Cause {
  std::string request_id;
  std::string traceparent;
};
// The cause of work no request asked for (an expiry sweep, a chain watcher): named by its worker,
// on a new trace of its own.
Cause background(std::string_view worker);

}  // namespace al::trace
