#include "common/money/decimal.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <limits>
#include <string>

namespace {

using al::Decimal;

std::string canon(std::string_view text) {
  auto d = Decimal::parse(text);
  if (!d) return "<invalid>";
  return d->to_string();
}

std::string from_double_text(double v) {
  auto d = Decimal::from_double(v);
  if (!d) return "<rejected>";
  return d->to_string();
}

TEST(DecimalParse, AcceptsIntegersAndFractions) {
  EXPECT_EQ(canon("10"), "10");
  EXPECT_EQ(canon("0"), "0");
  EXPECT_EQ(canon("10.50"), "10.5");
  EXPECT_EQ(canon("10.00"), "10");
  EXPECT_EQ(canon("0.5"), "0.5");
  EXPECT_EQ(canon("-1"), "-1");
  EXPECT_EQ(canon("-0.25"), "-0.25");
  EXPECT_EQ(canon("123456.789"), "123456.789");
}

TEST(DecimalParse, EighteenFractionalDigitsIsTheSmallestUnit) {
  EXPECT_EQ(canon("0.000000000000000001"), "0.000000000000000001");
  EXPECT_EQ(canon("1.123456789012345678"), "1.123456789012345678");
  // Trailing zeros inside the 18 digits are dropped.
  EXPECT_EQ(canon("1.100000000000000000"), "1.1");
}

TEST(DecimalParse, NineteenFractionalDigitsRejected) {
  EXPECT_FALSE(Decimal::parse("0.0000000000000000001").has_value());
  EXPECT_FALSE(Decimal::parse("1.1234567890123456789").has_value());
  // Even when the extra digit is a zero: the grammar is \d{1,18}.
  EXPECT_FALSE(Decimal::parse("1.0000000000000000000").has_value());
}

TEST(DecimalParse, IntegerPartLimitedToTwentyDigits) {
  EXPECT_EQ(canon("99999999999999999999"), "99999999999999999999");  // 20 digits
  EXPECT_EQ(canon("99999999999999999999.999999999999999999"),
            "99999999999999999999.999999999999999999");
  EXPECT_EQ(canon("-99999999999999999999.999999999999999999"),
            "-99999999999999999999.999999999999999999");
  EXPECT_FALSE(Decimal::parse("100000000000000000000").has_value());  // 21 digits
  EXPECT_FALSE(Decimal::parse("123456789012345678901").has_value());
  EXPECT_FALSE(Decimal::parse("-100000000000000000000").has_value());
}

TEST(DecimalParse, RejectsMalformedText) {
  for (const char* bad : {"", "-", "1e5", "1E5", "1.", ".5", "-.5", "+1", " 1", "1 ", "1,5", "1.2.3",
                          "abc", "0x10", "--1", "1-", "NaN", "inf", "1.5e2", "١"}) {
    EXPECT_FALSE(Decimal::parse(bad).has_value()) << "accepted \"" << bad << "\"";
  }
}

TEST(DecimalParse, LeadingZerosAndNegativeZeroAreCanonicalised) {
  // Documented current behaviour: leading zeros are accepted and dropped, "-0" is zero.
  EXPECT_EQ(canon("007"), "7");
  EXPECT_EQ(canon("000.100"), "0.1");
  EXPECT_EQ(canon("-0"), "0");
  EXPECT_EQ(canon("-0.000"), "0");
  auto neg_zero = Decimal::parse("-0");
  ASSERT_TRUE(neg_zero);
  EXPECT_TRUE(neg_zero->is_zero());
  EXPECT_FALSE(neg_zero->is_negative());
}

TEST(DecimalToString, DefaultIsZeroAndCanonicalFormHasNoExponent) {
  EXPECT_EQ(Decimal().to_string(), "0");
  EXPECT_TRUE(Decimal().is_zero());
  EXPECT_EQ(canon("1000000000000"), "1000000000000");
  EXPECT_EQ(canon("0.000001"), "0.000001");
  // to_string output parses back to the same value.
  for (const char* text : {"0.000000000000000001", "-12.5", "99999999999999999999.5", "3"}) {
    auto d = Decimal::parse(text);
    ASSERT_TRUE(d);
    auto again = Decimal::parse(d->to_string());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *d) << text;
  }
}

TEST(DecimalCompare, OrdersByValueNotText) {
  auto a = *Decimal::parse("10.5");
  auto b = *Decimal::parse("10.50");
  auto c = *Decimal::parse("10.500000000000000001");
  auto n = *Decimal::parse("-3");
  auto z = *Decimal::parse("0");
  EXPECT_EQ(a, b);
  EXPECT_LT(a, c);
  EXPECT_GT(c, b);
  EXPECT_LT(n, z);
  EXPECT_LT(n, a);
  EXPECT_LE(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(n.is_negative());
  EXPECT_FALSE(a.is_negative());
  EXPECT_TRUE(z.is_zero());
  EXPECT_FALSE(a.is_zero());
  EXPECT_LT(*Decimal::parse("-10"), *Decimal::parse("-9.999999999999999999"));
  EXPECT_LT(*Decimal::parse("9"), *Decimal::parse("10"));  // numeric, not lexicographic
}

TEST(DecimalFromDouble, ExactShortDecimals) {
  EXPECT_EQ(from_double_text(10.5), "10.5");
  EXPECT_EQ(from_double_text(0.1), "0.1");
  EXPECT_EQ(from_double_text(1234.56), "1234.56");
  EXPECT_EQ(from_double_text(-2.25), "-2.25");
  EXPECT_EQ(from_double_text(0.0), "0");
  EXPECT_EQ(from_double_text(-0.0), "0");
  EXPECT_EQ(from_double_text(100.0), "100");
  EXPECT_EQ(from_double_text(1e-7), "0.0000001");
  EXPECT_EQ(from_double_text(123456789012345.0), "123456789012345");  // 15 significant digits
  EXPECT_EQ(from_double_text(0.123456789012345), "0.123456789012345");
}

TEST(DecimalFromDouble, EqualsParsedText) {
  EXPECT_EQ(*Decimal::from_double(10.5), *Decimal::parse("10.5"));
  EXPECT_EQ(*Decimal::from_double(0.1), *Decimal::parse("0.1"));
  EXPECT_EQ(*Decimal::from_double(1234.56), *Decimal::parse("1234.56"));
}

TEST(DecimalFromDouble, RejectsMoreThanFifteenSignificantDigits) {
  EXPECT_EQ(from_double_text(0.1 + 0.2), "<rejected>");  // 0.30000000000000004
  EXPECT_EQ(from_double_text(1234567890123456.0), "<rejected>");  // 16 digits
  EXPECT_EQ(from_double_text(1.0 / 3.0), "<rejected>");
}

TEST(DecimalFromDouble, LargeMagnitudes) {
  // Trailing zeros of the integer part are not significant: 1e19 has one significant digit and
  // 20 integer digits, the largest integer width a Decimal holds.
  EXPECT_EQ(from_double_text(1e19), "10000000000000000000");
  EXPECT_EQ(from_double_text(1e15), "1000000000000000");
  // 1e20 has 21 integer digits: out of range, rejected.
  EXPECT_EQ(from_double_text(1e20), "<rejected>");
  EXPECT_EQ(from_double_text(-1e20), "<rejected>");
  EXPECT_EQ(from_double_text(1e300), "<rejected>");
  EXPECT_EQ(from_double_text(std::numeric_limits<double>::max()), "<rejected>");
}

TEST(DecimalFromDouble, TinyValuesBeyondEighteenDigitsRejected) {
  EXPECT_EQ(from_double_text(1e-18), "0.000000000000000001");
  EXPECT_EQ(from_double_text(1e-19), "<rejected>");
  EXPECT_EQ(from_double_text(std::numeric_limits<double>::denorm_min()), "<rejected>");
}

TEST(DecimalFromDouble, LargeValuesTakeTheirShortestDigitsNotTheirBinaryExpansion) {
  // 5.30886755281363e19 is the double 53088675528136302592: 15 significant digits as written.
  EXPECT_EQ(from_double_text(5.30886755281363e19), "53088675528136300000");
  EXPECT_EQ(from_double_text(1.5e19), "15000000000000000000");
  EXPECT_EQ(from_double_text(9.007199254740993e15), "<rejected>");  // 16 digits
  EXPECT_EQ(from_double_text(9.999999999999998e19), "<rejected>");  // 16 digits
  EXPECT_EQ(from_double_text(1.5e-17), "0.000000000000000015");
}

TEST(DecimalFromDouble, NanAndInfinityRejected) {
  EXPECT_FALSE(Decimal::from_double(std::numeric_limits<double>::quiet_NaN()).has_value());
  EXPECT_FALSE(Decimal::from_double(std::nan("")).has_value());
  EXPECT_FALSE(Decimal::from_double(std::numeric_limits<double>::infinity()).has_value());
  EXPECT_FALSE(Decimal::from_double(-std::numeric_limits<double>::infinity()).has_value());
}

TEST(DecimalFromInt, WholeUnits) {
  EXPECT_EQ(Decimal::from_int(0).to_string(), "0");
  EXPECT_EQ(Decimal::from_int(42).to_string(), "42");
  EXPECT_EQ(Decimal::from_int(-7).to_string(), "-7");
  EXPECT_EQ(Decimal::from_int(42), *Decimal::parse("42.000"));
  EXPECT_EQ(Decimal::from_int(LLONG_MAX).to_string(), "9223372036854775807");
  EXPECT_EQ(Decimal::from_int(LLONG_MIN).to_string(), "-9223372036854775808");
  EXPECT_LT(Decimal::from_int(LLONG_MIN), Decimal::from_int(LLONG_MAX));
  EXPECT_TRUE(Decimal::from_int(-1).is_negative());
}

}  // namespace
