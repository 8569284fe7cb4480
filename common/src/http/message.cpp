#include "common/http/message.hpp"

#include <boost/json/serialize.hpp>

namespace al::http {

std::string_view Request::header(std::string_view name) const {
  auto it = headers.find(name);
  if (it == headers.end()) return {};
  return it->value();
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::optional<std::string_view> Request::query_value(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return std::string_view(v);
  return std::nullopt;
}

Response Response::json(unsigned status, const boost::json::value& value) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(value);
  return r;
}

Response Response::no_content() {
  Response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Response Response::error(unsigned status, std::string_view message, std::string_view code,
                         boost::json::value details) {
  boost::json::object body;
  body["error"] = message;
  if (!code.empty()) body["code"] = code;
  if (!details.is_null()) body["details"] = std::move(details);
  return json(status, body);
}

Response Response::text(unsigned status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

}  // namespace al::http
