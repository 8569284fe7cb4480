#include "common/storage/outbox_store.hpp"

namespace al::storage::outbox {

Migration tables_migration(int version) {
  return {version, R"sql(
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  topic TEXT NOT NULL,
  msg_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE outbox_watermark (
  relay TEXT PRIMARY KEY,
  published_upto INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE processed_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  processed_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  consumer TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
)sql", {}};
}

Migration published_at_migration(int version) {
  return {version, R"sql(
ALTER TABLE outbox ADD COLUMN published_at INTEGER;
UPDATE outbox SET published_at = created_at
 WHERE seq <= COALESCE((SELECT MAX(published_upto) FROM outbox_watermark), 0);
DROP TABLE outbox_watermark;
CREATE INDEX outbox_unpublished ON outbox(seq) WHERE published_at IS NULL;
CREATE TABLE relay_leases (
  relay TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
)sql", {}};
}

Migration positions_migration(int version) {
  return {version, R"sql(
CREATE TABLE relay_positions (
  topic TEXT NOT NULL,
  kafka_partition INTEGER NOT NULL,
  kafka_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, kafka_partition)
);
)sql", {}};
}

void append(Connection& c, const std::string& event_id, const std::string& topic, const std::string& key,
            const std::string& payload, long long now) {
  c.query("INSERT INTO outbox(event_id, topic, msg_key, payload, created_at) VALUES (?,?,?,?,?)", event_id, topic,
          key, payload, now)
      .run();
}

bool claim(Connection& c, const std::string& consumer, const std::string& event_id, long long now) {
  return c.query("INSERT INTO processed_events(consumer, event_id, processed_at) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                 consumer, event_id, now)
             .run() == 1;
}

void dead_letter(Connection& c, const std::string& consumer, const std::string& topic, const std::string& payload,
                 const std::string& error, long long now) {
  c.query("INSERT INTO dead_letters(consumer, topic, payload, error, created_at) VALUES (?,?,?,?,?)", consumer, topic,
          payload, error, now)
      .run();
}

namespace {
std::vector<Row> rows_of(Query& q) {
  std::vector<Row> out;
  while (q.next()) out.push_back({q.int64(0), q.text(1), q.text(2), q.text(3)});
  return out;
}
}  // namespace

std::optional<long long> oldest_unpublished_at(Connection& c) {
  auto q = c.query("SELECT created_at FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1");
  if (!q.next()) return std::nullopt;
  return q.int64(0);
}

std::vector<Row> unpublished(Connection& c, std::size_t limit) {
  auto q = c.query("SELECT seq, topic, msg_key, payload FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT ?",
                   static_cast<long long>(limit));
  return rows_of(q);
}

std::vector<Row> between(Connection& c, long long after, long long upto, std::size_t limit) {
  auto q = c.query("SELECT seq, topic, msg_key, payload FROM outbox WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                   after, upto, static_cast<long long>(limit));
  return rows_of(q);
}

long long max_seq(Connection& c) {
  auto q = c.query("SELECT COALESCE(MAX(seq), 0) FROM outbox");
  return q.next() ? q.int64(0) : 0;
}

void mark_published(Connection& c, const std::vector<long long>& seqs, const std::vector<Position>& reached,
                    long long now) {
  // Only ever forward: the greatest of what is recorded and what was reached.
  const char* upsert = c.dialect() == Dialect::Postgres
                           ? "INSERT INTO relay_positions(topic, kafka_partition, kafka_offset) VALUES (?,?,?) "
                             "ON CONFLICT (topic, kafka_partition) DO UPDATE SET kafka_offset = "
                             "GREATEST(relay_positions.kafka_offset, excluded.kafka_offset)"
                           : "INSERT INTO relay_positions(topic, kafka_partition, kafka_offset) VALUES (?,?,?) "
                             "ON CONFLICT (topic, kafka_partition) DO UPDATE SET kafka_offset = "
                             "MAX(relay_positions.kafka_offset, excluded.kafka_offset)";
  for (const auto& p : reached)
    if (p.partition >= 0 && p.offset >= 0) c.query(upsert, p.topic, static_cast<long long>(p.partition), p.offset).run();
  if (seqs.empty()) return;
  // By explicit sequence numbers, never by range: a row inside the range that committed after
  // the read has not been published yet.
  std::string list;
  for (long long s : seqs) {
    if (!list.empty()) list.push_back(',');
    list += std::to_string(s);
  }
  if (c.dialect() == Dialect::Postgres) {
    c.query("UPDATE outbox SET published_at = ? WHERE seq = ANY(CAST(? AS BIGINT[])) AND published_at IS NULL", now,
            "{" + list + "}")
        .run();
  } else {
    c.query("UPDATE outbox SET published_at = ? WHERE seq IN (SELECT value FROM json_each(?)) AND published_at IS NULL",
            now, "[" + list + "]")
        .run();
  }
}

std::vector<Position> positions(Connection& c) {
  std::vector<Position> out;
  auto q = c.query("SELECT topic, kafka_partition, kafka_offset FROM relay_positions");
  while (q.next()) out.push_back({q.text(0), static_cast<int>(q.int64(1)), q.int64(2)});
  return out;
}

std::vector<Pending> unpublished_between(Connection& c, long long after, long long upto, std::size_t limit) {
  std::vector<Pending> out;
  auto q = c.query(
      "SELECT seq, event_id, topic FROM outbox WHERE published_at IS NULL AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
      after, upto, static_cast<long long>(limit));
  while (q.next()) out.push_back({q.int64(0), q.text(1), q.text(2)});
  return out;
}

long long backlog(Connection& c) {
  auto q = c.query("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL");
  return q.next() ? q.int64(0) : 0;
}

bool hold_lease(Connection& c, const std::string& relay, const std::string& holder, long long now, long long ttl_ms) {
  // Taken when free, expired, or already ours (then renewed); a row changed = held.
  return c.query("INSERT INTO relay_leases(relay, holder, expires_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (relay) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                 "WHERE relay_leases.holder = excluded.holder OR relay_leases.expires_at < ?",
                 relay, holder, now + ttl_ms, now)
             .run() == 1;
}

void release_lease(Connection& c, const std::string& relay, const std::string& holder) {
  c.query("UPDATE relay_leases SET expires_at = 0 WHERE relay = ? AND holder = ?", relay, holder).run();
}

void trim(Connection& c, long long cutoff) {
  c.query("DELETE FROM outbox WHERE published_at IS NOT NULL AND created_at < ?", cutoff).run();
}

}  // namespace al::storage::outbox
