#pragma once
// The SQL of revoked API keys: one table per service database (written once for SQLite and
// PostgreSQL), fed by the revoking transaction in thread-service and by `agent.key_revoked` events
// everywhere else; every replica of a service reads it into its in-memory revocation list.
#include <string>
#include <vector>

#include "common/storage/database.hpp"

namespace al::storage::key_revocations {

Migration table_migration(int version);

struct Row {
  std::string agent_id;
  std::string key_id;
  long long effective_at = 0;
  long long recorded_at = 0;
};

// Records a revocation; an earlier effective time replaces a later one (a key revoked during its
// rotation grace period stops at once). True when the row was written.
bool record(Connection& c, const Row& row);
// Rows recorded at or after `since` (0: all of them).
std::vector<Row> recorded_since(Connection& c, long long since);

}  // namespace al::storage::key_revocations
