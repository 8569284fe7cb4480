#include "storage/key_store.hpp"

namespace al::thread {
namespace {
keys::Key key_from(storage::Query& q) {
  return {q.text(0), q.text(1), q.text(2), q.int64(3), q.opt_text(4), q.opt_int64(5), q.opt_int64(6)};
}
constexpr const char* kKeyColumns = "key_id, agent_id, fingerprint, created_at, created_by, last_used_at, expires_at";
}  // namespace

std::optional<long long> KeyTx::lock_agent(const std::string& agent_id) {
  auto q = c_.query(std::string("SELECT event_seq FROM agents WHERE agent_id = ?") + c_.for_update(), agent_id);
  if (!q.next()) return std::nullopt;
  return q.int64(0);
}

void KeyTx::set_event_seq(const std::string& agent_id, long long seq) {
  c_.query("UPDATE agents SET event_seq = ? WHERE agent_id = ?", seq, agent_id).run();
}

std::vector<keys::Key> KeyTx::keys(const std::string& agent_id) {
  auto q = c_.query(std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE agent_id = ? ORDER BY created_at, key_id",
                    agent_id);
  std::vector<keys::Key> out;
  while (q.next()) out.push_back(key_from(q));
  return out;
}

void KeyTx::insert(const keys::Key& k) {
  c_.query("INSERT INTO api_keys (key_id, agent_id, fingerprint, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
           k.key_id, k.agent_id, k.fingerprint, k.created_at, k.created_by)
      .run();
}

void KeyTx::set_expiry(const std::string& key_id, Millis expires_at, std::optional<Millis> revoked_at) {
  c_.query("UPDATE api_keys SET expires_at = ?, revoked_at = ? WHERE key_id = ?", expires_at, revoked_at, key_id).run();
}

std::vector<keys::Key> load_keys(storage::Database& db, const std::string& agent_id) {
  return db.read([&](storage::Connection& c) { return KeyTx(c).keys(agent_id); });
}

void record_last_used(storage::Connection& c, const std::unordered_map<std::string, Millis>& last_used) {
  for (const auto& [key_id, at] : last_used)
    c.query("UPDATE api_keys SET last_used_at = ? WHERE key_id = ? AND (last_used_at IS NULL OR last_used_at < ?)", at,
            key_id, at)
        .run();
}

}  // namespace al::thread
