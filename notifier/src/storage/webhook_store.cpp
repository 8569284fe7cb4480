#include "storage/webhook_store.hpp"

#include <algorithm>

namespace al::notifier::webhook_store {
namespace {
constexpr const char* kColumns =
    "id, agent_id, url, event_types, description, secret, previous_secret, previous_secret_until, enabled, "
    "disabled_reason, failing_since, last_error, cursor, attempt, next_attempt_at, lease, lease_until, created_at, "
    "updated_at";

std::optional<std::string> join_types(const std::optional<std::vector<std::string>>& types) {
  if (!types) return std::nullopt;
  std::string out;
  for (const auto& t : *types) out += (out.empty() ? "" : " ") + t;
  return out;
}

std::optional<std::vector<std::string>> split_types(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text->size()) {
    auto end = text->find(' ', start);
    if (end == std::string::npos) end = text->size();
    if (end > start) out.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Endpoint read(const storage::Query& q) {
  Endpoint e;
  e.id = q.text(0);
  e.agent_id = q.text(1);
  e.url = q.text(2);
  e.event_types = split_types(q.opt_text(3));
  e.description = q.opt_text(4);
  e.secret = q.text(5);
  e.previous_secret = q.opt_text(6);
  e.previous_secret_until = q.int64(7);
  e.enabled = q.int64(8) != 0;
  e.disabled_reason = q.opt_text(9);
  e.failing_since = q.opt_int64(10);
  e.last_error = q.opt_text(11);
  e.cursor = q.int64(12);
  e.attempt = static_cast<int>(q.int64(13));
  e.next_attempt_at = q.int64(14);
  e.lease = q.text(15);
  e.lease_until = q.int64(16);
  e.created_at = q.int64(17);
  e.updated_at = q.int64(18);
  return e;
}
}  // namespace

bool Endpoint::wants(const std::string& type) const {
  return !event_types || std::find(event_types->begin(), event_types->end(), type) != event_types->end();
}

std::vector<storage::Migration> migrations() {
  return {{6, R"sql(
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  url TEXT NOT NULL,
  event_types TEXT,
  description TEXT,
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_until INTEGER NOT NULL,
  enabled INTEGER NOT NULL,
  disabled_reason TEXT,
  failing_since INTEGER,
  last_error TEXT,
  cursor INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  lease TEXT NOT NULL,
  lease_until INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_agent ON webhook_endpoints(agent_id, created_at);
CREATE INDEX webhook_endpoints_due ON webhook_endpoints(enabled, next_attempt_at);
CREATE TABLE webhook_deliveries (
  endpoint_id TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  webhook_id TEXT NOT NULL,
  type TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  delivered INTEGER NOT NULL,
  response_code INTEGER,
  latency_us INTEGER NOT NULL,
  error TEXT,
  attempted_at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries(endpoint_id, attempted_at);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries(attempted_at);
)sql", {}}};
}

long long count_for_agent(storage::Connection& c, const std::string& agent_id) {
  auto q = c.query("SELECT COUNT(*) FROM webhook_endpoints WHERE agent_id = ?", agent_id);
  return q.next() ? q.int64(0) : 0;
}

void insert(storage::Connection& c, const Endpoint& e) {
  c.query(std::string("INSERT INTO webhook_endpoints(") + kColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          e.id, e.agent_id, e.url, join_types(e.event_types), e.description, e.secret, e.previous_secret,
          e.previous_secret_until, e.enabled ? 1 : 0, e.disabled_reason, e.failing_since, e.last_error, e.cursor,
          e.attempt, e.next_attempt_at, e.lease, e.lease_until, e.created_at, e.updated_at)
      .run();
}

std::optional<Endpoint> find(storage::Connection& c, const std::string& agent_id, const std::string& id) {
  auto q = c.query(std::string("SELECT ") + kColumns + " FROM webhook_endpoints WHERE id = ? AND agent_id = ?", id, agent_id);
  if (!q.next()) return std::nullopt;
  return read(q);
}

std::optional<Endpoint> by_id(storage::Connection& c, const std::string& id) {
  auto q = c.query(std::string("SELECT ") + kColumns + " FROM webhook_endpoints WHERE id = ?", id);
  if (!q.next()) return std::nullopt;
  return read(q);
}

std::vector<Endpoint> list(storage::Connection& c, const std::string& agent_id) {
  std::vector<Endpoint> out;
  auto q = c.query(std::string("SELECT ") + kColumns + " FROM webhook_endpoints WHERE agent_id = ? ORDER BY created_at, id",
                   agent_id);
  while (q.next()) out.push_back(read(q));
  return out;
}

void save(storage::Connection& c, const Endpoint& e) {
  c.query("UPDATE webhook_endpoints SET url = ?, event_types = ?, description = ?, secret = ?, previous_secret = ?, "
          "previous_secret_until = ?, enabled = ?, disabled_reason = ?, failing_since = ?, last_error = ?, cursor = ?, "
          "attempt = ?, next_attempt_at = ?, lease = ?, lease_until = ?, updated_at = ? WHERE id = ?",
          e.url, join_types(e.event_types), e.description, e.secret, e.previous_secret, e.previous_secret_until,
          e.enabled ? 1 : 0, e.disabled_reason, e.failing_since, e.last_error, e.cursor, e.attempt, e.next_attempt_at,
          e.lease, e.lease_until, e.updated_at, e.id)
      .run();
}

bool remove(storage::Connection& c, const std::string& agent_id, const std::string& id) {
  bool removed = c.query("DELETE FROM webhook_endpoints WHERE id = ? AND agent_id = ?", id, agent_id).run() == 1;
  if (removed) c.query("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", id).run();
  return removed;
}

long long log_head(storage::Connection& c, const std::string& agent_id) {
  auto q = c.query("SELECT last_event_id FROM agent_event_counters WHERE agent_id = ?", agent_id);
  return q.next() ? q.int64(0) : 0;
}

std::vector<std::string> due(storage::Connection& c, Millis now, long long limit) {
  std::vector<std::string> out;
  auto q = c.query(
      "SELECT e.id FROM webhook_endpoints e JOIN agent_event_counters n ON n.agent_id = e.agent_id "
      "WHERE e.enabled = 1 AND e.next_attempt_at <= ? AND e.lease_until < ? AND e.cursor < n.last_event_id "
      "ORDER BY e.next_attempt_at LIMIT ?",
      now, now, limit);
  while (q.next()) out.push_back(q.text(0));
  return out;
}

bool claim(storage::Connection& c, const std::string& id, const std::string& lease, Millis until, Millis now) {
  return c.query("UPDATE webhook_endpoints SET lease = ?, lease_until = ? WHERE id = ? AND enabled = 1 AND lease_until < ?",
                 lease, until, id, now)
             .run() == 1;
}

void record(storage::Connection& c, const Delivery& d) {
  c.query("INSERT INTO webhook_deliveries(endpoint_id, event_id, webhook_id, type, attempt, delivered, response_code, "
          "latency_us, error, attempted_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
          d.endpoint_id, d.event_id, d.webhook_id, d.type, d.attempt, d.delivered ? 1 : 0, d.response_code, d.latency_us,
          d.error, d.attempted_at)
      .run();
}

std::vector<Delivery> deliveries(storage::Connection& c, const std::string& endpoint_id, long long limit) {
  std::vector<Delivery> out;
  auto q = c.query("SELECT event_id, webhook_id, type, attempt, delivered, response_code, latency_us, error, attempted_at "
                   "FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY attempted_at DESC, event_id DESC, attempt DESC "
                   "LIMIT ?",
                   endpoint_id, limit);
  while (q.next()) {
    Delivery d;
    d.endpoint_id = endpoint_id;
    d.event_id = q.int64(0);
    d.webhook_id = q.text(1);
    d.type = q.text(2);
    d.attempt = static_cast<int>(q.int64(3));
    d.delivered = q.int64(4) != 0;
    d.response_code = q.opt_int64(5);
    d.latency_us = q.int64(6);
    d.error = q.opt_text(7);
    d.attempted_at = q.int64(8);
    out.push_back(std::move(d));
  }
  return out;
}

void trim_deliveries(storage::Connection& c, Millis cutoff) {
  c.query("DELETE FROM webhook_deliveries WHERE attempted_at < ?", cutoff).run();
}

}  // namespace al::notifier::webhook_store
