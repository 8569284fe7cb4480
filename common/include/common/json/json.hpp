#pragma once
#include <boost/json.hpp>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/money/decimal.hpp"

namespace al::json {

namespace bj = boost::json;

// Parses untrusted text. Returns nullopt and a human-readable reason on malformed input, nesting
// deeper than max_depth, an object with the same key twice (at any depth; keys compare unescaped)
// or a number a double cannot carry exactly.
std::optional<bj::value> parse(std::string_view text, std::string& error, std::size_t max_depth = 32);

std::string serialize(const bj::value& value);

struct FieldError {
  std::string field;
  std::string message;
};

// Reads fields of a request object, collecting every problem instead of stopping at the first one.
// Unknown fields are errors (the API is strict so that typos do not silently drop data). A JSON
// null for an optional field counts as absent.
class ObjectReader {
 public:
  ObjectReader(const bj::object& object, std::initializer_list<std::string_view> allowed_fields,
               std::string prefix = "");

  std::optional<std::string> required_string(std::string_view name, std::size_t min_length = 1,
                                             std::size_t max_length = 10000);
  std::optional<std::string> optional_string(std::string_view name, std::size_t max_length = 10000);
  std::optional<bool> required_bool(std::string_view name);
  std::optional<bool> optional_bool(std::string_view name);
  // Accepts a JSON string ("10.50") or a JSON number with <= 15 significant digits.
  std::optional<Decimal> required_decimal(std::string_view name, bool allow_negative = false);
  std::optional<Decimal> optional_decimal(std::string_view name, bool allow_negative = false);
  std::optional<long long> optional_int(std::string_view name, long long min, long long max);
  const bj::object* optional_object(std::string_view name);
  const bj::value* present(std::string_view name) const;  // nullptr when absent or null

  void fail(std::string_view field, std::string message);
  bool ok() const { return errors_->empty(); }
  const std::vector<FieldError>& errors() const { return *errors_; }
  // A reader for a nested object that reports into the same error list.
  ObjectReader nested(const bj::object& object, std::string_view name,
                      std::initializer_list<std::string_view> allowed_fields);

 private:
  ObjectReader(const bj::object& object, std::initializer_list<std::string_view> allowed,
               std::string prefix, std::shared_ptr<std::vector<FieldError>> errors);
  std::string path(std::string_view name) const;
  std::optional<Decimal> decimal_value(std::string_view name, const bj::value& v, bool allow_negative);

  const bj::object& object_;
  std::string prefix_;
  std::shared_ptr<std::vector<FieldError>> errors_;
};

bj::array errors_to_json(const std::vector<FieldError>& errors);

}  // namespace al::json
