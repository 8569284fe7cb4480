#pragma once
// Idempotency-Key on the writes of a service, with Stripe's semantics, scoped per agent:
//   - same key, same request (method, path, canonical JSON body) → the stored status and body are
//     replayed with `Idempotent-Replayed: true`;
//   - same key, another request → 422 `idempotency_key_reused`;
//   - same key while the first request is still running → 409 `idempotency_key_in_use`.
// The record is taken before the request runs; the unit of work that makes the request's effect
// marks it committed in the same transaction (through the outbox append, which every effect
// makes), so a crash can never leave an effect without its record or a record claiming an effect
// that did not happen. A request that made no effect (a validation error, a refusal, the database
// down) frees the key again. Records live in the service's own database, so replicas share them.
#include <memory>
#include <string>

#include "common/auth/api_key.hpp"
#include "common/clock/clock.hpp"
#include "common/http/router.hpp"
#include "common/storage/database.hpp"

namespace al::idempotency {

struct Options {
  long long retention_ms = 24LL * 3600 * 1000;  // how long a key is remembered (at least)
  // A taken key whose request neither committed nor gave up within this time (its process
  // died) may be taken again by a retry.
  long long lock_ms = 60'000;
};

inline constexpr std::size_t kMaxKeyLength = 255;

// Inside the unit of work that appends `event_source`'s event for `request_id`: marks the
// Idempotency-Key record of that request (if it has one) committed. Called by the outbox append.
void note_effect(storage::Connection& connection, const std::string& request_id, const std::string& event_source);

class Guard {
 public:
  // `service` is the source of the events this service's effects publish (e.g. "job-service").
  Guard(storage::Database& db, const auth::ApiKeyAuthority& auth, const Clock& clock, std::string service,
        Options options);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  // For Router::DecoratorScope: guards POST, PATCH and DELETE routes.
  http::Router::Decorator decorator();
  // Forgets records older than the retention (run periodically, e.g. by the service's sweeps).
  void purge();

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// The hash a request is compared by: method, path and the body (JSON canonicalised: object keys
// sorted, insignificant whitespace dropped; other bodies byte for byte).
std::string request_fingerprint(std::string_view method, std::string_view path, std::string_view body);

}  // namespace al::idempotency
