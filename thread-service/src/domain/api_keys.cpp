#include "domain/api_keys.hpp"

#include <algorithm>

namespace al::thread::keys {

bool active(const Key& key, Millis now) { return !key.expires_at || *key.expires_at > now; }

namespace {
const Key* find_active(const std::vector<Key>& keys, const std::string& key_id, Millis now) {
  auto it = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.key_id == key_id; });
  return it != keys.end() && active(*it, now) ? &*it : nullptr;
}
}  // namespace

CreateDecision decide_create(const std::vector<Key>& keys, const std::optional<std::string>& replaces, Millis now,
                             Millis grace_ms, int max_active) {
  CreateDecision decision;
  long active_count = std::count_if(keys.begin(), keys.end(), [now](const Key& k) { return active(k, now); });
  if (replaces) {
    const Key* replaced = find_active(keys, *replaces, now);
    if (!replaced) return {Refusal::KeyNotFound, std::nullopt};
    Millis stops = now + std::max<Millis>(0, grace_ms);
    decision.replaced_expires_at = replaced->expires_at ? std::min(*replaced->expires_at, stops) : stops;
    --active_count;
  }
  if (active_count >= max_active) return {Refusal::TooManyKeys, std::nullopt};
  return decision;
}

RevokeDecision decide_revoke(const std::vector<Key>& keys, const std::string& key_id, Millis now) {
  if (!find_active(keys, key_id, now)) return {Refusal::KeyNotFound, 0};
  return {Refusal::None, now};
}

}  // namespace al::thread::keys
