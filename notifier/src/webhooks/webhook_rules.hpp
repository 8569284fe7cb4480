#pragma once
// The pure rules of webhooks (Standard Webhooks, standardwebhooks.com): which URLs may be
// registered and reached, which event types exist, the retry schedule, the secret and signature.
#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace al::notifier::webhooks {

// The event types an agent's log holds (docs/events), which an endpoint may filter on.
const std::vector<std::string>& known_event_types();
bool is_known_event_type(std::string_view type);
// Appended to the agent's log by the notifier itself when an endpoint is disabled.
inline constexpr const char* kEndpointDisabledType = "webhook.endpoint_disabled";

struct Target {
  bool https = false;
  std::string host;    // without brackets for IPv6
  std::string port;    // "80" / "443" when the URL names none
  std::string target;  // path and query ("/" when empty)
};
// An absolute http(s) URL of at most 2048 bytes, without userinfo or fragment; nullopt otherwise.
std::optional<Target> parse_url(std::string_view url);

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
};
// "10.0.0.0/8,::1/128" (spaces allowed; empty or "none": none); nullopt if any entry is malformed.
std::optional<std::vector<Cidr>> parse_cidrs(std::string_view text);
bool contains(const Cidr& cidr, const boost::asio::ip::address& address);
// Loopback, private, carrier-grade NAT, link-local (the cloud metadata address included),
// unique-local, unspecified, multicast, broadcast, "this network", documentation and benchmark
// ranges, and the IPv4-mapped/compatible forms of those.
bool is_internal(const boost::asio::ip::address& address);
// An address a delivery may go to: not internal, or inside one of `allowed`.
bool reachable(const boost::asio::ip::address& address, const std::vector<Cidr>& allowed);

// "0,5000,300000": the wait before attempt 1, 2, 3 … (ms); nullopt when malformed or empty.
std::optional<std::vector<long long>> parse_schedule(std::string_view text);
// The wait before attempt `attempt` (1-based); past the schedule's end its last entry repeats.
long long wait_before_attempt(const std::vector<long long>& schedule, int attempt);

// "whsec_" + base64 of 24 random bytes.
std::string new_secret();
// "v1,<base64 HMAC-SHA256(secret bytes, id.timestamp.body)>"; empty if the secret is malformed.
std::string sign(std::string_view secret, std::string_view webhook_id, long long timestamp, std::string_view body);

}  // namespace al::notifier::webhooks
