#pragma once
#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "domain/offer.hpp"

namespace al::offer {

enum class Viewer { Requester, Provider };

// An offer as a member sees it, with seed 000's offer_response_next_step.
boost::json::object offer_to_json(const Offer& offer, Viewer viewer, std::string_view base_url);
boost::json::object offer_response_next_step(const Offer& offer, Viewer viewer, std::string_view base_url);
// What events carry (no next step).
boost::json::object offer_event_json(const Offer& offer);
boost::json::object contract_event_json(const Contract& contract);
// The public monitor: no buyer, provider, thread or offer id.
boost::json::object contract_monitor_json(const Contract& contract, std::string_view base_url);

}  // namespace al::offer
