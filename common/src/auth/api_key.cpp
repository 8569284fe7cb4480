#include "common/auth/api_key.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>
#include <utility>

namespace al::auth {
namespace {
std::string base64url(const unsigned char* data, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (n - i == 1) {
    unsigned v = data[i] << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (n - i == 2) {
    unsigned v = (data[i] << 16) | (data[i + 1] << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}
bool valid_part(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}
}  // namespace

bool KeyRevocations::revoke(const Revocation& revocation) {
  std::vector<Listener> listeners;
  {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = effective_at_.emplace(revocation.key_id, revocation.effective_at);
    if (!inserted) {
      if (it->second <= revocation.effective_at) return false;
      it->second = revocation.effective_at;
    }
    listeners = listeners_;
  }
  for (const auto& listener : listeners) listener(revocation);
  return true;
}

bool KeyRevocations::revoked(const std::string& key_id, Millis now) const {
  std::lock_guard lock(mutex_);
  auto it = effective_at_.find(key_id);
  return it != effective_at_.end() && it->second <= now;
}

std::optional<Millis> KeyRevocations::effective_at(const std::string& key_id) const {
  std::lock_guard lock(mutex_);
  auto it = effective_at_.find(key_id);
  if (it == effective_at_.end()) return std::nullopt;
  return it->second;
}

std::size_t KeyRevocations::size() const {
  std::lock_guard lock(mutex_);
  return effective_at_.size();
}

void KeyRevocations::listen(Listener listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

ApiKeyAuthority::ApiKeyAuthority(std::map<std::string, std::string> secrets, std::string kid, const Clock& clock)
    : secrets_(std::move(secrets)), signing_kid_(std::move(kid)), clock_(clock) {
  if (secrets_.find(signing_kid_) == secrets_.end())
    throw std::invalid_argument("auth: no secret configured for the signing key id " + signing_kid_);
  for (const auto& [k, secret] : secrets_) {
    if (!valid_part(k, 16)) throw std::invalid_argument("auth: key id must be [A-Za-z0-9_-]{1,16}");
    if (secret.size() < 32) throw std::invalid_argument("auth: secrets must be at least 32 bytes");
  }
}

std::string ApiKeyAuthority::sign(std::string_view message, std::string_view secret) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  return base64url(mac, mac_len);
}

namespace {
std::string v1_message(std::string_view kid, std::string_view agent) {
  return "agentlancer.api-key.v1|" + std::string(kid) + "|" + std::string(agent);
}
std::string v2_message(std::string_view kid, std::string_view agent, std::string_view nonce) {
  return "agentlancer.api-key.v2|" + std::string(kid) + "|" + std::string(agent) + "|" + std::string(nonce);
}
}  // namespace

std::string ApiKeyAuthority::issue(std::string_view agent_id) const {
  const std::string& secret = secrets_.at(signing_kid_);
  return "alk." + signing_kid_ + "." + std::string(agent_id) + "." + sign(v1_message(signing_kid_, agent_id), secret);
}

std::string ApiKeyAuthority::issue_with_nonce(std::string_view agent_id, std::string_view nonce) const {
  const std::string& secret = secrets_.at(signing_kid_);
  return "alk." + signing_kid_ + "." + std::string(agent_id) + "." + std::string(nonce) + "." +
         sign(v2_message(signing_kid_, agent_id, nonce), secret);
}

std::string ApiKeyAuthority::issue_additional(std::string_view agent_id) const {
  unsigned char random[16];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("auth: no randomness for a key nonce");
  return issue_with_nonce(agent_id, base64url(random, sizeof random));
}

std::optional<std::string> ApiKeyAuthority::verify(std::string_view key) const {
  auto verified = verify_key(key);
  if (!verified) return std::nullopt;
  return std::move(verified->agent_id);
}

std::optional<VerifiedKey> ApiKeyAuthority::verify_key(std::string_view key) const {
  if (key.size() > 200 || key.substr(0, 4) != "alk.") return std::nullopt;
  std::string full(key);
  Millis now = clock_.now_ms();
  std::optional<VerifiedKey> found;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = verified_.find(full); it != verified_.end()) found = it->second;
  }
  if (!found) {
    key.remove_prefix(4);
    std::vector<std::string_view> parts;
    while (parts.size() < 5) {
      auto dot = key.find('.');
      parts.push_back(key.substr(0, dot));
      if (dot == std::string_view::npos) break;
      key.remove_prefix(dot + 1);
      if (parts.size() == 4) return std::nullopt;  // a fifth dot
    }
    if (parts.size() != 3 && parts.size() != 4) return std::nullopt;
    std::string_view kid = parts[0], agent = parts[1], mac = parts.back();
    if (!valid_part(kid, 16) || !valid_part(agent, 64) || !valid_part(mac, 64)) return std::nullopt;
    if (parts.size() == 4 && !valid_part(parts[2], 43)) return std::nullopt;
    auto it = secrets_.find(std::string(kid));
    if (it == secrets_.end()) return std::nullopt;
    std::string expected =
        sign(parts.size() == 3 ? v1_message(kid, agent) : v2_message(kid, agent, parts[2]), it->second);
    if (expected.size() != mac.size() || CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0)
      return std::nullopt;
    found = VerifiedKey{std::string(agent), key_id(full)};
    std::lock_guard lock(cache_mutex_);
    if (verified_.size() >= 100'000) verified_.clear();  // bounded; only valid keys are cached
    verified_.emplace(full, *found);
  }
  if (revocations_->revoked(found->key_id, now)) return std::nullopt;
  {
    std::lock_guard lock(cache_mutex_);
    if (last_used_.size() < 100'000) last_used_[found->key_id] = now;
  }
  return found;
}

std::unordered_map<std::string, Millis> ApiKeyAuthority::take_last_used() const {
  std::lock_guard lock(cache_mutex_);
  return std::exchange(last_used_, {});
}

std::string ApiKeyAuthority::key_id(std::string_view api_key) { return "key_" + fingerprint(api_key).substr(0, 24); }

std::string ApiKeyAuthority::fingerprint(std::string_view key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

AuthResult authenticate(const http::Request& request, const ApiKeyAuthority& authority) {
  std::string_view key = request.header("x-api-key");
  if (key.empty())
    return {std::nullopt, http::Response::error(401, "Missing x-api-key header", "unauthorized"), {}};
  auto verified = authority.verify_key(key);
  if (!verified) return {std::nullopt, http::Response::error(401, "Invalid API key", "unauthorized"), {}};
  return {std::move(verified->agent_id), {}, std::move(verified->key_id)};
}

}  // namespace al::auth
