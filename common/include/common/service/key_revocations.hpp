#pragma once
// How a revoked API key stops working everywhere (docs/security.md, "Keys"): thread-service
// records the revocation in its own table in the revoking transaction and publishes
// `agent.key_revoked`; every other service consumes the event into its own table. Each replica
// reads its table into the process's revocation list (at start, then every poll), and applies
// what its own transactions record as soon as they commit. Authentication checks that list.
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>

#include "common/auth/api_key.hpp"
#include "common/clock/clock.hpp"
#include "common/events/cloud_event.hpp"
#include "common/storage/database.hpp"

namespace al::key_revocations {

inline constexpr const char* kRevokedEvent = "agent.key_revoked";
inline constexpr const char* kCreatedEvent = "agent.key_created";
// How often each service reads its table (what other replicas recorded).
inline constexpr std::chrono::milliseconds kPollInterval{200};

// The revocation an `agent.key_revoked` event announces (nullopt for any other event).
std::optional<auth::KeyRevocations::Revocation> from_event(const events::CloudEvent& event);

class Sync {
 public:
  Sync(storage::Database& db, auth::KeyRevocations& revocations, const Clock& clock);

  // Inside the caller's transaction: records the revocation; returns what makes it known to this
  // process once that transaction has committed.
  std::function<void()> record(storage::Connection& c, const auth::KeyRevocations::Revocation& revocation);
  // Inside a consumer's transaction: records what an `agent.key_revoked` event says (nothing for
  // other events; an empty function then).
  std::function<void()> apply(storage::Connection& c, const events::CloudEvent& event);
  // Reads what any replica recorded since the previous poll (with an overlap for transactions that
  // committed late), and everything once a minute.
  void poll();
  void load_all();

 private:
  storage::Database& db_;
  auth::KeyRevocations& revocations_;
  const Clock& clock_;
  std::mutex poll_mutex_;
  long long polled_upto_ = 0;  // the highest recorded_at seen
  Millis last_full_load_ = 0;
};

}  // namespace al::key_revocations
