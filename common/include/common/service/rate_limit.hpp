#pragma once
// Per-client rate limits: a token bucket per (route class, client), the client being the API key
// for authenticated requests and the client address (X-Forwarded-For only from a trusted gateway:
// ServerOptions::trusted_proxies) for the rest. Refused requests get 429 with Retry-After; every
// limited response carries the IETF RateLimit-Policy and RateLimit fields
// (draft-ietf-httpapi-ratelimit-headers).
//
// Across replicas: each replica enforces limit / replicas. A gateway that spreads a client's
// requests over the replicas (round robin, least connections) then lets it through at most
// `limit` in total; spread unevenly it gets less, never more. No shared state, so a limit check
// costs no round trip and a database or broker outage cannot take the limits down with it.
#include <array>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/auth/api_key.hpp"
#include "common/http/router.hpp"

namespace al::rate_limit {

enum class RouteClass { Reads, Writes, Signup, Public };
const char* name_of(RouteClass route_class);

// `quota` requests per `window`, refilled continuously (a bucket of `quota` tokens).
struct Policy {
  double quota = 0;  // 0: unlimited
  std::chrono::milliseconds window{1000};
};
// "100/1s", "20/1h", "off"; throws std::invalid_argument.
Policy parse_policy(const std::string& text);

struct Settings {
  bool enabled = true;
  Policy reads{100, std::chrono::seconds(1)};
  Policy writes{100, std::chrono::seconds(1)};
  Policy signup{20, std::chrono::hours(1)};
  Policy public_routes{50, std::chrono::seconds(1)};
  int replicas = 1;  // the limits are divided among this many replicas
  std::string signup_route = "/api/agent/signup";
};

class Limiter {
 public:
  using Now = std::function<std::chrono::steady_clock::time_point()>;
  Limiter(Settings settings, const auth::ApiKeyAuthority& auth, Now now = {});

  struct Decision {
    bool allowed = true;
    RouteClass route_class = RouteClass::Reads;
    double quota = 0;            // this replica's share
    long long window_s = 1;
    long long remaining = 0;
    long long reset_s = 0;       // until the bucket is full again
    long long retry_after_s = 0;  // refused: until one request is allowed
  };
  // No decision for routes that are never limited (health, metrics).
  std::optional<Decision> admit(const http::Request& request, bool signup_route);
  // Wraps every route but /healthz, /readyz and /metrics.
  http::Router::Decorator decorator();
  std::size_t clients() const;  // buckets held (tests, metrics)

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point at;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  const Policy& policy(RouteClass c) const;
  Settings settings_;
  const auth::ApiKeyAuthority& auth_;
  Now now_;
  std::array<Shard, 16> shards_;
};

// Adds the RateLimit fields to `response` (and Retry-After on a refusal).
void add_headers(http::Response& response, const Limiter::Decision& decision);

}  // namespace al::rate_limit
