#include "common/chain/uint256.hpp"

#include <gtest/gtest.h>

namespace {
using al::chain::Uint256;

TEST(Uint256, HexAndDecimalAgreeUpTo256Bits) {
  EXPECT_EQ(Uint256::from_hex("0x0")->to_decimal(), "0");
  EXPECT_EQ(Uint256::from_hex("0x1b4")->to_decimal(), "436");
  EXPECT_EQ(Uint256::from_hex("0x00000000000000000000000000000000000000000000000000000000000f4240")->to_decimal(), "1000000");
  std::string max = "0x" + std::string(64, 'f');
  EXPECT_EQ(Uint256::from_hex(max)->to_decimal(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935");
  EXPECT_EQ(*Uint256::from_decimal("115792089237316195423570985008687907853269984665640564039457584007913129639935"),
            *Uint256::from_hex(max));
  EXPECT_FALSE(Uint256::from_decimal("115792089237316195423570985008687907853269984665640564039457584007913129639936"));
  EXPECT_FALSE(Uint256::from_hex("0x1" + std::string(64, '0')));
  EXPECT_FALSE(Uint256::from_hex("12"));
  EXPECT_FALSE(Uint256::from_hex("0xzz"));
  EXPECT_FALSE(Uint256::from_decimal("12a"));
}

TEST(Uint256, TokenAmountsInBaseUnitsRoundUpNeverDown) {
  EXPECT_EQ(Uint256::from_token_amount("12.5", 6)->to_decimal(), "12500000");
  EXPECT_EQ(Uint256::from_token_amount("12", 6)->to_decimal(), "12000000");
  EXPECT_EQ(Uint256::from_token_amount("0.000001", 6)->to_decimal(), "1");
  EXPECT_EQ(Uint256::from_token_amount("1.5", 18)->to_decimal(), "1500000000000000000");
  EXPECT_EQ(Uint256::from_token_amount("7", 0)->to_decimal(), "7");
  // Finer than the token can express: the buyer must pay the next base unit up.
  EXPECT_EQ(Uint256::from_token_amount("0.0000001", 6)->to_decimal(), "1");
  EXPECT_EQ(Uint256::from_token_amount("1.0000010", 6)->to_decimal(), "1000001");
  EXPECT_EQ(Uint256::from_token_amount("1.00000100", 6)->to_decimal(), "1000001");
  EXPECT_FALSE(Uint256::from_token_amount("-1", 6));
  EXPECT_FALSE(Uint256::from_token_amount(".5", 6));
  EXPECT_FALSE(Uint256::from_token_amount("1.x", 6));
}

TEST(Uint256, PrintsTokenAmountsAndComparesAndSaturates) {
  EXPECT_EQ(Uint256::from_u64(12500000).to_token_amount(6), "12.5");
  EXPECT_EQ(Uint256::from_u64(1).to_token_amount(6), "0.000001");
  EXPECT_EQ(Uint256::from_u64(0).to_token_amount(6), "0");
  EXPECT_EQ(Uint256::from_u64(3000000).to_token_amount(6), "3");
  EXPECT_LT(Uint256::from_u64(4), Uint256::from_u64(5));
  EXPECT_GT(*Uint256::from_hex("0x10000000000000000"), Uint256::from_u64(~0ULL));
  auto max = *Uint256::from_hex("0x" + std::string(64, 'f'));
  EXPECT_EQ(max.saturating_add(Uint256::from_u64(1)), max);
  EXPECT_EQ(Uint256::from_u64(~0ULL).saturating_add(Uint256::from_u64(1)).to_decimal(), "18446744073709551616");
}
}  // namespace
