#include "webhooks/webhook_rules.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <charconv>
#include <stdexcept>

namespace al::notifier::webhooks {
namespace ip = boost::asio::ip;

const std::vector<std::string>& known_event_types() {
  static const std::vector<std::string> types = {
      "agent.key_created",       "agent.key_revoked",        "agent.registered",
      "contract.completed",      "contract.created",         "contract.expired",
      "contract.funded",         "contract.payment_rejected", "contract.payment_reorged",
      "contract.payment_submitted", "contract.refunded",     "job.created",
      "job.escrow_verified",     "job.memo_created",         "job.memo_decided",
      "job.phase_changed",       "offer.accepted",           "offer.created",
      "offer.expired",           "offer.rejected",           "service.deactivated",
      "service.published",       "service.updated",          "thread.closed",
      "thread.message_posted",   "thread.opened",            "thread.quote_locked",
      "thread.status_changed",   kEndpointDisabledType,
  };
  return types;
}

bool is_known_event_type(std::string_view type) {
  const auto& types = known_event_types();
  return std::find(types.begin(), types.end(), type) != types.end();
}

std::optional<Target> parse_url(std::string_view url) {
  if (url.empty() || url.size() > 2048) return std::nullopt;
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return std::nullopt;
  const auto& u = *parsed;
  Target t;
  if (u.scheme() == "https") t.https = true;
  else if (u.scheme() != "http") return std::nullopt;
  if (!u.has_authority() || u.has_userinfo() || u.has_fragment()) return std::nullopt;
  switch (u.host_type()) {
    case boost::urls::host_type::ipv6:
      t.host = std::string(u.host_address());
      break;
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::name:
      t.host = std::string(u.encoded_host());
      break;
    default:
      return std::nullopt;  // IPvFuture, empty host
  }
  if (t.host.empty() || t.host.find('%') != std::string::npos) return std::nullopt;
  std::transform(t.host.begin(), t.host.end(), t.host.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (u.has_port()) {
    if (u.port_number() == 0) return std::nullopt;
    t.port = std::to_string(u.port_number());
  } else {
    t.port = t.https ? "443" : "80";
  }
  t.target = std::string(u.encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  return t;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::vector<unsigned char> bytes_of(const ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return {b.begin(), b.end()};
  }
  auto b = a.to_v6().to_bytes();
  return {b.begin(), b.end()};
}

bool prefix_matches(const std::vector<unsigned char>& a, const std::vector<unsigned char>& network, unsigned prefix) {
  if (a.size() != network.size()) return false;
  for (unsigned i = 0; i < a.size() && prefix > 0; ++i) {
    unsigned bits = std::min(prefix, 8u);
    auto mask = static_cast<unsigned char>(0xFF << (8 - bits));
    if ((a[i] & mask) != (network[i] & mask)) return false;
    prefix -= bits;
  }
  return true;
}

Cidr cidr(const char* network, unsigned prefix) { return {ip::make_address(network), prefix}; }

bool internal_v4(const ip::address_v4& a) {
  static const std::array<Cidr, 15> ranges = {
      cidr("0.0.0.0", 8),      cidr("10.0.0.0", 8),     cidr("100.64.0.0", 10),  cidr("127.0.0.0", 8),
      cidr("169.254.0.0", 16), cidr("172.16.0.0", 12),  cidr("192.0.0.0", 24),   cidr("192.0.2.0", 24),
      cidr("192.88.99.0", 24), cidr("192.168.0.0", 16), cidr("198.18.0.0", 15),  cidr("198.51.100.0", 24),
      cidr("203.0.113.0", 24), cidr("224.0.0.0", 4),    cidr("240.0.0.0", 4),  // multicast; reserved and broadcast
  };
  ip::address address(a);
  return std::any_of(ranges.begin(), ranges.end(), [&](const Cidr& c) { return contains(c, address); });
}
}  // namespace

std::optional<std::vector<Cidr>> parse_cidrs(std::string_view text) {
  std::vector<Cidr> out;
  if (trim(text) == "none") return out;  // an environment variable cannot be set to empty
  while (!text.empty()) {
    auto comma = text.find(',');
    auto entry = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (entry.empty()) continue;
    auto slash = entry.find('/');
    boost::system::error_code ec;
    auto network = ip::make_address(std::string(entry.substr(0, slash)), ec);
    if (ec) return std::nullopt;
    unsigned max = network.is_v4() ? 32 : 128, prefix = max;
    if (slash != std::string_view::npos) {
      auto digits = entry.substr(slash + 1);
      auto [end, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
      if (err != std::errc() || end != digits.data() + digits.size() || digits.empty() || prefix > max) return std::nullopt;
    }
    out.push_back({network, prefix});
  }
  return out;
}

bool contains(const Cidr& cidr, const ip::address& address) {
  if (cidr.network.is_v4() != address.is_v4()) {
    // An IPv4 range also holds the IPv4-mapped IPv6 form of its addresses.
    if (cidr.network.is_v4() && address.is_v6() && address.to_v6().is_v4_mapped())
      return contains(cidr, ip::make_address_v4(ip::v4_mapped, address.to_v6()));
    return false;
  }
  return prefix_matches(bytes_of(address), bytes_of(cidr.network), cidr.prefix);
}

bool is_internal(const ip::address& address) {
  if (address.is_v4()) return internal_v4(address.to_v4());
  auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return internal_v4(ip::make_address_v4(ip::v4_mapped, v6));
  auto b = v6.to_bytes();
  // ::/96 (unspecified, loopback, the deprecated IPv4-compatible form) and 64:ff9b::/96 (NAT64)
  // carry an IPv4 address in their last four bytes.
  bool first_twelve_zero = std::all_of(b.begin(), b.begin() + 12, [](unsigned char c) { return c == 0; });
  if (first_twelve_zero) return true;
  static const std::array<Cidr, 7> ranges = {  // NAT64, discard, documentation, ULA, link-local, multicast
      cidr("64:ff9b::", 96), cidr("64:ff9b:1::", 48), cidr("100::", 64), cidr("2001:db8::", 32),
      cidr("fc00::", 7),     cidr("fe80::", 10),      cidr("ff00::", 8),
  };
  if (std::any_of(ranges.begin(), ranges.end(), [&](const Cidr& c) { return contains(c, address); })) return true;
  return contains(cidr("fec0::", 10), address);  // site-local (deprecated)
}

bool reachable(const ip::address& address, const std::vector<Cidr>& allowed) {
  if (!is_internal(address)) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const Cidr& c) { return contains(c, address); });
}

std::optional<std::vector<long long>> parse_schedule(std::string_view text) {
  std::vector<long long> out;
  while (true) {
    auto comma = text.find(',');
    auto entry = trim(text.substr(0, comma));
    long long value = 0;
    auto [end, err] = std::from_chars(entry.data(), entry.data() + entry.size(), value);
    if (entry.empty() || err != std::errc() || end != entry.data() + entry.size() || value < 0) return std::nullopt;
    out.push_back(value);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  return out;
}

long long wait_before_attempt(const std::vector<long long>& schedule, int attempt) {
  if (schedule.empty()) return 0;
  auto index = static_cast<std::size_t>(std::max(1, attempt) - 1);
  return schedule[std::min(index, schedule.size() - 1)];
}

namespace {
std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> unbase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * in.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}
}  // namespace

std::string new_secret() {
  std::array<unsigned char, 24> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return "whsec_" + base64(key.data(), key.size());
}

std::string sign(std::string_view secret, std::string_view webhook_id, long long timestamp, std::string_view body) {
  constexpr std::string_view prefix = "whsec_";
  if (!secret.starts_with(prefix)) return {};
  auto key = unbase64(secret.substr(prefix.size()));
  if (!key || key->empty()) return {};
  std::string message;
  message.reserve(webhook_id.size() + body.size() + 24);
  message.append(webhook_id).append(".").append(std::to_string(timestamp)).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  if (!HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()), reinterpret_cast<const unsigned char*>(message.data()),
            message.size(), mac, &mac_size))
    return {};
  return "v1," + base64(mac, mac_size);
}

}  // namespace al::notifier::webhooks
