#pragma once
#include <boost/beast/http.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/trace/trace_context.hpp"

namespace al::http {

namespace bhttp = boost::beast::http;
using Pairs = std::vector<std::pair<std::string, std::string>>;

struct Request {
  bhttp::verb method = bhttp::verb::get;
  std::string target;      // as received
  std::string path;        // the path as received (still percent-encoded), without the query
  Pairs query;             // decoded query parameters in order
  Pairs params;            // path parameters from the route pattern, percent-decoded
  bhttp::fields headers;
  std::string body;
  std::string request_id;  // from x-request-id when sane, else generated
  // This request's span (W3C traceparent): the incoming trace continued, or a new trace.
  std::string traceparent;
  std::string route;       // the matched route pattern (for metrics and logs)
  std::string remote_address;

  std::string_view header(std::string_view name) const;
  std::string_view param(std::string_view name) const;  // empty when absent
  std::optional<std::string_view> query_value(std::string_view name) const;
  trace::Cause cause() const { return {request_id, traceparent}; }
};

struct Response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  Pairs headers;

  static Response json(unsigned status, const boost::json::value& value);
  static Response no_content();
  // The one error shape: {"error": message, "code"?: code, "details"?: details}.
  static Response error(unsigned status, std::string_view message, std::string_view code = {},
                        boost::json::value details = nullptr);
  static Response text(unsigned status, std::string body, std::string content_type);
};

// Completes a request. Thread-safe; must be called exactly once.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(const Request&, Responder)>;

}  // namespace al::http
