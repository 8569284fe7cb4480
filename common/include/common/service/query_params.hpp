#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/http/message.hpp"
#include "common/json/json.hpp"

namespace al {

// Reads the query parameters of a list route, the same way on every route: each name must be
// declared (anything else is an "unknown query parameter"), `limit` and `cursor` are the
// pagination pair every list shares, and every problem is collected in the order of the query,
// then answered as one 400 validation_error.
class QueryParams {
 public:
  // Reads one value; returns the problem with it, or nullopt when it was taken.
  using Reader = std::function<std::optional<std::string>(const std::string& value)>;

  QueryParams& on(std::string name, Reader reader);
  // 1..max.
  QueryParams& limit(int& out, int max = 100);
  QueryParams& limit(long long& out, long long max);
  // An opaque positive integer handed out by a previous page.
  QueryParams& cursor(long long& out, std::string name = "cursor");
  QueryParams& cursor(std::optional<long long>& out, std::string name = "cursor");
  // One of `choices` (value → what it sets), e.g. mode=incoming|outgoing.
  template <class T>
  QueryParams& one_of(std::string name, std::vector<std::pair<std::string, T>> choices, T& out, std::string problem) {
    return on(std::move(name), [choices = std::move(choices), &out, problem = std::move(problem)](const std::string& value)
                                   -> std::optional<std::string> {
      for (const auto& [text, choice] : choices)
        if (value == text) {
          out = choice;
          return std::nullopt;
        }
      return problem;
    });
  }
  // A non-empty comma list, each item read by `parse` (nullopt: not a valid item).
  template <class T, class Parse>
  QueryParams& comma_list(std::string name, Parse parse, std::vector<T>& out, std::string problem) {
    return on(std::move(name), [parse, &out, problem = std::move(problem)](const std::string& value) -> std::optional<std::string> {
      if (value.empty()) return std::string("must not be empty");
      std::string_view rest = value;
      while (!rest.empty()) {
        auto comma = rest.find(',');
        std::optional<T> item = parse(rest.substr(0, comma));
        if (!item) return problem;
        out.push_back(*item);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      return std::nullopt;
    });
  }

  // Reads `request`'s query; every problem found, in order (empty: all taken).
  std::vector<json::FieldError> read(const http::Request& request) const;
  // Reads it, and on any problem answers 400 through `reply`; true when all was taken.
  bool read(const http::Request& request, const http::Responder& reply) const;

 private:
  std::vector<std::pair<std::string, Reader>> readers_;
};

}  // namespace al
