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
