#pragma once
#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace al {

// An exact, non-binary decimal amount with up to 18 fractional digits (token amounts), kept as a
// 128-bit count of 1e-18 units. Never converts through binary floating point except when a client
// sent a JSON number, which is accepted only if it has at most 15 significant digits (the range a
// double represents exactly as typed); exact amounts beyond that must be sent as strings.
class Decimal {
 public:
  static constexpr int kScale = 18;

  Decimal() = default;
  static std::optional<Decimal> parse(std::string_view text);  // "-?\d+(\.\d{1,18})?"
  static std::optional<Decimal> from_double(double value);     // see class comment
  static Decimal from_int(long long value);

  std::string to_string() const;  // canonical: no exponent, no trailing fractional zeros
  bool is_zero() const { return units_ == 0; }
  bool is_negative() const { return units_ < 0; }
  auto operator<=>(const Decimal&) const = default;

 private:
  __int128 units_ = 0;
};

}  // namespace al
