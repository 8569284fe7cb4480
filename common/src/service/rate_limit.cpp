#include "common/service/rate_limit.hpp"

#include <cmath>
#include <stdexcept>

namespace al::rate_limit {

const char* name_of(RouteClass c) {
  switch (c) {
    case RouteClass::Reads: return "reads";
    case RouteClass::Writes: return "writes";
    case RouteClass::Signup: return "signup";
    case RouteClass::Public: return "public";
  }
  return "?";
}

Policy parse_policy(const std::string& text) {
  if (text == "off") return Policy{0, std::chrono::seconds(1)};
  auto slash = text.find('/');
  auto bad = [&] { return std::invalid_argument("rate limit \"" + text + "\": expected <count>/<n><s|m|h> (e.g. 100/1s) or off"); };
  if (slash == std::string::npos || slash == 0 || slash + 2 > text.size()) throw bad();
  Policy p;
  try {
    std::size_t used = 0;
    p.quota = std::stod(text.substr(0, slash), &used);
    if (used != slash || !(p.quota >= 1) || p.quota > 1e9) throw bad();
    std::string window = text.substr(slash + 1);
    char unit = window.back();
    long long n = std::stoll(window.substr(0, window.size() - 1), &used);
    if (used != window.size() - 1 || n < 1 || n > 86400) throw bad();
    long long ms = unit == 's' ? 1000 : unit == 'm' ? 60'000 : unit == 'h' ? 3'600'000 : 0;
    if (ms == 0) throw bad();
    p.window = std::chrono::milliseconds(n * ms);
  } catch (const std::invalid_argument&) {
    throw bad();
  } catch (const std::out_of_range&) {
    throw bad();
  }
  return p;
}

Limiter::Limiter(Settings settings, const auth::ApiKeyAuthority& auth, Now now)
    : settings_(std::move(settings)), auth_(auth), now_(std::move(now)) {
  if (settings_.replicas < 1) throw std::invalid_argument("rate limit replicas must be at least 1");
  if (!now_) now_ = [] { return std::chrono::steady_clock::now(); };
}

const Policy& Limiter::policy(RouteClass c) const {
  switch (c) {
    case RouteClass::Reads: return settings_.reads;
    case RouteClass::Writes: return settings_.writes;
    case RouteClass::Signup: return settings_.signup;
    case RouteClass::Public: return settings_.public_routes;
  }
  return settings_.reads;
}

std::optional<Limiter::Decision> Limiter::admit(const http::Request& request, bool signup_route) {
  if (!settings_.enabled) return std::nullopt;
  Decision d;
  std::string client;
  std::string_view key = request.header("x-api-key");
  // Only a valid key is a client of its own: random keys would each get a fresh bucket.
  if (!signup_route && !key.empty() && auth_.verify(key)) {
    bool read = request.method == http::bhttp::verb::get || request.method == http::bhttp::verb::head;
    d.route_class = read ? RouteClass::Reads : RouteClass::Writes;
    client = "k:" + std::string(key);
  } else {
    d.route_class = signup_route ? RouteClass::Signup : RouteClass::Public;
    client = "a:" + request.remote_address;
  }
  const Policy& p = policy(d.route_class);
  if (p.quota <= 0) return std::nullopt;
  double capacity = std::max(1.0, p.quota / settings_.replicas);
  double per_ms = capacity / static_cast<double>(p.window.count());
  d.quota = capacity;
  d.window_s = std::max<long long>(1, p.window.count() / 1000);

  std::string bucket_key = std::string(name_of(d.route_class)) + "|" + client;
  Shard& shard = shards_[std::hash<std::string>{}(bucket_key) % shards_.size()];
  auto now = now_();
  double tokens = 0;
  {
    std::lock_guard lock(shard.mutex);
    // Bounded memory: a bucket that has refilled completely is the same as no bucket.
    if (shard.buckets.size() > 50'000) {
      for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
        double ms = std::chrono::duration<double, std::milli>(now - it->second.at).count();
        if (it->second.tokens + ms * per_ms >= capacity) it = shard.buckets.erase(it);
        else ++it;
      }
    }
    auto [it, fresh] = shard.buckets.try_emplace(bucket_key, Bucket{capacity, now});
    Bucket& b = it->second;
    if (!fresh) {
      double ms = std::chrono::duration<double, std::milli>(now - b.at).count();
      b.tokens = std::min(capacity, b.tokens + ms * per_ms);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
    } else {
      d.allowed = false;
    }
    tokens = b.tokens;
  }
  // Whole seconds, rounded up (less a hair of floating-point error: 1 token at 1/3600 per s is 3600 s).
  auto seconds_for = [per_ms](double missing_tokens) {
    return static_cast<long long>(std::ceil(missing_tokens / per_ms / 1000.0 - 1e-6));
  };
  d.remaining = static_cast<long long>(std::floor(tokens + 1e-9));
  d.reset_s = seconds_for(capacity - tokens);
  if (!d.allowed) d.retry_after_s = std::max<long long>(1, seconds_for(1 - tokens));
  return d;
}

std::size_t Limiter::clients() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.buckets.size();
  }
  return n;
}

void add_headers(http::Response& response, const Limiter::Decision& d) {
  std::string name = std::string("\"") + name_of(d.route_class) + "\"";
  response.headers.emplace_back("ratelimit-policy", name + ";q=" + std::to_string(static_cast<long long>(d.quota)) +
                                                        ";w=" + std::to_string(d.window_s));
  response.headers.emplace_back("ratelimit", name + ";r=" + std::to_string(d.remaining) + ";t=" + std::to_string(d.reset_s));
  if (!d.allowed) response.headers.emplace_back("retry-after", std::to_string(d.retry_after_s));
}

http::Router::Decorator Limiter::decorator() {
  return [this](http::bhttp::verb, const std::string& pattern, http::Handler inner) -> http::Handler {
    if (pattern == "/healthz" || pattern == "/readyz" || pattern == "/metrics") return inner;
    bool signup = pattern == settings_.signup_route;
    return [this, signup, inner = std::move(inner)](const http::Request& req, http::Responder reply) {
      auto decision = admit(req, signup);
      if (!decision) return inner(req, std::move(reply));
      if (!decision->allowed) {
        auto refused = http::Response::error(
            429, "Too many requests: retry after " + std::to_string(decision->retry_after_s) + " s", "rate_limited");
        add_headers(refused, *decision);
        return reply(std::move(refused));
      }
      inner(req, [reply = std::move(reply), d = *decision](http::Response response) {
        add_headers(response, d);
        reply(std::move(response));
      });
    };
  };
}

}  // namespace al::rate_limit
