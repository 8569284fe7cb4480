#pragma once
// Webhook endpoints and their delivery attempts, in the notifier's database. Every function runs
// inside a unit of work or a read the caller opened.
#include <optional>
#include <string>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/storage/database.hpp"

namespace al::notifier::webhook_store {

std::vector<storage::Migration> migrations();  // versions 6 and up of the notifier's database

struct Endpoint {
  std::string id, agent_id, url;
  std::optional<std::vector<std::string>> event_types;  // nullopt: every event
  std::optional<std::string> description;
  std::string secret;
  std::optional<std::string> previous_secret;
  Millis previous_secret_until = 0;
  bool enabled = true;
  std::optional<std::string> disabled_reason;  // "failing" or "by_agent"
  std::optional<Millis> failing_since;
  std::optional<std::string> last_error;
  long long cursor = 0;  // the agent-log event id delivered (or skipped) last
  int attempt = 0;       // failed attempts of the event after the cursor
  Millis next_attempt_at = 0;
  std::string lease;  // the claim of the replica delivering it ("" when free)
  Millis lease_until = 0;
  Millis created_at = 0, updated_at = 0;

  bool wants(const std::string& type) const;
};

struct Delivery {
  std::string endpoint_id;
  long long event_id = 0;
  std::string webhook_id, type;
  int attempt = 0;
  bool delivered = false;
  std::optional<long long> response_code;
  long long latency_us = 0;
  std::optional<std::string> error;
  Millis attempted_at = 0;
};

long long count_for_agent(storage::Connection& c, const std::string& agent_id);
void insert(storage::Connection& c, const Endpoint& e);
// The agent's endpoint `id` (nullopt for another agent's or an unknown one).
std::optional<Endpoint> find(storage::Connection& c, const std::string& agent_id, const std::string& id);
std::optional<Endpoint> by_id(storage::Connection& c, const std::string& id);
std::vector<Endpoint> list(storage::Connection& c, const std::string& agent_id);
// Writes every field but id, agent_id and created_at.
void save(storage::Connection& c, const Endpoint& e);
bool remove(storage::Connection& c, const std::string& agent_id, const std::string& id);

// The newest id in the agent's log (0: none yet).
long long log_head(storage::Connection& c, const std::string& agent_id);

// Enabled endpoints with an attempt due, no live lease, and events after their cursor.
std::vector<std::string> due(storage::Connection& c, Millis now, long long limit);
// Takes the lease when it is free (false: another replica holds it).
bool claim(storage::Connection& c, const std::string& id, const std::string& lease, Millis until, Millis now);

void record(storage::Connection& c, const Delivery& d);
std::vector<Delivery> deliveries(storage::Connection& c, const std::string& endpoint_id, long long limit);
void trim_deliveries(storage::Connection& c, Millis cutoff);

}  // namespace al::notifier::webhook_store
