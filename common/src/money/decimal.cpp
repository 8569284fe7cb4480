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
  char buf[400];
  // Shortest representation that round-trips: for inputs with <= 15 significant digits this is
  // exactly the decimal text the client typed.
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
  if (ec != std::errc()) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  int significant = 0;
  bool leading = true;
  for (char c : text) {
    if (c < '0' || c > '9') continue;
    if (leading && c == '0') continue;
    leading = false;
    ++significant;
  }
  // Trailing zeros of an integer part are not significant for this check ("1000000").
  std::size_t dot = text.find('.');
  if (dot == std::string_view::npos) {
    std::size_t i = text.size();
    while (i > 0 && text[i - 1] == '0' && significant > 1) {
      --i;
      --significant;
    }
  }
  if (significant > 15) return std::nullopt;
  return parse(text);
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
