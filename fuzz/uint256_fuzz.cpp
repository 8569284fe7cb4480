// al::chain::Uint256 (common/src/chain/uint256.cpp): ERC-20 amounts from chain logs (hex), from
// contracts (token amounts with the token's decimals) and their sums. Checks: decimal and hex
// parsing agree and print back, token amounts round-trip and never round down (a payment must
// never be allowed to fall short), saturating_add is commutative, monotonic and exact below
// 2^128, ordering agrees with the numbers.
//
// Input: "<decimals>:<amount>" (e.g. "6:12.5"), or any text; a newline separates a second one.
#include <charconv>
#include <cstdint>
#include <string>

#include "common/chain/uint256.hpp"
#include "fuzz_check.hpp"

namespace {
using al::chain::Uint256;
using al::fuzz::shown;
using u128 = unsigned __int128;

std::string u128_text(u128 v) {
  std::string out;
  do {
    out.insert(out.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  return out;
}

int compare_decimal_text(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

// The value `text` names, if any: decimal digits, "0x" hex, or a token amount with decimals.
std::optional<Uint256> check_one(std::string_view text) {
  std::optional<Uint256> value;
  if (auto v = Uint256::from_decimal(text)) {
    std::string printed = v->to_decimal();
    std::string_view digits = text.substr(std::min(text.find_first_not_of('0'), text.size() - 1));
    FUZZ_CHECK(printed == digits, shown(text) + " printed as " + printed);
    value = v;
  }
  if (auto v = Uint256::from_hex(text)) {
    auto again = Uint256::from_decimal(v->to_decimal());
    FUZZ_CHECK(again && *again == *v, shown(text) + " printed as " + v->to_decimal() + " which reads back differently");
    // Up to 32 hex digits: the same value as a 128-bit integer.
    std::string_view hex = text.substr(2);
    hex.remove_prefix(std::min(hex.find_first_not_of('0'), hex.size() - 1));
    if (hex.size() <= 32) {
      u128 expected = 0;
      for (char c : hex) expected = expected * 16 + static_cast<unsigned>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
      FUZZ_CHECK(v->to_decimal() == u128_text(expected),
                 shown(text) + " is " + u128_text(expected) + ", printed " + v->to_decimal());
    }
    value = v;
  }
  auto colon = text.find(':');
  int decimals = 0;
  if (colon != std::string_view::npos &&
      std::from_chars(text.data(), text.data() + colon, decimals).ptr == text.data() + colon) {
    std::string_view amount = text.substr(colon + 1);
    if (auto v = Uint256::from_token_amount(amount, decimals)) {
      FUZZ_CHECK(decimals >= 0 && decimals <= 77);
      // Printed back with the same decimals, it reads back as the same base units.
      std::string printed = v->to_token_amount(decimals);
      auto again = Uint256::from_token_amount(printed, decimals);
      FUZZ_CHECK(again && *again == *v, shown(text) + " printed as " + printed + " which reads back differently");
      // Never below the amount: compared exactly with enough decimals for every digit given.
      std::size_t fraction = amount.find('.') == std::string_view::npos ? 0 : amount.size() - amount.find('.') - 1;
      int exact_decimals = decimals + static_cast<int>(fraction);
      if (exact_decimals <= 77) {
        auto exact = Uint256::from_token_amount(amount, exact_decimals);
        auto rounded = Uint256::from_token_amount(printed, exact_decimals);
        if (exact && rounded)
          FUZZ_CHECK(*rounded >= *exact, shown(text) + " rounded down to " + printed);
      }
      value = v;
    }
  }
  if (value) {
    FUZZ_CHECK(value->is_zero() == (value->to_decimal() == "0"));
    FUZZ_CHECK(value->saturating_add(Uint256{}) == *value);
  }
  return value;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view first = input.substr(0, input.find('\n'));
  auto a = check_one(first);
  if (first.size() == input.size()) return 0;
  auto b = check_one(input.substr(first.size() + 1));
  if (!a || !b) return 0;

  std::string at = a->to_decimal(), bt = b->to_decimal();
  auto order = *a <=> *b;
  int got = order < 0 ? -1 : order > 0 ? 1 : 0;
  FUZZ_CHECK(got == compare_decimal_text(at, bt), at + " vs " + bt);

  Uint256 sum = a->saturating_add(*b);
  FUZZ_CHECK(sum == b->saturating_add(*a), at + " + " + bt + " is not commutative");
  FUZZ_CHECK(sum >= *a && sum >= *b, at + " + " + bt + " = " + sum.to_decimal());
  // Exact where it cannot saturate: both below 2^127.
  const std::string two_to_127 = "170141183460469231731687303715884105728";
  if (compare_decimal_text(at, two_to_127) < 0 && compare_decimal_text(bt, two_to_127) < 0) {
    u128 x = 0, y = 0;
    for (char c : at) x = x * 10 + static_cast<unsigned>(c - '0');
    for (char c : bt) y = y * 10 + static_cast<unsigned>(c - '0');
    FUZZ_CHECK(sum.to_decimal() == u128_text(x + y), at + " + " + bt + " = " + sum.to_decimal());
  }
  return 0;
}
