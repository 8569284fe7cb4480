#include "common/json/json.hpp"

#include <algorithm>

namespace al::json {

std::optional<bj::value> parse(std::string_view text, std::string& error, std::size_t max_depth) {
  bj::parse_options options;
  options.max_depth = max_depth;
  bj::error_code ec;
  bj::value value = bj::parse(text, ec, {}, options);
  if (ec) {
    error = "Malformed JSON: " + ec.message();
    return std::nullopt;
  }
  return value;
}

std::string serialize(const bj::value& value) { return bj::serialize(value); }

ObjectReader::ObjectReader(const bj::object& object,
                           std::initializer_list<std::string_view> allowed, std::string prefix)
    : ObjectReader(object, allowed, std::move(prefix),
                   std::make_shared<std::vector<FieldError>>()) {}

ObjectReader::ObjectReader(const bj::object& object,
                           std::initializer_list<std::string_view> allowed, std::string prefix,
                           std::shared_ptr<std::vector<FieldError>> errors)
    : object_(object), prefix_(std::move(prefix)), errors_(std::move(errors)) {
  for (const auto& field : object_) {
    std::string_view key = field.key();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string shown(key.substr(0, 64));
      fail(shown, "unknown field");
    }
  }
}

ObjectReader ObjectReader::nested(const bj::object& object, std::string_view name,
                                  std::initializer_list<std::string_view> allowed) {
  return ObjectReader(object, allowed, path(name) + ".", errors_);
}

std::string ObjectReader::path(std::string_view name) const { return prefix_ + std::string(name); }

void ObjectReader::fail(std::string_view field, std::string message) {
  errors_->push_back({prefix_ + std::string(field), std::move(message)});
}

const bj::value* ObjectReader::present(std::string_view name) const {
  const bj::value* v = object_.if_contains(name);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

std::optional<std::string> ObjectReader::required_string(std::string_view name,
                                                         std::size_t min_length,
                                                         std::size_t max_length) {
  const bj::value* v = present(name);
  if (v == nullptr) {
    fail(name, "is required");
    return std::nullopt;
  }
  if (!v->is_string()) {
    fail(name, "must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_string();
  if (s.size() < min_length) {
    fail(name, min_length == 1 ? "must not be empty"
                               : "must be at least " + std::to_string(min_length) + " characters");
    return std::nullopt;
  }
  if (s.size() > max_length) {
    fail(name, "must be at most " + std::to_string(max_length) + " characters");
    return std::nullopt;
  }
  return std::string(s);
}

std::optional<std::string> ObjectReader::optional_string(std::string_view name,
                                                         std::size_t max_length) {
  if (present(name) == nullptr) return std::nullopt;
  return required_string(name, 0, max_length);
}

std::optional<bool> ObjectReader::required_bool(std::string_view name) {
  const bj::value* v = present(name);
  if (v == nullptr) {
    fail(name, "is required");
    return std::nullopt;
  }
  if (!v->is_bool()) {
    fail(name, "must be a boolean");
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<bool> ObjectReader::optional_bool(std::string_view name) {
  if (present(name) == nullptr) return std::nullopt;
  return required_bool(name);
}

std::optional<Decimal> ObjectReader::decimal_value(std::string_view name, const bj::value& v,
                                                   bool allow_negative) {
  std::optional<Decimal> d;
  if (v.is_string()) {
    d = Decimal::parse(v.get_string());
    if (!d) {
      fail(name, "must be a decimal amount such as \"10.50\" (at most 18 fractional digits)");
      return std::nullopt;
    }
  } else if (v.is_int64()) {
    d = Decimal::from_int(v.get_int64());
  } else if (v.is_uint64()) {
    d = Decimal::parse(std::to_string(v.get_uint64()));
  } else if (v.is_double()) {
    d = Decimal::from_double(v.get_double());
    if (!d) {
      fail(name, "has more precision than a JSON number carries exactly; send it as a string");
      return std::nullopt;
    }
  } else {
    fail(name, "must be a number or a decimal string");
    return std::nullopt;
  }
  if (!d) {
    fail(name, "is out of range");
    return std::nullopt;
  }
  if (!allow_negative && d->is_negative()) {
    fail(name, "must not be negative");
    return std::nullopt;
  }
  return d;
}

std::optional<Decimal> ObjectReader::required_decimal(std::string_view name, bool allow_negative) {
  const bj::value* v = present(name);
  if (v == nullptr) {
    fail(name, "is required");
    return std::nullopt;
  }
  return decimal_value(name, *v, allow_negative);
}

std::optional<Decimal> ObjectReader::optional_decimal(std::string_view name, bool allow_negative) {
  const bj::value* v = present(name);
  if (v == nullptr) return std::nullopt;
  return decimal_value(name, *v, allow_negative);
}

std::optional<long long> ObjectReader::optional_int(std::string_view name, long long min,
                                                    long long max) {
  const bj::value* v = present(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_int64() || v->get_int64() < min || v->get_int64() > max) {
    fail(name, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return v->get_int64();
}

const bj::object* ObjectReader::optional_object(std::string_view name) {
  const bj::value* v = present(name);
  if (v == nullptr) return nullptr;
  if (!v->is_object()) {
    fail(name, "must be an object");
    return nullptr;
  }
  return &v->get_object();
}

bj::array errors_to_json(const std::vector<FieldError>& errors) {
  bj::array out;
  for (const auto& e : errors) out.push_back(bj::object{{"field", e.field}, {"message", e.message}});
  return out;
}

}  // namespace al::json
