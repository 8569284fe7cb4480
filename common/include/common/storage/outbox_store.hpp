#pragma once
// The SQL of the transactional outbox, the consumers' processed-event markers and dead letters:
// shared by every service database, written once for SQLite and PostgreSQL.
#include <string>
#include <vector>

#include "common/storage/database.hpp"

namespace al::storage::outbox {

Migration tables_migration(int version);
// Replaces the single published watermark (correct only while commits happen in sequence order)
// by a per-row `published_at`: with concurrent committers a lower `seq` may commit later, and
// "every unpublished row" still finds it. Adds the relays' publisher leases.
Migration published_at_migration(int version);
// Where the publisher's messages went on Kafka: per (topic, partition), the highest offset of a row
// marked published. After a crash a relay reads the partitions only from there on to find what
// was produced but never marked.
Migration positions_migration(int version);

void append(Connection& c, const std::string& event_id, const std::string& topic, const std::string& key,
            const std::string& payload, long long now);
// True when this consumer had not recorded the event yet (and now has, in the caller's transaction).
bool claim(Connection& c, const std::string& consumer, const std::string& event_id, long long now);
void dead_letter(Connection& c, const std::string& consumer, const std::string& topic, const std::string& payload,
                 const std::string& error, long long now);

struct Row {
  long long seq;
  std::string topic, key, payload;
};
struct Position {
  std::string topic;
  int partition;
  long long offset;
};
// Unpublished rows as the read-back knows them.
struct Pending {
  long long seq;
  std::string event_id, topic;
};
// The lowest unpublished rows that have committed, in sequence order.
std::vector<Row> unpublished(Connection& c, std::size_t limit);
// When the oldest row not yet on Kafka was written (nullopt: every row is published).
std::optional<long long> oldest_unpublished_at(Connection& c);
// Every row (published or not) in (after, upto], for replaying to an empty embedded broker.
std::vector<Row> between(Connection& c, long long after, long long upto, std::size_t limit);
long long max_seq(Connection& c);
// Marks the rows and records the highest offset they reached per partition.
void mark_published(Connection& c, const std::vector<long long>& seqs, const std::vector<Position>& reached,
                    long long now);
std::vector<Position> positions(Connection& c);
// Unpublished rows with after < seq <= upto, in sequence order.
std::vector<Pending> unpublished_between(Connection& c, long long after, long long upto, std::size_t limit);
long long backlog(Connection& c);
// One publisher per relay name among replicas: true when `holder` now holds the lease until
// now + ttl (taken when free or expired, renewed when already held).
bool hold_lease(Connection& c, const std::string& relay, const std::string& holder, long long now, long long ttl_ms);
void release_lease(Connection& c, const std::string& relay, const std::string& holder);
// Published rows created before `cutoff`.
void trim(Connection& c, long long cutoff);

}  // namespace al::storage::outbox
