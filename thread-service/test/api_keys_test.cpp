#include "domain/api_keys.hpp"

#include <gtest/gtest.h>

namespace {
using namespace al::thread::keys;

Key key(std::string id, std::optional<al::Millis> expires_at = std::nullopt) {
  return Key{std::move(id), "agt_a", "fp", 1000, std::nullopt, std::nullopt, expires_at};
}

TEST(ApiKeys, ActiveUntilExpiry) {
  EXPECT_TRUE(active(key("k"), 5000));
  EXPECT_TRUE(active(key("k", 5001), 5000));
  EXPECT_FALSE(active(key("k", 5000), 5000));
  EXPECT_FALSE(active(key("k", 10), 5000));
}

TEST(ApiKeys, CreateCountsOnlyActiveKeys) {
  std::vector<Key> keys{key("a"), key("b"), key("c", 4000)};  // c stopped already
  EXPECT_EQ(decide_create(keys, std::nullopt, 5000, 0, 3).refusal, Refusal::None);
  keys.push_back(key("d"));
  EXPECT_EQ(decide_create(keys, std::nullopt, 5000, 0, 3).refusal, Refusal::TooManyKeys);
}

TEST(ApiKeys, ReplacingFreesTheReplacedKeysSlotAndSetsItsExpiry) {
  std::vector<Key> keys{key("a"), key("b"), key("c")};
  auto d = decide_create(keys, std::string("b"), 5000, 60'000, 3);
  EXPECT_EQ(d.refusal, Refusal::None);
  EXPECT_EQ(d.replaced_expires_at, 65'000);
  // No grace: it stops at once.
  EXPECT_EQ(decide_create(keys, std::string("b"), 5000, 0, 3).replaced_expires_at, 5000);
  // Replacing a key already set to expire keeps the earlier expiry.
  keys[1].expires_at = 7000;
  EXPECT_EQ(decide_create(keys, std::string("b"), 5000, 60'000, 3).replaced_expires_at, 7000);
  keys[1].expires_at = 90'000;
  EXPECT_EQ(decide_create(keys, std::string("b"), 5000, 60'000, 3).replaced_expires_at, 65'000);
}

TEST(ApiKeys, ReplacingAnUnknownOrStoppedKeyIsNotFound) {
  std::vector<Key> keys{key("a"), key("b", 4000)};
  EXPECT_EQ(decide_create(keys, std::string("zz"), 5000, 0, 10).refusal, Refusal::KeyNotFound);
  EXPECT_EQ(decide_create(keys, std::string("b"), 5000, 0, 10).refusal, Refusal::KeyNotFound);
}

TEST(ApiKeys, RevokeStopsAnActiveKeyNow) {
  std::vector<Key> keys{key("a"), key("b", 9000), key("c", 4000)};
  auto d = decide_revoke(keys, "a", 5000);
  EXPECT_EQ(d.refusal, Refusal::None);
  EXPECT_EQ(d.effective_at, 5000);
  // A key in its rotation grace period is revoked at once too.
  EXPECT_EQ(decide_revoke(keys, "b", 5000).effective_at, 5000);
  EXPECT_EQ(decide_revoke(keys, "c", 5000).refusal, Refusal::KeyNotFound);
  EXPECT_EQ(decide_revoke(keys, "x", 5000).refusal, Refusal::KeyNotFound);
}
}  // namespace
