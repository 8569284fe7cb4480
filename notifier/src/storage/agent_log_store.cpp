#include "storage/agent_log_store.hpp"

#include <algorithm>

#include "common/events/outbox.hpp"
#include "common/storage/key_revocation_store.hpp"
#include "common/log/log.hpp"

namespace al::notifier {

std::vector<storage::Migration> agent_log_migrations() {
  return {
      events::outbox_migration(1),  // processed_events and dead_letters for the consumer
      {2, R"sql(
CREATE TABLE agent_events (
  agent_id TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  cloudevent_id TEXT NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, event_id)
) WITHOUT ROWID;
CREATE INDEX agent_events_by_age ON agent_events(created_at);
CREATE TABLE agent_event_counters (
  agent_id TEXT PRIMARY KEY,
  last_event_id INTEGER NOT NULL
) WITHOUT ROWID;
)sql", {}},
      // Entries carry the whole event (about 1-2 kB): in a WITHOUT ROWID table keyed by agent
      // they were inserted all over the B-tree (page splits, many dirty pages per commit). A rowid
      // table appends them; the (agent, event) key is a small index.
      {3, R"sql(
CREATE TABLE agent_events_appended (
  agent_id TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  cloudevent_id TEXT NOT NULL,
  type TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (agent_id, event_id)
);
INSERT INTO agent_events_appended(agent_id, event_id, cloudevent_id, type, payload, created_at)
  SELECT agent_id, event_id, cloudevent_id, type, payload, created_at FROM agent_events ORDER BY created_at;
DROP TABLE agent_events;
ALTER TABLE agent_events_appended RENAME TO agent_events;
CREATE INDEX agent_events_by_age ON agent_events(created_at);
)sql", {}},
      events::outbox_published_at_migration(4),
      storage::key_revocations::table_migration(5),
  };
}

std::vector<Appended> AgentLogStore::append(storage::Connection& c, const events::CloudEvent& event,
                                            const std::string& payload, Millis now) {
  std::vector<Appended> appended;
  for (const auto& agent : event.audience) {
    if (std::any_of(appended.begin(), appended.end(), [&](const Appended& a) { return a.agent_id == agent; })) continue;
    long long id = 0;
    {
      auto q = c.query("INSERT INTO agent_event_counters(agent_id, last_event_id) VALUES (?, 1) "
                       "ON CONFLICT(agent_id) DO UPDATE SET last_event_id = agent_event_counters.last_event_id + 1 "
                       "RETURNING last_event_id",
                       agent);
      if (q.next()) id = q.int64(0);
    }
    c.query("INSERT INTO agent_events(agent_id, event_id, cloudevent_id, type, payload, created_at) VALUES (?,?,?,?,?,?)",
            agent, id, event.id, event.type, payload, now)
        .run();
    c.notify(kAppendedChannel, replica_ + " " + agent + " " + std::to_string(id));
    appended.push_back({agent, id});
  }
  return appended;
}

std::optional<Announcement> Announcement::parse(const std::string& payload) {
  auto first = payload.find(' ');
  auto second = first == std::string::npos ? std::string::npos : payload.find(' ', first + 1);
  if (second == std::string::npos) return std::nullopt;
  Announcement a;
  a.replica = payload.substr(0, first);
  a.agent_id = payload.substr(first + 1, second - first - 1);
  try {
    a.event_id = std::stoll(payload.substr(second + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return a;
}

std::vector<LogEntry> AgentLogStore::after(const std::string& agent_id, long long after_event_id, long long limit) {
  return db_.read([&](storage::Connection& c) {
    std::vector<LogEntry> out;
    auto q = c.query("SELECT event_id, payload FROM agent_events WHERE agent_id = ? AND event_id > ? ORDER BY event_id LIMIT ?",
                     agent_id, after_event_id, limit);
    while (q.next()) out.push_back({q.int64(0), q.text(1)});
    return out;
  });
}

std::pair<long long, long long> AgentLogStore::head_and_oldest(const std::string& agent_id) {
  return db_.read_tx([&](storage::Connection& c) {
    std::pair<long long, long long> b{0, 0};
    {
      auto q = c.query("SELECT last_event_id FROM agent_event_counters WHERE agent_id = ?", agent_id);
      if (q.next()) b.first = q.int64(0);
    }
    auto q = c.query("SELECT MIN(event_id) FROM agent_events WHERE agent_id = ?", agent_id);
    if (q.next() && !q.is_null(0)) b.second = q.int64(0);
    return b;
  });
}

void AgentLogStore::trim(Millis cutoff) {
  db_.write([cutoff](storage::Connection& c) { c.query("DELETE FROM agent_events WHERE created_at < ?", cutoff).run(); },
            [](std::exception_ptr error) {
              if (error) log::warn("notifier retention trim failed");
            });
}

}  // namespace al::notifier
