#include "common/http/forwarded.hpp"

#include <algorithm>
#include <stdexcept>

namespace al::http {
namespace ip = boost::asio::ip;

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ip::address normalised(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}
}  // namespace

TrustedProxies::TrustedProxies(const std::vector<std::string>& networks) {
  for (const auto& text : networks) {
    std::string_view item = trim(text);
    if (item.empty()) continue;
    boost::system::error_code ec;
    std::string s(item);
    if (s.find('/') == std::string::npos) {
      auto address = ip::make_address(s, ec);
      if (ec) throw std::invalid_argument("not an address or network: " + s);
      s += address.is_v4() ? "/32" : "/128";
    }
    if (s.find(':') == std::string::npos) {
      auto network = ip::make_network_v4(s, ec);
      if (ec) throw std::invalid_argument("not an address or network: " + s);
      v4_.push_back(network.canonical());
    } else {
      auto network = ip::make_network_v6(s, ec);
      if (ec) throw std::invalid_argument("not an address or network: " + s);
      v6_.push_back(network.canonical());
    }
  }
}

bool TrustedProxies::trusts(const ip::address& raw) const {
  ip::address a = normalised(raw);
  if (a.is_v4()) {
    auto bits = a.to_v4().to_uint();
    for (const auto& n : v4_)
      if ((bits & n.netmask().to_uint()) == n.network().to_uint()) return true;
    return false;
  }
  auto bytes = a.to_v6().to_bytes();
  for (const auto& n : v6_) {
    auto network = n.network().to_bytes();
    int prefix = n.prefix_length();
    bool inside = true;
    for (int i = 0; i < 16 && inside; ++i) {
      int bits = std::min(8, std::max(0, prefix - 8 * i));
      unsigned char mask = static_cast<unsigned char>(bits == 0 ? 0 : 0xFF << (8 - bits));
      inside = (bytes[i] & mask) == (network[i] & mask);
    }
    if (inside) return true;
  }
  return false;
}

std::string TrustedProxies::client_address(const std::string& peer, std::string_view x_forwarded_for) const {
  boost::system::error_code ec;
  auto peer_address = ip::make_address(peer, ec);
  if (ec || x_forwarded_for.empty() || !trusts(peer_address)) return peer;
  // Right to left: the first hop our proxies did not add is the client.
  std::string client = peer;
  while (!x_forwarded_for.empty()) {
    auto comma = x_forwarded_for.rfind(',');
    std::string_view entry = trim(comma == std::string_view::npos ? x_forwarded_for : x_forwarded_for.substr(comma + 1));
    x_forwarded_for = comma == std::string_view::npos ? std::string_view{} : x_forwarded_for.substr(0, comma);
    auto address = ip::make_address(std::string(entry), ec);
    if (ec) return client;  // garbage beyond our proxies: the last hop we could vouch for
    client = normalised(address).to_string();
    if (!trusts(address)) return client;
  }
  return client;
}

}  // namespace al::http
