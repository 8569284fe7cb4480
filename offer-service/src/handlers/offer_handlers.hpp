#pragma once
#include <chrono>
#include <functional>
#include <string>

#include "common/auth/api_key.hpp"
#include "common/http/router.hpp"
#include "service/offer_service.hpp"
#include "storage/offer_store.hpp"

namespace al::offer {

struct FeedbackLimits {
  int per_window = 10;
  std::chrono::milliseconds window{60'000};
};

void add_offer_routes(http::Router& router, OfferService& service, OfferStore& store,
                      const auth::ApiKeyAuthority& auth, const Clock& clock, std::function<std::string()> base_url,
                      FeedbackLimits feedback_limits = {});

}  // namespace al::offer
