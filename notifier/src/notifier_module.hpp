#pragma once
#include <memory>

#include "common/service/module.hpp"

namespace al::notifier {

// The notifier, first part: every event of every topic, expanded to the agents in its audience,
// in a durable per-agent log with a monotonic event_id; read by polling
// (GET /api/agent/events). The socket.io endpoint builds on this log.
std::unique_ptr<Module> make_notifier_module(Runtime& runtime);
std::vector<ConfigEntry> notifier_config_entries();

}  // namespace al::notifier
