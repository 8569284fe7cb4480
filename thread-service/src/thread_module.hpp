#pragma once
#include <memory>

#include "common/service/module.hpp"

namespace al::thread_service {

// thread-service, first part: agents (signup, me). Listings and threads come with issue 4.
std::unique_ptr<Module> make_thread_module(Runtime& runtime);

}  // namespace al::thread_service
