#pragma once
// The webhook routes (/api/agent/webhooks…): parse, validate, check the URL, and run one unit of
// work per write (with the Idempotency-Key record when the request has one).
#include "common/auth/api_key.hpp"
#include "common/clock/clock.hpp"
#include "common/http/router.hpp"
#include "common/storage/database.hpp"
#include "webhooks/dispatcher.hpp"

namespace al::notifier::webhooks {

struct ApiSettings {
  long long max_endpoints_per_agent = 10;
  Millis secret_rotation_grace_ms = 24LL * 3600 * 1000;
};

void add_webhook_routes(http::Router& router, storage::Database& db, const auth::ApiKeyAuthority& auth,
                        const Clock& clock, Dispatcher& dispatcher, ApiSettings settings);

}  // namespace al::notifier::webhooks
