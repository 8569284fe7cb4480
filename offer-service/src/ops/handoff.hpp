#pragma once
#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "common/clock/clock.hpp"
#include "storage/offer_store.hpp"

namespace al::offer {

// The funnel stage where the most of the window's traffic stopped: "discovery" when no thread was
// opened at all, else the step after the largest drop (quote_lock, offer_creation,
// offer_acceptance, payment_submission, payment_confirmation), "none" when nothing dropped.
std::string leading_dropoff(const OpsCounts& counts);

// GET /api/ops/quote-to-offer-handoff: seed 000's document, field for field, every figure from
// live state (aggregates only, never an id). `window_label` is e.g. "24h".
boost::json::object quote_to_offer_handoff(const OpsCounts& counts, std::string_view window_label,
                                           std::string_view base_url, Millis now);

// GET /api/ops/traffic-summary: the window's funnel counts and where most traffic stopped.
boost::json::object traffic_summary(const OpsCounts& counts, std::string_view window_label, Millis now);

// GET /api/ops/first-payment-handoff: accepted contracts waiting for their first verified payment.
boost::json::object first_payment_handoff(const OpsCounts& counts, std::string_view window_label,
                                          std::string_view base_url, Millis now);

// GET /api/ops/session-journeys: how far the window's threads got, and how long each step took.
boost::json::object session_journeys(const std::vector<Journey>& journeys, std::string_view window_label, Millis now);

// "24h", "7d" → milliseconds (1h..30d); nullopt otherwise.
std::optional<Millis> parse_window(std::string_view text);

}  // namespace al::offer
