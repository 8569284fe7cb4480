#pragma once
// Use cases of /api/agent/keys: make another key (optionally replacing one after a grace period),
// list them, revoke one. Each write is one unit of work: the key rows, the revocation record and
// the agent.key_created / agent.key_revoked event (outbox) commit together.
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/auth/api_key.hpp"
#include "common/clock/clock.hpp"
#include "common/service/key_revocations.hpp"
#include "common/storage/database.hpp"
#include "domain/api_keys.hpp"

namespace al::thread {

struct KeyOptions {
  Millis rotation_grace_ms = 24LL * 3600 * 1000;
  int max_active_keys = 10;
};

class KeyService {
 public:
  KeyService(storage::Database& db, const auth::ApiKeyAuthority& auth, key_revocations::Sync& revocations,
             const Clock& clock, KeyOptions options);

  struct Created {
    keys::Refusal refusal = keys::Refusal::None;
    keys::Key key;
    std::string api_key;  // shown once
    std::optional<keys::Key> replaced;
  };
  // `caller_key_id`: the key making the request (recorded as the new key's creator).
  void create(const std::string& agent_id, const std::string& caller_key_id, const std::optional<std::string>& replaces,
              const trace::Cause& cause, std::function<void(std::exception_ptr, Created)> done);
  void revoke(const std::string& agent_id, const std::string& key_id, const trace::Cause& cause,
              std::function<void(std::exception_ptr, keys::Refusal)> done);
  // The agent's keys that still work (a replaced key until its expiry).
  std::vector<keys::Key> active_keys(const std::string& agent_id);
  // Writes when each key last authenticated in this process (a periodic sweep).
  void record_last_used();

  const KeyOptions& options() const { return options_; }

 private:
  storage::Database& db_;
  const auth::ApiKeyAuthority& auth_;
  key_revocations::Sync& revocations_;
  const Clock& clock_;
  KeyOptions options_;
};

}  // namespace al::thread
