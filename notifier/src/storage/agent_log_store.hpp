#pragma once
// The notifier's durable per-agent event log: every event an agent may see, numbered per agent.
#include <memory>
#include <optional>
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

// Told to every notifier replica when entries commit (PostgreSQL NOTIFY): "<replica> <agent> <id>".
inline constexpr const char* kAppendedChannel = "agentlancer_agent_events";

struct Announcement {
  std::string replica, agent_id;
  long long event_id = 0;
  static std::optional<Announcement> parse(const std::string& payload);
};

class AgentLogStore {
 public:
  AgentLogStore(storage::Database& db, std::string replica) : db_(db), replica_(std::move(replica)) {}

  // Appends the event to the log of every agent in its audience (inside the consumer's
  // transaction, together with the processed-event marker: a redelivery adds nothing). The
  // per-agent counter row is locked until commit, so ids are in commit order per agent. Each
  // entry is announced on kAppendedChannel when the transaction commits.
  std::vector<Appended> append(storage::Connection& c, const events::CloudEvent& event, const std::string& payload,
                               Millis now);
  const std::string& replica() const { return replica_; }
  std::vector<LogEntry> after(const std::string& agent_id, long long after_event_id, long long limit);
  // The newest id given out (head) and the oldest still kept (0: none).
  std::pair<long long, long long> head_and_oldest(const std::string& agent_id);
  void trim(Millis cutoff);

 private:
  storage::Database& db_;
  std::string replica_;
};

}  // namespace al::notifier
