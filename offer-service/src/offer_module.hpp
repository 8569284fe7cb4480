#pragma once
#include <memory>
#include <vector>

#include "common/config/config.hpp"
#include "common/service/module.hpp"

namespace al::offer {

// offer-service: offers from locked quotes, the contracts accepted offers create.
std::vector<ConfigEntry> offer_config_entries();
std::unique_ptr<Module> make_offer_module(Runtime& runtime);

}  // namespace al::offer
