#pragma once
// API keys in the thread-service database (table api_keys, migration 8): the rows behind
// /api/agent/keys. The revoked ones are also in revoked_api_keys (common key_revocation_store).
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/storage/database.hpp"
#include "domain/api_keys.hpp"

namespace al::thread {

// Statements of one unit of work on an agent's keys; the agent's row is locked first, so two
// requests on the same agent's keys run one after the other.
class KeyTx {
 public:
  explicit KeyTx(storage::Connection& c) : c_(c) {}
  // The agent's event sequence (its last event's seq), locking its row; nullopt: no such agent.
  std::optional<long long> lock_agent(const std::string& agent_id);
  void set_event_seq(const std::string& agent_id, long long seq);
  std::vector<keys::Key> keys(const std::string& agent_id);
  void insert(const keys::Key& key);
  // Stops the key at `expires_at`; `revoked_at` when it was revoked (not replaced).
  void set_expiry(const std::string& key_id, Millis expires_at, std::optional<Millis> revoked_at);
  storage::Connection& connection() { return c_; }

 private:
  storage::Connection& c_;
};

std::vector<keys::Key> load_keys(storage::Database& db, const std::string& agent_id);
// Best effort: last_used_at moves forward only.
void record_last_used(storage::Connection& c, const std::unordered_map<std::string, Millis>& last_used);

}  // namespace al::thread
