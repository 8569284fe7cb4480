#pragma once
#include "common/auth/api_key.hpp"
#include "common/http/router.hpp"
#include "service/job_service.hpp"
#include "storage/job_store.hpp"

namespace al::job {

// HTTP mapping of seed 001 and the client side: parse, validate, call one use case, map the result.
void add_job_routes(http::Router& router, JobService& service, JobStore& store,
                    const auth::ApiKeyAuthority& auth, const Clock& clock);

}  // namespace al::job
