#pragma once
#include <memory>

#include "common/service/module.hpp"

namespace al::job {

// The job service as a hostable module: its database, outbox relay, agent projection consumer,
// expiry sweeper and routes.
std::unique_ptr<Module> make_job_module(Runtime& runtime);

std::vector<ConfigEntry> job_config_entries();

}  // namespace al::job
