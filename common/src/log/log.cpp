#include "common/log/log.hpp"

#include <boost/json/serialize.hpp>
#include <atomic>
#include <cstdio>
#include <mutex>

#include "common/clock/clock.hpp"
#include "common/util/time_format.hpp"

namespace al::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load()); }

bool parse_level(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write(Level lvl, std::string_view message, boost::json::object fields) {
  if (static_cast<int>(lvl) < g_level.load(std::memory_order_relaxed)) return;
  boost::json::object line;
  line["ts"] = format_rfc3339(SystemClock::instance().now_ms());
  line["level"] = kNames[static_cast<int>(lvl)];
  line["msg"] = message;
  for (auto& field : fields) line[field.key()] = std::move(field.value());
  std::string text = boost::json::serialize(line);
  text.push_back('\n');
  std::lock_guard lock(g_mutex);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace al::log
