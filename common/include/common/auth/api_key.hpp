#pragma once
#include <map>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>

#include "common/http/message.hpp"

namespace al::auth {

// Self-verifying API keys: "alk.<kid>.<agent_id>.<hmac>" where hmac = base64url(HMAC-SHA256(
// secret[kid], "agentlancer.api-key.v1|<kid>|<agent_id>")). Every service verifies a key locally
// from the configured key material; nothing is looked up per request. Several kids can be
// configured at once so the signing key can be rotated without invalidating issued keys.
class ApiKeyAuthority {
 public:
  ApiKeyAuthority(std::map<std::string, std::string> secrets_by_kid, std::string signing_kid);

  std::string issue(std::string_view agent_id) const;
  std::optional<std::string> verify(std::string_view api_key) const;  // the agent id
  static std::string fingerprint(std::string_view api_key);           // sha256 hex

 private:
  std::string sign(std::string_view kid, std::string_view secret, std::string_view agent_id) const;
  std::map<std::string, std::string> secrets_;
  std::string signing_kid_;
  // Keys already verified (verification is a pure function of the key): saves an HMAC per request.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::string> verified_;
};

// Outcome of authenticating a request: the agent id, or the 401 to send.
struct AuthResult {
  std::optional<std::string> agent_id;
  http::Response failure;
};
AuthResult authenticate(const http::Request& request, const ApiKeyAuthority& authority);

}  // namespace al::auth
