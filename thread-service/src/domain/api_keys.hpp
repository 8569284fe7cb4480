#pragma once
// An agent's API keys (pure rules; no storage): how many may be active, what replacing one with a
// grace period and revoking one do.
#include <optional>
#include <string>
#include <vector>

#include "common/clock/clock.hpp"

namespace al::thread::keys {

struct Key {
  std::string key_id;
  std::string agent_id;
  std::string fingerprint;
  Millis created_at = 0;
  std::optional<std::string> created_by;  // the key that made it (none for the signup key)
  std::optional<Millis> last_used_at;
  std::optional<Millis> expires_at;  // set by a rotation (grace period) or a revocation (now)
};

// A key works until its expiry (if any).
bool active(const Key& key, Millis now);

enum class Refusal { None, TooManyKeys, KeyNotFound };

struct CreateDecision {
  Refusal refusal = Refusal::None;
  // With `replaces`: when the replaced key stops (now + grace, or its earlier expiry).
  std::optional<Millis> replaced_expires_at;
};
// A new key may be made while fewer than `max_active` keys are active (a replaced key does not
// count: it is on its way out). `replaces` must name an active key of the agent.
CreateDecision decide_create(const std::vector<Key>& keys, const std::optional<std::string>& replaces, Millis now,
                             Millis grace_ms, int max_active);

struct RevokeDecision {
  Refusal refusal = Refusal::None;
  Millis effective_at = 0;
};
// Revoking stops an active key at once (also one already set to expire after a rotation); an
// unknown, another agent's or an already stopped key is not found.
RevokeDecision decide_revoke(const std::vector<Key>& keys, const std::string& key_id, Millis now);

}  // namespace al::thread::keys
