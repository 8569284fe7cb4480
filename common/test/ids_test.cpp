#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "common/util/ids.hpp"

namespace al {
namespace {

TEST(Ids, UuidV7IsWellFormedAndSortsByTime) {
  std::regex v7("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::string earlier = new_uuid_v7(1'800'000'000'000);
  std::string later = new_uuid_v7(1'800'000'000'001);
  EXPECT_TRUE(std::regex_match(earlier, v7)) << earlier;
  EXPECT_LT(earlier, later);
  EXPECT_EQ(earlier.substr(0, 13), "01a3185c-5000");  // 1,800,000,000,000 ms = 0x01a3185c5000, big-endian
  std::set<std::string> same_ms;
  for (int i = 0; i < 1000; ++i) same_ms.insert(new_uuid_v7(1'800'000'000'000));
  EXPECT_EQ(same_ms.size(), 1000u);  // the random part keeps ids of one millisecond apart
}

TEST(Utf8, ValidPrefixKeepsWholeCharactersAndReplacesBadBytes) {
  EXPECT_EQ(valid_utf8_prefix("limit", 64), "limit");
  EXPECT_EQ(valid_utf8_prefix("", 64), "");
  // U+1D413 is 4 bytes: 17 of them are 68 bytes, cut to the 16 that fit in 64.
  std::string bold;
  for (int i = 0; i < 17; ++i) bold += "\xF0\x9D\x90\x93";
  EXPECT_EQ(valid_utf8_prefix(bold, 64), bold.substr(0, 64));
  EXPECT_EQ(valid_utf8_prefix(bold, 63), bold.substr(0, 60));
  EXPECT_EQ(valid_utf8_prefix("a\xC3\xA9z", 2), "a");  // é does not fit in what is left
  // Stray, truncated, overlong and surrogate sequences become U+FFFD, one per byte.
  EXPECT_EQ(valid_utf8_prefix("a\xFF" "b", 64), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(valid_utf8_prefix("\xF0\x9D\x90", 64), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8_prefix("\xC0\xAF", 64), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8_prefix("\xED\xA0\x80", 64), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(valid_utf8_prefix("\xF4\x90\x80\x80", 64).size(), 12u);  // above U+10FFFF
  EXPECT_EQ(valid_utf8_prefix("\xE2\x82\xAC\xF4\x8F\xBF\xBF", 64), "\xE2\x82\xAC\xF4\x8F\xBF\xBF");
}

TEST(Ids, SortableIdsKeepPrefixLengthAndOrder) {
  std::string a = new_sortable_id("thr_", 1'800'000'000'000);
  std::string b = new_sortable_id("thr_", 1'800'000'000'123);
  EXPECT_EQ(a.size(), 4u + 26u);
  EXPECT_EQ(a.rfind("thr_", 0), 0u);
  EXPECT_LT(a, b);
  EXPECT_TRUE(std::regex_match(a, std::regex("^thr_[a-z2-7]{26}$"))) << a;
  EXPECT_NE(new_sortable_id("thr_", 5), new_sortable_id("thr_", 5));
}

}  // namespace
}  // namespace al
