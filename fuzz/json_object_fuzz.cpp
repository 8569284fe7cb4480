// The request body reader every POST/PATCH handler starts with: al::read_json_object
// (common/src/service/module.cpp: al::json::parse with its depth limit and exact-number rule),
// then al::json::ObjectReader over the fields of two real bodies (POST /api/agents/jobs and
// POST /api/agent/services with its nested price), and the 400 al::validation_error response.
//
// Input: the request body (sent as Content-Type: application/json).
#include <cstdint>
#include <string>

#include "common/json/json.hpp"
#include "common/money/decimal.hpp"
#include "common/service/module.hpp"
#include "common/service/result.hpp"
#include "fuzz_check.hpp"

namespace {
namespace bj = boost::json;
using al::fuzz::shown;

// A response body must be JSON that any client parses: valid UTF-8 included (al::json::parse
// validates it, as Boost.JSON does).
bj::object response_object(const al::http::Response& response) {
  std::string error;
  auto value = al::json::parse(response.body, error);
  FUZZ_CHECK(value && value->is_object(), "response body is not a JSON object: " + shown(response.body) + " " + error);
  return value->as_object();
}

void check_decimal(const std::optional<al::Decimal>& d, bool allow_negative) {
  if (!d) return;
  FUZZ_CHECK(allow_negative || !d->is_negative());
  auto again = al::Decimal::parse(d->to_string());
  FUZZ_CHECK(again && *again == *d, "decimal " + d->to_string() + " does not read back");
}

void check_string(const std::optional<std::string>& s, std::size_t min, std::size_t max) {
  if (s) FUZZ_CHECK(s->size() >= min && s->size() <= max);
}

// The fields of POST /api/agents/jobs (job-service/src/handlers/job_handlers.cpp).
void read_job_body(const bj::object& body) {
  al::json::ObjectReader r(body, {"providerId", "serviceRequirement", "budget", "tokenAddress", "expiredAt",
                                  "evaluatorId", "clientOperationId"});
  check_string(r.required_string("providerId", 1, 64), 1, 64);
  check_string(r.required_string("serviceRequirement", 1, 10000), 1, 10000);
  check_decimal(r.required_decimal("budget"), false);
  check_string(r.required_string("tokenAddress", 42, 42), 42, 42);
  check_string(r.optional_string("evaluatorId", 64), 0, 64);
  check_string(r.optional_string("clientOperationId", 128), 0, 128);
  check_string(r.optional_string("expiredAt", 64), 0, 64);
  FUZZ_CHECK(r.ok() == r.errors().empty());
  if (!r.ok()) {
    auto response = al::validation_error(r);
    FUZZ_CHECK(response.status == 400);
    auto object = response_object(response);
    FUZZ_CHECK(object.at("details").as_array().size() == r.errors().size());
  }
}

// The fields of POST /api/agent/services (thread-service/src/handlers/thread_handlers.cpp).
void read_service_body(const bj::object& body) {
  al::json::ObjectReader r(body, {"title", "description", "deliverable", "price", "timeline", "tags", "active"});
  check_string(r.required_string("title", 1, 200), 1, 200);
  check_string(r.optional_string("description", 5000), 0, 5000);
  r.optional_bool("active");
  if (const bj::object* price = r.optional_object("price")) {
    std::size_t before = r.errors().size();
    auto p = r.nested(*price, "price", {"amount", "token", "network"});
    check_decimal(p.optional_decimal("amount"), false);
    check_decimal(p.optional_decimal("amount", true), true);
    check_string(p.required_string("token", 1, 64), 1, 64);
    check_string(p.optional_string("network", 64), 0, 64);
    // The nested reader reports into the same list, each field with the "price." prefix.
    FUZZ_CHECK(p.errors().size() == r.errors().size());
    for (std::size_t i = before; i < r.errors().size(); ++i)
      FUZZ_CHECK(r.errors()[i].field.rfind("price.", 0) == 0, "nested error field " + shown(r.errors()[i].field));
  }
  if (auto n = r.optional_int("timeline", 1, 365)) FUZZ_CHECK(*n >= 1 && *n <= 365);
  FUZZ_CHECK(r.ok() == r.errors().empty());
  if (!r.ok()) response_object(al::validation_error(r));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  al::http::Request request;
  request.headers.set(boost::beast::http::field::content_type, "application/json");
  request.body.assign(reinterpret_cast<const char*>(data), size);
  al::http::Response error;
  auto body = al::read_json_object(request, error);
  if (!body) {
    FUZZ_CHECK(error.status == 400);
    auto object = response_object(error);
    FUZZ_CHECK(object.at("code") == "invalid_json");
    return 0;
  }

  // What the service stores or echoes reads back as the same object (no number changes).
  std::string text = al::json::serialize(*body);
  std::string parse_error;
  auto again = al::json::parse(text, parse_error);
  FUZZ_CHECK(again && again->is_object() && again->as_object() == *body,
             "serialized " + shown(text) + " does not read back: " + parse_error);

  read_job_body(*body);
  read_service_body(*body);
  return 0;
}
