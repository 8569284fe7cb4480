#include "common/service/result.hpp"

namespace al {

ResultKind kind_of(Verdict verdict) {
  switch (verdict) {
    case Verdict::Applied: return ResultKind::Ok;
    case Verdict::Unchanged: return ResultKind::Unchanged;
    case Verdict::Forbidden: return ResultKind::Forbidden;
    case Verdict::Conflict: return ResultKind::Conflict;
    case Verdict::NotFound: return ResultKind::NotFound;
    case Verdict::Invalid: return ResultKind::Invalid;
    case Verdict::Unprocessable: return ResultKind::Unprocessable;
  }
  return ResultKind::Internal;
}

bool succeeded(ResultKind kind) {
  return kind == ResultKind::Ok || kind == ResultKind::Created || kind == ResultKind::Unchanged;
}

http::Response refusal(ResultKind kind, std::string_view message, std::string_view code, boost::json::value details) {
  auto with = [&](unsigned status, std::string_view own_code) {
    return http::Response::error(status, message, code.empty() ? own_code : code, std::move(details));
  };
  switch (kind) {
    case ResultKind::Forbidden: return with(403, "forbidden");
    case ResultKind::NotFound: return with(404, "not_found");
    case ResultKind::Conflict: return with(409, "conflict");
    case ResultKind::Invalid: return with(400, "validation_error");
    case ResultKind::Unprocessable: return with(422, "unprocessable");
    case ResultKind::Unavailable: {
      auto r = with(503, "unavailable");
      r.headers.emplace_back("retry-after", "1");  // a database or chain outage: retry shortly
      return r;
    }
    case ResultKind::Ok:
    case ResultKind::Created:
    case ResultKind::Unchanged:
    case ResultKind::Internal: break;
  }
  return http::Response::error(500, "Internal error", "internal");
}

http::Response validation_error(const std::vector<json::FieldError>& errors) {
  return http::Response::error(400, "Validation error", "validation_error", json::errors_to_json(errors));
}

}  // namespace al
