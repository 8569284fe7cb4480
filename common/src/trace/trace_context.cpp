#include "common/trace/trace_context.hpp"

#include <algorithm>
#include <cstdio>

#include "common/util/ids.hpp"

namespace al::trace {

namespace {

bool lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
bool all_zero(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}
int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

std::string nonzero_hex(std::size_t bytes) {
  for (;;) {
    auto id = random_hex(bytes);
    if (!all_zero(id)) return id;
  }
}

}  // namespace

std::optional<TraceParent> TraceParent::parse(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  constexpr std::size_t kLength = 55;
  if (header.size() < kLength) return std::nullopt;
  auto version = header.substr(0, 2);
  if (!lower_hex(version) || version == "ff") return std::nullopt;
  if (version == "00" && header.size() != kLength) return std::nullopt;
  // A later version may append fields, after a '-'.
  if (header.size() > kLength && header[kLength] != '-') return std::nullopt;
  if (header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  auto trace_id = header.substr(3, 32);
  auto parent_id = header.substr(36, 16);
  auto flags = header.substr(53, 2);
  if (!lower_hex(trace_id) || !lower_hex(parent_id) || !lower_hex(flags)) return std::nullopt;
  if (all_zero(trace_id) || all_zero(parent_id)) return std::nullopt;
  TraceParent parsed;
  parsed.trace_id = std::string(trace_id);
  parsed.parent_id = std::string(parent_id);
  parsed.flags = static_cast<std::uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]));
  return parsed;
}

TraceParent TraceParent::start() {
  TraceParent started;
  started.trace_id = nonzero_hex(16);
  started.parent_id = nonzero_hex(8);
  started.flags = 0x01;
  return started;
}

TraceParent TraceParent::child() const {
  TraceParent next = *this;
  next.parent_id = nonzero_hex(8);
  return next;
}

std::string TraceParent::to_string() const {
  char flags_text[3];
  std::snprintf(flags_text, sizeof flags_text, "%02x", static_cast<unsigned>(flags));
  return "00-" + trace_id + "-" + parent_id + "-" + flags_text;
}

std::string continue_from(std::string_view incoming) {
  auto parent = TraceParent::parse(incoming);
  return (parent ? parent->child() : TraceParent::start()).to_string();
}

std::string trace_id_of(std::string_view traceparent) {
  auto parsed = TraceParent::parse(traceparent);
  return parsed ? parsed->trace_id : std::string();
}

Cause background(std::string_view worker) { return {std::string(worker), TraceParent::start().to_string()}; }

}  // namespace al::trace
