#include "common/service/key_revocations.hpp"

#include "common/log/log.hpp"
#include "common/storage/key_revocation_store.hpp"
#include "common/util/time_format.hpp"

namespace al::key_revocations {
namespace {
// A row committed this long after it was stamped is still found by the incremental poll; the
// minutely full load catches anything later still.
constexpr Millis kPollOverlapMs = 10'000;
constexpr Millis kFullLoadEveryMs = 60'000;
}  // namespace

std::optional<auth::KeyRevocations::Revocation> from_event(const events::CloudEvent& event) {
  if (event.type != kRevokedEvent) return std::nullopt;
  auto text = [&](const char* field) -> std::string {
    auto* v = event.data.if_contains(field);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto effective_at = parse_rfc3339(text("effective_at"));
  std::string key_id = text("key_id"), agent_id = text("agent_id");
  if (!effective_at || key_id.empty() || agent_id.empty()) {
    log::error("agent.key_revoked event without key_id, agent_id or effective_at", {{"event_id", event.id}});
    return std::nullopt;
  }
  return auth::KeyRevocations::Revocation{agent_id, key_id, *effective_at};
}

Sync::Sync(storage::Database& db, auth::KeyRevocations& revocations, const Clock& clock)
    : db_(db), revocations_(revocations), clock_(clock) {}

std::function<void()> Sync::record(storage::Connection& c, const auth::KeyRevocations::Revocation& revocation) {
  storage::key_revocations::record(
      c, {revocation.agent_id, revocation.key_id, revocation.effective_at, clock_.now_ms()});
  return [this, revocation] { revocations_.revoke(revocation); };
}

std::function<void()> Sync::apply(storage::Connection& c, const events::CloudEvent& event) {
  auto revocation = from_event(event);
  if (!revocation) return {};
  return record(c, *revocation);
}

void Sync::poll() {
  std::lock_guard lock(poll_mutex_);
  Millis now = clock_.now_ms();
  bool full = now - last_full_load_ >= kFullLoadEveryMs;
  long long since = full ? 0 : std::max<long long>(0, polled_upto_ - kPollOverlapMs);
  auto rows = db_.read([&](storage::Connection& c) { return storage::key_revocations::recorded_since(c, since); });
  for (const auto& row : rows) {
    revocations_.revoke({row.agent_id, row.key_id, row.effective_at});
    polled_upto_ = std::max(polled_upto_, row.recorded_at);
  }
  if (full) last_full_load_ = now;
}

void Sync::load_all() {
  {
    std::lock_guard lock(poll_mutex_);
    last_full_load_ = 0;
  }
  poll();
}

}  // namespace al::key_revocations
