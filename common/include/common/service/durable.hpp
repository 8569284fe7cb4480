#pragma once
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "common/log/log.hpp"
#include "common/service/result.hpp"
#include "common/service/verdict.hpp"
#include "common/storage/database.hpp"

namespace al {

// Said to a client whose write could not reach the database (503, with Retry-After).
inline constexpr const char* kDatabaseUnavailable = "The database cannot be reached right now; retry shortly";

// True when `error` is the database being out of reach (down, restarting, connection lost):
// nothing was written, and the same request may succeed in a moment.
inline bool database_unavailable(const std::exception& error) {
  auto* storage_error = dynamic_cast<const storage::StorageError*>(&error);
  return storage_error && storage_error->kind == storage::ErrorKind::Unavailable;
}

// The answer to a write whose transaction was rolled back (logged under `what`): 503 unavailable
// with Retry-After when the database could not be reached, else 500.
inline http::Response failed_write(std::exception_ptr error, std::string_view what) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log::error(what, {{"what", e.what()}});
    if (database_unavailable(e)) return refusal(ResultKind::Unavailable, kDatabaseUnavailable);
  } catch (...) {
    log::error(what);
  }
  return refusal(ResultKind::Internal, "Internal error");
}

// The `done` of a write transaction for a use case: hands `*result` to `reply` once the
// transaction is durable; when it was rolled back, `failed` (the caller's internal-error result,
// logged under `what`) — or, when the database could not be reached, `failed` turned into an
// Unavailable result (503 with Retry-After: the client retries).
template <class Result>
std::function<void(std::exception_ptr)> reply_when_durable(std::shared_ptr<Result> result,
                                                           std::function<void(Result)> reply, Result failed,
                                                           std::string what) {
  return [result, reply = std::move(reply), failed = std::move(failed), what = std::move(what)](std::exception_ptr error) {
    if (error) {
      bool unavailable = false;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log::error(what, {{"what", e.what()}});
        unavailable = database_unavailable(e);
      }
      Result answer = failed;
      if (unavailable) {
        answer.kind = ResultKind::Unavailable;
        answer.message = kDatabaseUnavailable;
        if constexpr (requires { answer.code; }) answer.code = "unavailable";
      }
      reply(std::move(answer));
      return;
    }
    reply(std::move(*result));
  };
}

}  // namespace al
