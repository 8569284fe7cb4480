#include "common/service/module.hpp"

#include <boost/asio/steady_timer.hpp>

#include "common/json/json.hpp"

namespace al {

void AsioScheduler::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io_, delay);
  timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code& ec) {
    if (!ec) fn();
  });
}

std::optional<boost::json::object> read_json_object(const http::Request& request,
                                                    http::Response& error) {
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
