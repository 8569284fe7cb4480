#include "common/service/module.hpp"

#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <string_view>

#include "common/json/json.hpp"

namespace al {

void AsioScheduler::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) fn();
  });
}

namespace {
// application/json or application/<anything>+json, parameters (charset) allowed, case-insensitive.
bool json_media_type(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  std::size_t start = type.find_first_not_of(" \t");
  type = start == std::string::npos ? "" : type.substr(start);
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  constexpr std::string_view kPrefix = "application/";
  if (!type.starts_with(kPrefix)) return false;
  std::string_view subtype = std::string_view(type).substr(kPrefix.size());
  return subtype == "json" || (subtype.size() > 5 && subtype.ends_with("+json") &&
                               subtype.find_first_of("/ \t") == std::string_view::npos);
}
}  // namespace

std::optional<boost::json::object> read_json_object(const http::Request& request,
                                                    http::Response& error) {
  // A body in another media type (a form, text) is refused rather than guessed at.
  if (!request.body.empty() && !json_media_type(request.header("content-type"))) {
    error = http::Response::error(415, "Content-Type must be application/json", "unsupported_media_type");
    return std::nullopt;
  }
  std::string parse_error;
  auto value = json::parse(request.body, parse_error);
  if (!value) {
    error = http::Response::error(400, request.body.empty() ? "Request body must be a JSON object" : parse_error,
                                  "invalid_json");
    return std::nullopt;
  }
  if (!value->is_object()) {
    error = http::Response::error(400, "Request body must be a JSON object", "invalid_json");
    return std::nullopt;
  }
  return std::move(value->get_object());
}

}  // namespace al
