#include "common/http/router.hpp"

namespace al::http {
namespace {
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) out.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}
}  // namespace

void Router::add(bhttp::verb method, std::string pattern, Handler handler, Runs runs) {
  // Innermost first, so the scope made first wraps outermost.
  for (auto it = decorators_.rbegin(); it != decorators_.rend(); ++it) handler = (*it)(method, pattern, std::move(handler));
  Route route{method, pattern, {}, std::move(handler), runs};
  for (auto segment : split_path(pattern)) route.segments.emplace_back(segment);
  routes_.push_back(std::move(route));
}

void Router::add_upgrade(std::string pattern, Upgrade upgrade) {
  std::vector<std::string> segments;
  for (auto segment : split_path(pattern)) segments.emplace_back(segment);
  upgrades_.push_back({std::move(pattern), std::move(segments), std::move(upgrade)});
}

void Router::on_drain(std::function<void()> hook) { drain_hooks_.push_back(std::move(hook)); }

void Router::run_drain_hooks() const {
  for (const auto& hook : drain_hooks_) hook();
}

std::vector<Router::Listed> Router::list() const {
  std::vector<Listed> out;
  for (const auto& r : routes_) out.push_back({std::string(bhttp::to_string(r.method)), r.pattern, false});
  for (const auto& u : upgrades_) out.push_back({"GET", u.pattern, true});
  return out;
}

const Upgrade* Router::match_upgrade(std::string_view path, std::string& route) const {
  auto segments = split_path(path);
  for (const auto& candidate : upgrades_) {
    if (candidate.segments.size() != segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < segments.size() && same; ++i) same = candidate.segments[i] == segments[i];
    if (same) {
      route = candidate.pattern;
      return &candidate.upgrade;
    }
  }
  return nullptr;
}

Router::Match Router::match(bhttp::verb method, std::string_view path) const {
  Match result;
  auto segments = split_path(path);
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    Pairs params;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      const std::string& pattern = route.segments[i];
      if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
        params.emplace_back(pattern.substr(1, pattern.size() - 2), std::string(segments[i]));
      } else if (pattern != segments[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    if (route.method != method) {
      result.status = 405;
      std::string method(bhttp::to_string(route.method));
      bool listed = false;
      for (std::size_t start = 0; start < result.allow.size();) {
        std::size_t end = result.allow.find(", ", start);
        if (end == std::string::npos) end = result.allow.size();
        listed = listed || result.allow.compare(start, end - start, method) == 0;
        start = end + 2;
      }
      if (!listed) result.allow += (result.allow.empty() ? "" : ", ") + method;
      continue;
    }
    result.handler = &route.handler;
    result.runs = route.runs;
    result.status = 200;
    result.route = route.pattern;
    result.params = std::move(params);
    return result;
  }
  return result;
}

}  // namespace al::http
