#pragma once
#include <functional>
#include <string>

#include "common/auth/api_key.hpp"
#include "common/http/router.hpp"
#include "handlers/row_cache.hpp"
#include "service/thread_service.hpp"
#include "storage/thread_store.hpp"

namespace al::thread {

// The public base URL (no trailing slash) the next-step curls are built from.
using BaseUrl = std::function<std::string()>;

void add_service_routes(http::Router& router, ThreadService& service, ThreadStore& store,
                        const auth::ApiKeyAuthority& auth, BaseUrl base_url);
void add_thread_routes(http::Router& router, ThreadService& service, ThreadStore& store,
                       const auth::ApiKeyAuthority& auth, RowCache& rows);

}  // namespace al::thread
