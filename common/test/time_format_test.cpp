#include "common/util/time_format.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace {

using al::format_rfc3339;
using al::Millis;
using al::parse_rfc3339;

TEST(FormatRfc3339, KnownInstants) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(format_rfc3339(1'800'000'000'000), "2027-01-15T08:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'795'675'489'123), "2026-11-26T06:44:49.123Z");
  EXPECT_EQ(format_rfc3339(946'684'800'000), "2000-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1'709'208'000'000), "2024-02-29T12:00:00.000Z");
}

TEST(FormatRfc3339, NegativeMillisFloorTowardsThePast) {
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(-999), "1969-12-31T23:59:59.001Z");
  EXPECT_EQ(format_rfc3339(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_rfc3339(-1001), "1969-12-31T23:59:58.999Z");
  EXPECT_EQ(format_rfc3339(-14'182'940'000), "1969-07-20T20:17:40.000Z");
}

TEST(ParseRfc3339, Basic) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), Millis{0});
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.000Z"), Millis{0});
  EXPECT_EQ(parse_rfc3339("2026-11-26T06:44:49.123Z"), Millis{1'795'675'489'123});
  EXPECT_EQ(parse_rfc3339("2027-01-15T08:00:00Z"), Millis{1'800'000'000'000});
  EXPECT_EQ(parse_rfc3339("1969-12-31T23:59:59.999Z"), Millis{-1});
  EXPECT_EQ(parse_rfc3339("1969-07-20T20:17:40Z"), Millis{-14'182'940'000});
}

TEST(ParseRfc3339, AlternateSeparatorsAndLowercase) {
  EXPECT_EQ(parse_rfc3339("2026-11-26t06:44:49.123z"), Millis{1'795'675'489'123});
  EXPECT_EQ(parse_rfc3339("2026-11-26 06:44:49.123Z"), Millis{1'795'675'489'123});
}

TEST(ParseRfc3339, Offsets) {
  // 08:44:49.123+02:00 is 06:44:49.123Z.
  EXPECT_EQ(parse_rfc3339("2026-11-26T08:44:49.123+02:00"), Millis{1'795'675'489'123});
  EXPECT_EQ(parse_rfc3339("2026-11-26T01:14:49.123-05:30"), Millis{1'795'675'489'123});
  EXPECT_EQ(parse_rfc3339("2026-11-26T06:44:49.123+00:00"), Millis{1'795'675'489'123});
  EXPECT_EQ(parse_rfc3339("2026-11-26T06:44:49.123-00:00"), Millis{1'795'675'489'123});
  // An offset can cross a day (and year) boundary.
  EXPECT_EQ(parse_rfc3339("2000-01-01T01:00:00+02:00"), parse_rfc3339("1999-12-31T23:00:00Z"));
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00+23:59"), Millis{-(23 * 60 + 59) * 60 * 1000});
}

TEST(ParseRfc3339, Fractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.5Z"), Millis{500});
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.05Z"), Millis{50});
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.123Z"), Millis{123});
  // Beyond milliseconds the digits are truncated, not rounded; at most 9 digits.
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.123999Z"), Millis{123});
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00.999999999Z"), Millis{999});
  EXPECT_FALSE(parse_rfc3339("1970-01-01T00:00:00.1234567890Z"));  // 10 digits
  EXPECT_FALSE(parse_rfc3339("1970-01-01T00:00:00.Z"));             // no digits
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01.250+01:00"), Millis{1250 - 3600 * 1000});
}

TEST(ParseRfc3339, LeapDayInLeapYear) {
  EXPECT_EQ(parse_rfc3339("2024-02-29T12:00:00Z"), Millis{1'709'208'000'000});
  EXPECT_TRUE(parse_rfc3339("2000-02-29T00:00:00Z"));
}

TEST(ParseRfc3339, LeapSecondIsClampedTo59) {
  // Documented behaviour: :60 is accepted and read as :59.
  EXPECT_EQ(parse_rfc3339("2016-12-31T23:59:60Z"), parse_rfc3339("2016-12-31T23:59:59Z"));
  EXPECT_FALSE(parse_rfc3339("2016-12-31T23:59:61Z"));
}

TEST(ParseRfc3339, InvalidDatesRejected) {
  for (const char* bad : {
           "2026-02-30T00:00:00Z",  // no Feb 30
           "2026-02-31T00:00:00Z",
           "2026-04-31T00:00:00Z",  // April has 30 days
           "2026-13-01T00:00:00Z",  // month 13
           "2026-00-10T00:00:00Z",  // month 0
           "2026-01-00T00:00:00Z",  // day 0
           "2026-01-32T00:00:00Z",
           "2026-01-01T24:00:00Z",
           "2026-01-01T23:60:00Z",
       }) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(ParseRfc3339, Feb29InNonLeapYearRejected) {
  EXPECT_FALSE(parse_rfc3339("2026-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("1900-02-29T00:00:00Z"));  // divisible by 100, not by 400
}

TEST(ParseRfc3339, MalformedRejected) {
  for (const char* bad : {
           "",
           "2026-11-26T06:44:49",        // missing zone
           "2026-11-26T06:44:49.123",    // missing zone
           "2026-11-26",                 // date only
           "2026-11-26T06:44Z",          // no seconds
           "2026-11-26X06:44:49Z",       // bad separator
           "2026/11/26T06:44:49Z",
           "26-11-26T06:44:49Z",
           "2026-1-26T06:44:49Z",
           "2026-11-26T06:44:49ZZ",      // trailing garbage
           "2026-11-26T06:44:49Z ",
           " 2026-11-26T06:44:49Z",
           "2026-11-26T06:44:49+02",     // incomplete offset
           "2026-11-26T06:44:49+0200",   // offset without colon
           "2026-11-26T06:44:49+2:00",
           "2026-11-26T06:44:49+24:00",  // offset hours out of range
           "2026-11-26T06:44:49+02:60",  // offset minutes out of range
           "2026-11-26T06:44:49+02:00Z",
           "2026-11-26T06:44:49UTC",
           "2O26-11-26T06:44:49Z",       // letter O
           "+2026-11-26T06:44:49Z",
       }) {
    EXPECT_FALSE(parse_rfc3339(bad)) << "\"" << bad << "\"";
  }
}

TEST(Rfc3339, RoundTrip) {
  for (Millis ms : {Millis{0}, Millis{1}, Millis{999}, Millis{-1}, Millis{-86'400'001},
                    Millis{1'795'675'489'123}, Millis{1'709'208'000'000}, Millis{253'402'300'799'999},
                    Millis{951'782'400'000}, Millis{-2'208'988'800'000}}) {
    std::string text = format_rfc3339(ms);
    auto back = parse_rfc3339(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, ms) << text;
  }
  EXPECT_EQ(format_rfc3339(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339(-2'208'988'800'000), "1900-01-01T00:00:00.000Z");
}

TEST(Rfc3339, ParseThenFormatNormalisesToUtcMillis) {
  auto ms = parse_rfc3339("2026-11-26T08:44:49.1+02:00");
  ASSERT_TRUE(ms);
  EXPECT_EQ(format_rfc3339(*ms), "2026-11-26T06:44:49.100Z");
}

}  // namespace
