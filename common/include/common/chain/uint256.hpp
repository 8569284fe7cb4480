#pragma once
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace al::chain {

// An unsigned 256-bit integer: ERC-20 amounts in base units (uint256 on chain). Only what payment
// checks need: parse, saturating add, compare, print.
class Uint256 {
 public:
  Uint256() = default;
  static Uint256 from_u64(std::uint64_t value);
  static std::optional<Uint256> from_hex(std::string_view text);      // "0x…", up to 64 digits
  static std::optional<Uint256> from_decimal(std::string_view text);  // digits only, < 2^256
  // A token amount ("12.5") in base units for a token with `decimals` decimals. Digits finer than
  // the token can express round up: a payment must never be allowed to fall short.
  static std::optional<Uint256> from_token_amount(std::string_view amount, int decimals);

  Uint256 saturating_add(const Uint256& other) const;
  std::string to_decimal() const;
  // "12.5" for 12500000 with 6 decimals: base units back to a token amount, for messages.
  std::string to_token_amount(int decimals) const;
  bool is_zero() const { return limbs_ == std::array<std::uint64_t, 4>{}; }

  std::strong_ordering operator<=>(const Uint256& other) const;
  bool operator==(const Uint256& other) const = default;

 private:
  std::array<std::uint64_t, 4> limbs_{};  // least significant first
};

}  // namespace al::chain
