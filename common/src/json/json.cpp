#include "common/json/json.hpp"

#include "common/util/ids.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <unordered_set>

namespace al::json {
namespace {
// A number literal reduced to significant digits and a power of ten: "120.50" -> ("1205", 0)
// meaning 1205 * 10^(0 - 3 + ...). Here: value = 0.digits * 10^exponent.
struct Normalized {
  std::string digits;
  long long exponent = 0;
  bool operator==(const Normalized&) const = default;
};

Normalized normalize(std::string_view text) {
  Normalized n;
  std::size_t pos = text.size() && text[0] == '-' ? 1 : 0;
  long long point = -1, count = 0;
  std::string digits;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '.') {
      point = count;
    } else if (c >= '0' && c <= '9') {
      digits.push_back(c);
      ++count;
    } else {
      break;  // exponent
    }
  }
  long long exp10 = 0;
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    std::string exp_text(text.substr(pos));
    exp10 = std::strtoll(exp_text.c_str(), nullptr, 10);
    if (exp10 > 100000) exp10 = 100000;
    if (exp10 < -100000) exp10 = -100000;
  }
  if (point < 0) point = count;
  std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return {"0", 0};
  std::size_t last = digits.find_last_not_of('0');
  n.digits = digits.substr(first, last - first + 1);
  n.exponent = point - static_cast<long long>(first) + exp10;
  return n;
}

// True when the parsed value carries exactly the number the client wrote.
bool literal_is_exact(std::string_view literal) {
  bool integer = literal.find_first_of(".eE") == std::string_view::npos;
  if (integer) {
    long long i;
    unsigned long long u;
    if (std::from_chars(literal.data(), literal.data() + literal.size(), i).ec == std::errc()) return true;
    if (std::from_chars(literal.data(), literal.data() + literal.size(), u).ec == std::errc()) return true;
  }
  std::string copy(literal);
  double d = std::strtod(copy.c_str(), nullptr);
  if (d == std::numeric_limits<double>::infinity() || d == -std::numeric_limits<double>::infinity()) return false;
  char buf[64];
  // Scientific: the shortest digits that read back as `d` (fixed notation would spell out a large
  // double's exact binary value, 53088675528136302592 for 5.30886755281363e19).
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  if (ec != std::errc()) return false;
  return normalize(std::string_view(buf, static_cast<std::size_t>(end - buf))) == normalize(literal);
}

// Finds the first number literal (outside strings) that a double would silently change.
std::optional<std::string> first_inexact_number(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i)
        if (text[i] == '\\') ++i;
      continue;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t start = i;
      while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '-' ||
                                 text[i] == '+' || text[i] == '.' || text[i] == 'e' || text[i] == 'E'))
        ++i;
      std::string_view literal = text.substr(start, i - start);
      if (!literal_is_exact(literal)) return std::string(literal.substr(0, 40));
      --i;
    }
  }
  return std::nullopt;
}

// Builds the value as boost::json::parser does, and stops at a key an object already has (Boost.JSON
// would silently keep one of the two, so what a client meant is ambiguous). Keys arrive unescaped:
// "a" and "\u0061" are the same key. One set of keys per open object, so the check is linear.
class StrictHandler {
 public:
  static constexpr std::size_t max_object_size = bj::object::max_size();
  static constexpr std::size_t max_array_size = bj::array::max_size();
  static constexpr std::size_t max_key_size = bj::string::max_size();
  static constexpr std::size_t max_string_size = bj::string::max_size();

  bj::value_stack stack;
  std::optional<std::string> duplicate;  // the repeated key, once found

  bool on_document_begin(bj::error_code&) { return true; }
  bool on_document_end(bj::error_code&) { return true; }
  bool on_object_begin(bj::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t n, bj::error_code&) {
    keys_.pop_back();
    stack.push_object(n);
    return true;
  }
  bool on_array_begin(bj::error_code&) { return true; }
  bool on_array_end(std::size_t n, bj::error_code&) {
    stack.push_array(n);
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, bj::error_code&) {
    stack.push_chars(s);
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, bj::error_code& ec) {
    stack.push_key(s);
    key_.append(s.data(), s.size());
    auto [at, fresh] = keys_.back().insert(std::move(key_));
    key_.clear();
    if (fresh) return true;
    duplicate = *at;
    ec = bj::error::syntax;
    return false;
  }
  bool on_string_part(bj::string_view s, std::size_t, bj::error_code&) {
    stack.push_chars(s);
    return true;
  }
  bool on_string(bj::string_view s, std::size_t, bj::error_code&) {
    stack.push_string(s);
    return true;
  }
  bool on_number_part(bj::string_view s, bj::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, bj::string_view, bj::error_code&) {
    number_.clear();
    stack.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, bj::string_view, bj::error_code&) {
    number_.clear();
    stack.push_uint64(u);
    return true;
  }
  bool on_double(double d, bj::string_view s, bj::error_code&) {
    // Boost.JSON 1.81 may round a literal to a neighbouring double (0.000000000000000036358854
    // became 3.6358853999999996e-17): keep the correctly rounded double of the literal itself,
    // the one the exact-number check below vouches for.
    number_.append(s.data(), s.size());
    double exact;
    auto [end, ec] = std::from_chars(number_.data(), number_.data() + number_.size(), exact);
    if (ec == std::errc() && end == number_.data() + number_.size()) d = exact;
    number_.clear();
    stack.push_double(d);
    return true;
  }
  bool on_bool(bool b, bj::error_code&) {
    stack.push_bool(b);
    return true;
  }
  bool on_null(bj::error_code&) {
    stack.push_null();
    return true;
  }
  bool on_comment_part(bj::string_view, bj::error_code&) { return true; }
  bool on_comment(bj::string_view, bj::error_code&) { return true; }

 private:
  std::vector<std::unordered_set<std::string>> keys_;  // of each object still open
  std::string key_;                                    // the key being read, when it comes in parts
  std::string number_;                                 // the number being read, when it comes in parts
};

// A key for an error message: at most 64 bytes (not splitting a UTF-8 character), quoted and escaped.
std::string shown_key(std::string_view key) {
  std::size_t size = std::min<std::size_t>(key.size(), 64);
  while (size > 0 && size < key.size() && (static_cast<unsigned char>(key[size]) & 0xC0) == 0x80) --size;
  return bj::serialize(bj::string_view(key.data(), size)) + (size < key.size() ? "…" : "");
}
}  // namespace

std::optional<bj::value> parse(std::string_view text, std::string& error, std::size_t max_depth) {
  bj::parse_options options;
  options.max_depth = max_depth;
  bj::basic_parser<StrictHandler> parser(options);
  parser.handler().stack.reset();
  bj::error_code ec;
  std::size_t parsed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && parsed < text.size()) ec = bj::error::extra_data;
  if (parser.handler().duplicate) {
    error = "Duplicate key " + shown_key(*parser.handler().duplicate) + " in a JSON object";
    return std::nullopt;
  }
  if (ec) {
    error = "Malformed JSON: " + ec.message();
    return std::nullopt;
  }
  bj::value value = parser.handler().stack.release();
  // Never change a client's number silently: a literal a double cannot carry exactly is refused.
  if (auto inexact = first_inexact_number(text)) {
    error = "The number " + *inexact +
            " cannot be represented exactly as a JSON number; send exact amounts as decimal strings";
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
      fail(valid_utf8_prefix(key, 64), "unknown field");
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
    double x = v.get_double();
    if (!(x > -1e20 && x < 1e20)) {
      fail(name, "is out of range");
      return std::nullopt;
    }
    d = Decimal::from_double(x);
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
  std::optional<long long> n;
  if (v->is_int64()) n = v->get_int64();
  // JSON does not tell 5 from 5.0 (nor does JSON Schema's "integer"): an integral number written
  // with a fraction or an exponent is that integer. The parser already refused inexact literals.
  if (v->is_double() && std::trunc(v->get_double()) == v->get_double() && v->get_double() >= -0x1p63 &&
      v->get_double() < 0x1p63)
    n = static_cast<long long>(v->get_double());
  if (!n || *n < min || *n > max) {
    fail(name, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return n;
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
