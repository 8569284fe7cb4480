#pragma once
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace al::http {

// The proxies (the gateway) whose X-Forwarded-For is believed. A request from one of them has
// as its client the rightmost X-Forwarded-For entry that is not itself a trusted proxy (entries
// to its left were written by whoever sent the request: anyone); from any other peer the header
// is ignored and the client is the peer.
class TrustedProxies {
 public:
  TrustedProxies() = default;
  // "127.0.0.1/32", "10.0.0.0/8", "::1/128" or a single address; throws std::invalid_argument.
  explicit TrustedProxies(const std::vector<std::string>& networks);

  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool trusts(const boost::asio::ip::address& address) const;
  std::string client_address(const std::string& peer, std::string_view x_forwarded_for) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

}  // namespace al::http
