#pragma once
#include "common/auth/api_key.hpp"
#include "common/http/router.hpp"
#include "service/key_service.hpp"

namespace al::thread {

// GET /api/agent/keys and DELETE /api/agent/keys/{key_id}.
void add_key_routes(http::Router& router, KeyService& keys, const auth::ApiKeyAuthority& auth);
// POST /api/agent/keys: added outside the Idempotency-Key decorator, since its response holds a
// key shown once, which no server keeps (docs/security.md).
void add_key_creation_route(http::Router& router, KeyService& keys, const auth::ApiKeyAuthority& auth);

}  // namespace al::thread
