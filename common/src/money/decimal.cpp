#include "common/money/decimal.hpp"

#include <charconv>
#include <limits>

namespace al {
namespace {
constexpr __int128 pow10(int n) {
  __int128 v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}
constexpr __int128 kOne = pow10(Decimal::kScale);
// Keep the integer part well inside 128 bits: up to 10^20 whole units.
constexpr int kMaxIntegerDigits = 20;
}  // namespace

std::optional<Decimal> Decimal::parse(std::string_view text) {
  std::size_t pos = 0;
  bool negative = false;
  if (pos < text.size() && text[pos] == '-') {
    negative = true;
    ++pos;
  }
  std::size_t int_start = pos;
  __int128 integer = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    integer = integer * 10 + (text[pos] - '0');
    ++pos;
    if (pos - int_start > kMaxIntegerDigits) return std::nullopt;
  }
  if (pos == int_start) return std::nullopt;
  __int128 fraction = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t frac_start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (pos - frac_start >= static_cast<std::size_t>(kScale)) return std::nullopt;
      fraction = fraction * 10 + (text[pos] - '0');
      ++pos;
    }
    std::size_t digits = pos - frac_start;
    if (digits == 0) return std::nullopt;
    fraction *= pow10(kScale - static_cast<int>(digits));
  }
  if (pos != text.size()) return std::nullopt;
  Decimal d;
  d.units_ = integer * kOne + fraction;
  if (negative) d.units_ = -d.units_;
  return d;
}

std::optional<Decimal> Decimal::from_double(double value) {
  if (!(value == value) || value == std::numeric_limits<double>::infinity() ||
      value == -std::numeric_limits<double>::infinity())
    return std::nullopt;
  // The shortest digits that read back as the same double ("d.ddde±x"): for a literal of at most
  // 15 significant digits they are exactly the digits the client typed. (Fixed notation would
  // spell out the exact binary value of a large double: 53088675528136302592 for 5.30886755281363e19.)
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  if (ec != std::errc()) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  std::size_t e = text.find('e');
  if (e == std::string_view::npos) return std::nullopt;
  std::string digits;
  for (char c : text.substr(0, e))
    if (c != '.') digits.push_back(c);
  std::string_view exponent_text = text.substr(e + 1);
  if (!exponent_text.empty() && exponent_text.front() == '+') exponent_text.remove_prefix(1);
  int exponent = 0;
  if (std::from_chars(exponent_text.data(), exponent_text.data() + exponent_text.size(), exponent).ec != std::errc())
    return std::nullopt;
  if (digits.size() > 15) return std::nullopt;
  // The same digits in plain notation; Decimal::parse then checks the range and the scale.
  long long point = static_cast<long long>(exponent) + 1;  // digits before the decimal point
  if (point > kMaxIntegerDigits || point < -kScale) return std::nullopt;  // out of range either way
  std::string plain;
  if (point <= 0)
    plain = "0." + std::string(static_cast<std::size_t>(-point), '0') + digits;
  else if (static_cast<std::size_t>(point) >= digits.size())
    plain = digits + std::string(static_cast<std::size_t>(point) - digits.size(), '0');
  else
    plain = digits.substr(0, static_cast<std::size_t>(point)) + "." + digits.substr(static_cast<std::size_t>(point));
  if (negative && value != 0) plain.insert(0, "-");
  return parse(plain);
}

Decimal Decimal::from_int(long long value) {
  Decimal d;
  d.units_ = static_cast<__int128>(value) * kOne;
  return d;
}

std::string Decimal::to_string() const {
  unsigned __int128 magnitude =
      units_ < 0 ? static_cast<unsigned __int128>(-units_) : static_cast<unsigned __int128>(units_);
  unsigned __int128 integer = magnitude / static_cast<unsigned __int128>(kOne);
  unsigned __int128 fraction = magnitude % static_cast<unsigned __int128>(kOne);
  std::string int_text;
  do {
    int_text.insert(int_text.begin(), static_cast<char>('0' + static_cast<int>(integer % 10)));
    integer /= 10;
  } while (integer != 0);
  std::string out = units_ < 0 ? "-" + int_text : int_text;
  if (fraction != 0) {
    std::string frac_text(kScale, '0');
    for (int i = kScale - 1; i >= 0; --i) {
      frac_text[static_cast<std::size_t>(i)] = static_cast<char>('0' + static_cast<int>(fraction % 10));
      fraction /= 10;
    }
    while (!frac_text.empty() && frac_text.back() == '0') frac_text.pop_back();
    out += "." + frac_text;
  }
  return out;
}

}  // namespace al
