#pragma once
// The one mapping of a use case's refusal (verdict.hpp) onto an HTTP status and error code.
#include <boost/json/value.hpp>
#include <string_view>
#include <vector>

#include "common/http/message.hpp"
#include "common/json/json.hpp"
#include "common/service/verdict.hpp"

namespace al {

// The error response of a use case that did not succeed: 403 forbidden, 404 not_found,
// 409 conflict, 400 validation_error, 422 unprocessable, 503 unavailable, 500 internal (whose
// message is never shown). `code` replaces the kind's own code when given.
http::Response refusal(ResultKind kind, std::string_view message, std::string_view code = {},
                       boost::json::value details = nullptr);

// 400 validation_error with every field's problem.
http::Response validation_error(const std::vector<json::FieldError>& errors);
inline http::Response validation_error(const json::ObjectReader& reader) { return validation_error(reader.errors()); }

}  // namespace al
