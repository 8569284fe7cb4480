#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/http/message.hpp"

namespace al::auth {

// Revoked API keys by key id, each with the moment it stops working (now for a revocation, later
// for a key replaced with a grace period). Filled from each service's own table (which the
// `agent.key_revoked` events feed); read on every authentication. Thread-safe.
class KeyRevocations {
 public:
  struct Revocation {
    std::string agent_id;
    std::string key_id;
    Millis effective_at = 0;
  };
  using Listener = std::function<void(const Revocation&)>;

  // Records a revocation (the earliest effective time wins); true when it is new or earlier than
  // the one known. Listeners hear of every such change, on the caller's thread, outside the lock.
  bool revoke(const Revocation& revocation);
  bool revoked(const std::string& key_id, Millis now) const;
  std::optional<Millis> effective_at(const std::string& key_id) const;
  std::size_t size() const;
  void listen(Listener listener);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Millis> effective_at_;
  std::vector<Listener> listeners_;
};

// An API key that verified: whose it is and its id (revocations name keys by id).
struct VerifiedKey {
  std::string agent_id;
  std::string key_id;
};

// Self-verifying API keys. The signup key: "alk.<kid>.<agent_id>.<hmac>" with hmac =
// base64url(HMAC-SHA256(secret[kid], "agentlancer.api-key.v1|<kid>|<agent_id>")). Further keys
// (POST /api/agent/keys): "alk.<kid>.<agent_id>.<nonce>.<hmac>" with a random 128-bit nonce and
// hmac over "agentlancer.api-key.v2|<kid>|<agent_id>|<nonce>". Every service verifies a key
// locally from the configured key material and its revocation list; nothing is looked up per
// request. Several kids can be configured at once so the signing secret can be rotated without
// invalidating issued keys. A key's id is "key_" + the first 24 hex digits of its sha256.
class ApiKeyAuthority {
 public:
  ApiKeyAuthority(std::map<std::string, std::string> secrets_by_kid, std::string signing_kid,
                  const Clock& clock = SystemClock::instance());

  std::string issue(std::string_view agent_id) const;             // the signup key
  std::string issue_additional(std::string_view agent_id) const;  // a new key with a random nonce
  std::string issue_with_nonce(std::string_view agent_id, std::string_view nonce) const;
  // The agent id, when the key is well formed, correctly signed with a configured kid and not
  // revoked (as of the clock's now).
  std::optional<std::string> verify(std::string_view api_key) const;
  std::optional<VerifiedKey> verify_key(std::string_view api_key) const;
  static std::string fingerprint(std::string_view api_key);  // sha256 hex
  static std::string key_id(std::string_view api_key);       // "key_" + fingerprint's first 24

  KeyRevocations& revocations() const { return *revocations_; }
  // When each key last verified (since the previous call), for the keys list's last_used_at.
  std::unordered_map<std::string, Millis> take_last_used() const;

 private:
  std::string sign(std::string_view message, std::string_view secret) const;
  std::map<std::string, std::string> secrets_;
  std::string signing_kid_;
  const Clock& clock_;
  std::shared_ptr<KeyRevocations> revocations_ = std::make_shared<KeyRevocations>();
  // Keys already verified (the signature check is a pure function of the key): saves an HMAC and
  // a sha256 per request. Revocation is checked on every call.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, VerifiedKey> verified_;
  mutable std::unordered_map<std::string, Millis> last_used_;
};

// Outcome of authenticating a request: the agent id (and the key's id), or the 401 to send.
struct AuthResult {
  std::optional<std::string> agent_id;
  http::Response failure;
  std::string key_id;
};
AuthResult authenticate(const http::Request& request, const ApiKeyAuthority& authority);

}  // namespace al::auth
