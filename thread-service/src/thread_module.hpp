#pragma once
#include <memory>
#include <vector>

#include "common/config/config.hpp"
#include "common/service/module.hpp"

namespace al::thread_service {

// thread-service: agents (signup, me), service listings, negotiation threads up to the locked quote.
std::vector<ConfigEntry> thread_config_entries();
std::unique_ptr<Module> make_thread_module(Runtime& runtime);

}  // namespace al::thread_service
