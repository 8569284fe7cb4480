#include "common/service/query_params.hpp"

#include "common/service/result.hpp"
#include "common/util/ids.hpp"

namespace al {

QueryParams& QueryParams::on(std::string name, Reader reader) {
  readers_.emplace_back(std::move(name), std::move(reader));
  return *this;
}

QueryParams& QueryParams::limit(long long& out, long long max) {
  return on("limit", [&out, max](const std::string& value) -> std::optional<std::string> {
    long long n = 0;
    if (!parse_positive_int64(value, n) || n > max) return "must be 1.." + std::to_string(max);
    out = n;
    return std::nullopt;
  });
}

QueryParams& QueryParams::limit(int& out, int max) {
  return on("limit", [&out, max](const std::string& value) -> std::optional<std::string> {
    long long n = 0;
    if (!parse_positive_int64(value, n) || n > max) return "must be 1.." + std::to_string(max);
    out = static_cast<int>(n);
    return std::nullopt;
  });
}

QueryParams& QueryParams::cursor(long long& out, std::string name) {
  return on(std::move(name), [&out](const std::string& value) -> std::optional<std::string> {
    long long n = 0;
    if (!parse_positive_int64(value, n)) return std::string("is not a cursor from a previous page");
    out = n;
    return std::nullopt;
  });
}

QueryParams& QueryParams::cursor(std::optional<long long>& out, std::string name) {
  return on(std::move(name), [&out](const std::string& value) -> std::optional<std::string> {
    long long n = 0;
    if (!parse_positive_int64(value, n)) return std::string("is not a cursor from a previous page");
    out = n;
    return std::nullopt;
  });
}

std::vector<json::FieldError> QueryParams::read(const http::Request& request) const {
  std::vector<json::FieldError> errors;
  for (const auto& [key, value] : request.query) {
    const Reader* reader = nullptr;
    for (const auto& [name, r] : readers_)
      if (name == key) reader = &r;
    if (!reader) {
      errors.push_back({valid_utf8_prefix(key, 64), "unknown query parameter"});
      continue;
    }
    if (auto problem = (*reader)(value)) errors.push_back({key, std::move(*problem)});
  }
  return errors;
}

bool QueryParams::read(const http::Request& request, const http::Responder& reply) const {
  auto errors = read(request);
  if (errors.empty()) return true;
  reply(validation_error(errors));
  return false;
}

}  // namespace al
