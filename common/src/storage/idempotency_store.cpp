#include "common/storage/idempotency_store.hpp"

namespace al::storage::idempotency {

Migration table_migration(int version) {
  return {version,
          "CREATE TABLE idempotency_keys ("
          " agent_id TEXT NOT NULL,"
          " idem_key TEXT NOT NULL,"
          " request_hash TEXT NOT NULL,"
          " state TEXT NOT NULL,"
          " token TEXT NOT NULL,"
          " locked_until INTEGER NOT NULL,"
          " status INTEGER,"
          " content_type TEXT NOT NULL DEFAULT '',"
          " body TEXT NOT NULL DEFAULT '',"
          " created_at INTEGER NOT NULL,"
          " PRIMARY KEY (agent_id, idem_key));"
          "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);",
          {}};
}

std::optional<Record> find(Connection& c, const std::string& agent, const std::string& key) {
  auto q = c.query(std::string("SELECT request_hash, state, token, locked_until, status, content_type, body "
                               "FROM idempotency_keys WHERE agent_id = ? AND idem_key = ?") +
                       c.for_update(),
                   agent, key);
  if (!q.next()) return std::nullopt;
  Record r;
  r.request_hash = q.text(0);
  r.state = q.text(1);
  r.token = q.text(2);
  r.locked_until = q.int64(3);
  r.status = q.opt_int64(4);
  r.content_type = q.text(5);
  r.body = q.text(6);
  return r;
}

void insert_locked(Connection& c, const std::string& agent, const std::string& key, const std::string& request_hash,
                   const std::string& token, long long locked_until, long long now) {
  rerun_if_taken("idempotency key", [&] {
    c.query("INSERT INTO idempotency_keys (agent_id, idem_key, request_hash, state, token, locked_until, created_at) "
            "VALUES (?, ?, ?, 'locked', ?, ?, ?)",
            agent, key, request_hash, token, locked_until, now)
        .run();
  });
}

bool take_over(Connection& c, const std::string& agent, const std::string& key, const std::string& old_token,
               const std::string& token, long long locked_until) {
  return c.query("UPDATE idempotency_keys SET token = ?, locked_until = ? "
                 "WHERE agent_id = ? AND idem_key = ? AND token = ? AND state = 'locked'",
                 token, locked_until, agent, key, old_token)
             .run() == 1;
}

bool mark_committed(Connection& c, const std::string& agent, const std::string& key, const std::string& token) {
  return c.query("UPDATE idempotency_keys SET state = 'committed' "
                 "WHERE agent_id = ? AND idem_key = ? AND token = ? AND state IN ('locked', 'committed')",
                 agent, key, token)
             .run() == 1;
}

bool store_response(Connection& c, const std::string& agent, const std::string& key, const std::string& token,
                    long long status, const std::string& content_type, const std::string& body) {
  return c.query("UPDATE idempotency_keys SET state = 'done', status = ?, content_type = ?, body = ? "
                 "WHERE agent_id = ? AND idem_key = ? AND token = ? AND state = 'committed'",
                 status, content_type, body, agent, key, token)
             .run() == 1;
}

void release(Connection& c, const std::string& agent, const std::string& key, const std::string& token) {
  c.query("DELETE FROM idempotency_keys WHERE agent_id = ? AND idem_key = ? AND token = ? AND state = 'locked'", agent,
          key, token)
      .run();
}

long long purge(Connection& c, long long cutoff) {
  return c.query("DELETE FROM idempotency_keys WHERE created_at < ?", cutoff).run();
}

}  // namespace al::storage::idempotency
