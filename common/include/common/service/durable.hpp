#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "common/log/log.hpp"

namespace al {

// The `done` of a write transaction for a use case: hands `*result` to `reply` once the
// transaction is durable, or `failed` (the caller's internal-error result) when it was rolled
// back, logging why under `what`.
template <class Result>
std::function<void(std::exception_ptr)> reply_when_durable(std::shared_ptr<Result> result,
                                                           std::function<void(Result)> reply, Result failed,
                                                           std::string what) {
  return [result, reply = std::move(reply), failed = std::move(failed), what = std::move(what)](std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log::error(what, {{"what", e.what()}});
      }
      reply(failed);
      return;
    }
    reply(std::move(*result));
  };
}

}  // namespace al
