#include "common/chain/uint256.hpp"

#include <algorithm>
#include <cctype>

namespace al::chain {
namespace {
using u128 = unsigned __int128;

// this = this * 10 + digit; false on overflow.
bool multiply_add(std::array<std::uint64_t, 4>& limbs, std::uint64_t factor, std::uint64_t addend) {
  u128 carry = addend;
  for (auto& limb : limbs) {
    u128 v = static_cast<u128>(limb) * factor + carry;
    limb = static_cast<std::uint64_t>(v);
    carry = v >> 64;
  }
  return carry == 0;
}

// Divides in place by a small divisor, returns the remainder.
std::uint64_t divide(std::array<std::uint64_t, 4>& limbs, std::uint64_t divisor) {
  u128 remainder = 0;
  for (int i = 3; i >= 0; --i) {
    u128 v = (remainder << 64) | limbs[i];
    limbs[i] = static_cast<std::uint64_t>(v / divisor);
    remainder = v % divisor;
  }
  return static_cast<std::uint64_t>(remainder);
}
}  // namespace

Uint256 Uint256::from_u64(std::uint64_t value) {
  Uint256 r;
  r.limbs_[0] = value;
  return r;
}

std::optional<Uint256> Uint256::from_hex(std::string_view text) {
  if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return std::nullopt;
  text.remove_prefix(2);
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  if (text.size() > 64) return std::nullopt;
  Uint256 r;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    else return std::nullopt;
    if (!multiply_add(r.limbs_, 16, static_cast<std::uint64_t>(digit))) return std::nullopt;
  }
  return r;
}

std::optional<Uint256> Uint256::from_decimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Uint256 r;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (!multiply_add(r.limbs_, 10, static_cast<std::uint64_t>(c - '0'))) return std::nullopt;
  }
  return r;
}

std::optional<Uint256> Uint256::from_token_amount(std::string_view amount, int decimals) {
  if (decimals < 0 || decimals > 77 || amount.empty() || amount.front() == '-') return std::nullopt;
  auto dot = amount.find('.');
  std::string_view whole = amount.substr(0, dot);
  std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : amount.substr(dot + 1);
  if (whole.empty()) return std::nullopt;
  std::string digits(whole);
  std::string_view kept = fraction.substr(0, std::min<std::size_t>(fraction.size(), static_cast<std::size_t>(decimals)));
  digits.append(kept);
  digits.append(static_cast<std::size_t>(decimals) - kept.size(), '0');
  bool finer = fraction.size() > kept.size() &&
               fraction.substr(kept.size()).find_first_not_of('0') != std::string_view::npos;
  for (char c : fraction)
    if (c < '0' || c > '9') return std::nullopt;
  auto value = from_decimal(digits);
  if (!value) return std::nullopt;
  if (finer) {
    Uint256 one = from_u64(1);
    Uint256 rounded = value->saturating_add(one);
    if (rounded == *value) return std::nullopt;  // 2^256 - 1 cannot round up
    return rounded;
  }
  return value;
}

Uint256 Uint256::saturating_add(const Uint256& other) const {
  Uint256 r;
  u128 carry = 0;
  for (int i = 0; i < 4; ++i) {
    u128 v = static_cast<u128>(limbs_[i]) + other.limbs_[i] + carry;
    r.limbs_[i] = static_cast<std::uint64_t>(v);
    carry = v >> 64;
  }
  if (carry) r.limbs_.fill(~std::uint64_t{0});
  return r;
}

std::string Uint256::to_decimal() const {
  if (is_zero()) return "0";
  auto limbs = limbs_;
  std::string out;
  while (limbs != std::array<std::uint64_t, 4>{}) out.push_back(static_cast<char>('0' + divide(limbs, 10)));
  std::reverse(out.begin(), out.end());
  return out;
}

std::string Uint256::to_token_amount(int decimals) const {
  std::string digits = to_decimal();
  if (decimals <= 0) return digits;
  auto scale = static_cast<std::size_t>(decimals);
  if (digits.size() <= scale) digits.insert(0, scale + 1 - digits.size(), '0');
  std::string whole = digits.substr(0, digits.size() - scale);
  std::string fraction = digits.substr(digits.size() - scale);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return fraction.empty() ? whole : whole + "." + fraction;
}

std::strong_ordering Uint256::operator<=>(const Uint256& other) const {
  for (int i = 3; i >= 0; --i)
    if (limbs_[i] != other.limbs_[i]) return limbs_[i] <=> other.limbs_[i];
  return std::strong_ordering::equal;
}

}  // namespace al::chain
