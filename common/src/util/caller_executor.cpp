#include "common/util/caller_executor.hpp"

namespace al {
namespace {
thread_local const Post* this_thread_executor = nullptr;
}

CallerExecutor::CallerExecutor(Post post) : previous_(this_thread_executor), post_(std::move(post)) {
  this_thread_executor = &post_;
}

CallerExecutor::~CallerExecutor() { this_thread_executor = previous_; }

const Post* CallerExecutor::current() { return this_thread_executor; }

}  // namespace al
