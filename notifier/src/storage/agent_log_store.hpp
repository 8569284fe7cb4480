#pragma once
// The notifier's durable per-agent event log: every event an agent may see, numbered per agent.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock/clock.hpp"
#include "common/events/cloud_event.hpp"
#include "common/storage/database.hpp"

namespace al::notifier {

std::vector<storage::Migration> agent_log_migrations();

struct Appended {
  std::string agent_id;
  long long event_id;
};

struct LogEntry {
  long long event_id;
  std::string payload;  // the CloudEvent as JSON
};

class AgentLogStore {
 public:
  explicit AgentLogStore(storage::Database& db) : db_(db) {}

  // Appends the event to the log of every agent in its audience (inside the consumer's
  // transaction, together with the processed-event marker: a redelivery adds nothing). The
  // per-agent counter row is locked until commit, so ids are in commit order per agent.
  static std::vector<Appended> append(storage::Connection& c, const events::CloudEvent& event,
                                      const std::string& payload, Millis now);
  std::vector<LogEntry> after(const std::string& agent_id, long long after_event_id, long long limit);
  // The newest id given out (head) and the oldest still kept (0: none).
  std::pair<long long, long long> head_and_oldest(const std::string& agent_id);
  void trim(Millis cutoff);

 private:
  storage::Database& db_;
};

}  // namespace al::notifier
