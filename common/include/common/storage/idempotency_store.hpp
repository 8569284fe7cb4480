#pragma once
// The SQL of Idempotency-Key records: one table per service database, written once for SQLite and
// PostgreSQL. A record is taken (locked) before the request runs, marked committed inside the
// unit of work that makes the request's effect, and given the response once it is known.
#include <optional>
#include <string>

#include "common/storage/database.hpp"

namespace al::storage::idempotency {

Migration table_migration(int version);

struct Record {
  std::string request_hash;
  std::string state;  // "locked" | "committed" | "done"
  std::string token;  // the taker of the lock
  long long locked_until = 0;
  std::optional<long long> status;
  std::string content_type, body;
};

std::optional<Record> find(Connection& c, const std::string& agent, const std::string& key);
// Inserts a locked record; a concurrent taker's row makes it throw ConcurrentUpdate (run again).
void insert_locked(Connection& c, const std::string& agent, const std::string& key, const std::string& request_hash,
                   const std::string& token, long long locked_until, long long now);
// Takes over a lock whose holder passed `locked_until` without committing: false when it is no
// longer that holder's (someone else took it first).
bool take_over(Connection& c, const std::string& agent, const std::string& key, const std::string& old_token,
               const std::string& token, long long locked_until);
// Inside the effect's unit of work: the holder `token` committed. False when no such lock is held.
bool mark_committed(Connection& c, const std::string& agent, const std::string& key, const std::string& token);
// After the effect committed: the response to replay. False when the record is not committed by `token`.
bool store_response(Connection& c, const std::string& agent, const std::string& key, const std::string& token,
                    long long status, const std::string& content_type, const std::string& body);
// The request made no effect: the key is free again (the client may retry it, even with another body).
void release(Connection& c, const std::string& agent, const std::string& key, const std::string& token);
// Records created before `cutoff`; returns how many.
long long purge(Connection& c, long long cutoff);

}  // namespace al::storage::idempotency
