#include "common/storage/key_revocation_store.hpp"

namespace al::storage::key_revocations {

Migration table_migration(int version) {
  return {version,
          "CREATE TABLE revoked_api_keys ("
          " key_id TEXT PRIMARY KEY,"
          " agent_id TEXT NOT NULL,"
          " effective_at INTEGER NOT NULL,"
          " recorded_at INTEGER NOT NULL) WITHOUT ROWID;"
          "CREATE INDEX revoked_api_keys_recorded ON revoked_api_keys (recorded_at);",
          {}};
}

bool record(Connection& c, const Row& row) {
  return c.query("INSERT INTO revoked_api_keys (key_id, agent_id, effective_at, recorded_at) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (key_id) DO UPDATE SET effective_at = excluded.effective_at, "
                 "recorded_at = excluded.recorded_at WHERE revoked_api_keys.effective_at > excluded.effective_at",
                 row.key_id, row.agent_id, row.effective_at, row.recorded_at)
             .run() == 1;
}

std::vector<Row> recorded_since(Connection& c, long long since) {
  auto q = c.query("SELECT agent_id, key_id, effective_at, recorded_at FROM revoked_api_keys WHERE recorded_at >= ?",
                   since);
  std::vector<Row> rows;
  while (q.next()) rows.push_back({q.text(0), q.text(1), q.int64(2), q.int64(3)});
  return rows;
}

}  // namespace al::storage::key_revocations
