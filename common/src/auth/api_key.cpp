#include "common/auth/api_key.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdexcept>

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

ApiKeyAuthority::ApiKeyAuthority(std::map<std::string, std::string> secrets, std::string kid)
    : secrets_(std::move(secrets)), signing_kid_(std::move(kid)) {
  if (secrets_.find(signing_kid_) == secrets_.end())
    throw std::invalid_argument("auth: no secret configured for the signing key id " + signing_kid_);
  for (const auto& [k, secret] : secrets_) {
    if (!valid_part(k, 16)) throw std::invalid_argument("auth: key id must be [A-Za-z0-9_-]{1,16}");
    if (secret.size() < 32) throw std::invalid_argument("auth: secrets must be at least 32 bytes");
  }
}

std::string ApiKeyAuthority::sign(std::string_view kid, std::string_view secret,
                                  std::string_view agent_id) const {
  std::string message = "agentlancer.api-key.v1|" + std::string(kid) + "|" + std::string(agent_id);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  return base64url(mac, mac_len);
}

std::string ApiKeyAuthority::issue(std::string_view agent_id) const {
  const std::string& secret = secrets_.at(signing_kid_);
  return "alk." + signing_kid_ + "." + std::string(agent_id) + "." +
         sign(signing_kid_, secret, agent_id);
}

std::optional<std::string> ApiKeyAuthority::verify(std::string_view key) const {
  if (key.size() > 200 || key.substr(0, 4) != "alk.") return std::nullopt;
  std::string full(key);
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = verified_.find(full); it != verified_.end()) return it->second;
  }
  key.remove_prefix(4);
  auto dot1 = key.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  auto dot2 = key.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  std::string_view kid = key.substr(0, dot1);
  std::string_view agent = key.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view mac = key.substr(dot2 + 1);
  if (!valid_part(kid, 16) || !valid_part(agent, 64) || !valid_part(mac, 64)) return std::nullopt;
  auto it = secrets_.find(std::string(kid));
  if (it == secrets_.end()) return std::nullopt;
  std::string expected = sign(kid, it->second, agent);
  if (expected.size() != mac.size() || CRYPTO_memcmp(expected.data(), mac.data(), mac.size()) != 0)
    return std::nullopt;
  std::lock_guard lock(cache_mutex_);
  if (verified_.size() >= 100'000) verified_.clear();  // bounded; only valid keys are cached
  verified_.emplace(std::move(full), std::string(agent));
  return std::string(agent);
}

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
    return {std::nullopt, http::Response::error(401, "Missing x-api-key header", "unauthorized")};
  auto agent = authority.verify(key);
  if (!agent) return {std::nullopt, http::Response::error(401, "Invalid API key", "unauthorized")};
  return {std::move(agent), {}};
}

}  // namespace al::auth
