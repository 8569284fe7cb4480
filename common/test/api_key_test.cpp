#include "common/auth/api_key.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>

#include "test_clock.hpp"
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using al::auth::ApiKeyAuthority;

const std::string kSecret1(40, 'a');
const std::string kSecret2 = "0123456789abcdef0123456789abcdef-second";

ApiKeyAuthority k1_only() { return ApiKeyAuthority({{"k1", kSecret1}}, "k1"); }

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

TEST(ApiKey, IssueHasDocumentedShape) {
  auto auth = k1_only();
  std::string key = auth.issue("agt_abc123");
  EXPECT_EQ(key.rfind("alk.k1.agt_abc123.", 0), 0u) << key;
  std::string mac = key.substr(std::string("alk.k1.agt_abc123.").size());
  // base64url(HMAC-SHA256) without padding: 43 characters.
  EXPECT_EQ(mac.size(), 43u);
  for (char c : mac) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  // Deterministic: the same agent gets the same key from the same secret.
  EXPECT_EQ(auth.issue("agt_abc123"), key);
  EXPECT_NE(auth.issue("agt_abc124"), key);
}

TEST(ApiKey, RoundTrip) {
  auto auth = k1_only();
  for (const std::string& agent : std::vector<std::string>{"agt_abc123", "a", std::string(64, 'z'), "A-b_9"}) {
    auto verified = auth.verify(auth.issue(agent));
    ASSERT_TRUE(verified) << agent;
    EXPECT_EQ(*verified, agent);
  }
}

TEST(ApiKey, DifferentSecretsGiveDifferentKeys) {
  ApiKeyAuthority a({{"k1", kSecret1}}, "k1");
  ApiKeyAuthority b({{"k1", kSecret2}}, "k1");
  EXPECT_NE(a.issue("agt_1"), b.issue("agt_1"));
  EXPECT_FALSE(b.verify(a.issue("agt_1")));
}

TEST(ApiKey, TamperedSignatureRejected) {
  auto auth = k1_only();
  std::string key = auth.issue("agt_1");
  for (std::size_t i : {key.size() - 1, key.size() - 10, key.size() - 43}) {
    std::string bad = key;
    bad[i] = bad[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(auth.verify(bad)) << bad;
  }
  EXPECT_FALSE(auth.verify(key.substr(0, key.size() - 1)));  // truncated mac
  EXPECT_FALSE(auth.verify(key + "A"));                      // extended mac
}

TEST(ApiKey, TamperedAgentIdRejected) {
  auto auth = k1_only();
  std::string key = auth.issue("agt_alice");
  std::string mac = key.substr(key.rfind('.') + 1);
  EXPECT_FALSE(auth.verify("alk.k1.agt_mallory." + mac));
  EXPECT_FALSE(auth.verify("alk.k1.agt_alicE." + mac));
  EXPECT_TRUE(auth.verify("alk.k1.agt_alice." + mac));
}

TEST(ApiKey, UnknownKidRejected) {
  auto auth = k1_only();
  std::string key = auth.issue("agt_1");
  std::string rest = key.substr(std::string("alk.k1").size());
  EXPECT_FALSE(auth.verify("alk.k2" + rest));
  // Even a correctly signed key from an authority that has k2 fails where k2 is not configured.
  ApiKeyAuthority other({{"k2", kSecret1}}, "k2");
  EXPECT_FALSE(auth.verify(other.issue("agt_1")));
}

TEST(ApiKey, MalformedKeysRejected) {
  auto auth = k1_only();
  std::string key = auth.issue("agt_1");
  std::string body = key.substr(4);  // "k1.agt_1.<mac>"
  EXPECT_FALSE(auth.verify(""));
  EXPECT_FALSE(auth.verify("alk."));
  EXPECT_FALSE(auth.verify("alk"));
  EXPECT_FALSE(auth.verify("xyz." + body));         // wrong prefix
  EXPECT_FALSE(auth.verify("ALK." + body));         // prefix is case-sensitive
  EXPECT_FALSE(auth.verify(" " + key));             // whitespace is not trimmed
  EXPECT_FALSE(auth.verify(key + " "));
  EXPECT_FALSE(auth.verify(key + ".extra"));        // extra dots
  EXPECT_FALSE(auth.verify("alk.k1..agt_1." + key.substr(key.rfind('.') + 1)));
  EXPECT_FALSE(auth.verify("alk.k1.agt_1"));        // missing mac
  EXPECT_FALSE(auth.verify("alk.k1"));
  EXPECT_FALSE(auth.verify("alk...."));
  EXPECT_FALSE(auth.verify(key.substr(0, key.rfind('.') + 1)));  // empty mac
  EXPECT_FALSE(auth.verify(std::string(1000, 'a')));
  std::string with_nul = key;
  with_nul.insert(8, 1, '\0');
  EXPECT_FALSE(auth.verify(with_nul));
}

TEST(ApiKey, OverlongRejected) {
  auto auth = k1_only();
  // A 65-character agent id is beyond the 64 the verifier allows, even though correctly signed.
  std::string key65 = auth.issue(std::string(65, 'x'));
  EXPECT_FALSE(auth.verify(key65));
  // Anything over 200 characters is rejected before parsing.
  std::string padded = "alk.k1." + std::string(200, 'a') + ".mac";
  EXPECT_GT(padded.size(), 200u);
  EXPECT_FALSE(auth.verify(padded));
}

TEST(ApiKey, AgentIdWithDotIssuesUnverifiableKey) {
  // issue() does not validate the agent id; one containing '.' (or other characters outside
  // [A-Za-z0-9_-]) yields a key that verify() always rejects. Callers must pass opaque ids.
  auto auth = k1_only();
  EXPECT_FALSE(auth.verify(auth.issue("agt.1")));
  EXPECT_FALSE(auth.verify(auth.issue("agt 1")));
}

TEST(ApiKey, RotationKeepsOldKeysValidWhileConfigured) {
  ApiKeyAuthority before({{"k1", kSecret1}}, "k1");
  std::string old_key = before.issue("agt_1");

  ApiKeyAuthority rotated({{"k1", kSecret1}, {"k2", kSecret2}}, "k2");
  std::string new_key = rotated.issue("agt_1");
  EXPECT_EQ(new_key.rfind("alk.k2.", 0), 0u);
  EXPECT_EQ(rotated.verify(old_key), "agt_1");
  EXPECT_EQ(rotated.verify(new_key), "agt_1");
  EXPECT_FALSE(before.verify(new_key));  // the old deployment does not know k2

  ApiKeyAuthority retired({{"k2", kSecret2}}, "k2");
  EXPECT_FALSE(retired.verify(old_key));
  EXPECT_EQ(retired.verify(new_key), "agt_1");
}

TEST(ApiKey, ConstructorValidation) {
  EXPECT_THROW(ApiKeyAuthority({{"k1", std::string(31, 'a')}}, "k1"), std::invalid_argument);
  EXPECT_NO_THROW(ApiKeyAuthority({{"k1", std::string(32, 'a')}}, "k1"));
  // A short secret on a non-signing kid is also rejected.
  EXPECT_THROW(ApiKeyAuthority({{"k1", kSecret1}, {"k0", "short"}}, "k1"), std::invalid_argument);
  EXPECT_THROW(ApiKeyAuthority({{"k1", kSecret1}}, "k2"), std::invalid_argument);
  EXPECT_THROW(ApiKeyAuthority({}, "k1"), std::invalid_argument);
  EXPECT_THROW(ApiKeyAuthority({}, ""), std::invalid_argument);
  // Key ids are [A-Za-z0-9_-]{1,16}.
  EXPECT_THROW(ApiKeyAuthority({{"k.1", kSecret1}}, "k.1"), std::invalid_argument);
  EXPECT_THROW(ApiKeyAuthority({{std::string(17, 'k'), kSecret1}}, std::string(17, 'k')),
               std::invalid_argument);
  EXPECT_NO_THROW(ApiKeyAuthority({{std::string(16, 'k'), kSecret1}}, std::string(16, 'k')));
  EXPECT_THROW(ApiKeyAuthority({{"", kSecret1}}, ""), std::invalid_argument);
}

TEST(ApiKey, FingerprintIsStableSha256Hex) {
  std::string fp = ApiKeyAuthority::fingerprint("alk.k1.agt_1.xyz");
  EXPECT_TRUE(is_hex64(fp)) << fp;
  EXPECT_EQ(ApiKeyAuthority::fingerprint("alk.k1.agt_1.xyz"), fp);
  EXPECT_NE(ApiKeyAuthority::fingerprint("alk.k1.agt_1.xyz2"), fp);
  // Known SHA-256 vectors.
  EXPECT_EQ(ApiKeyAuthority::fingerprint(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ApiKeyAuthority::fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// ---- authenticate --------------------------------------------------------------------------

boost::json::value body_json(const al::http::Response& r) { return boost::json::parse(r.body); }

TEST(Authenticate, MissingHeader) {
  auto auth = k1_only();
  al::http::Request request;
  auto result = al::auth::authenticate(request, auth);
  EXPECT_FALSE(result.agent_id);
  EXPECT_EQ(result.failure.status, 401u);
  EXPECT_EQ(result.failure.content_type, "application/json");
  auto body = body_json(result.failure);
  EXPECT_EQ(body.at("error").as_string(), "Missing x-api-key header");
  EXPECT_EQ(body.at("code").as_string(), "unauthorized");
}

TEST(Authenticate, EmptyHeaderCountsAsMissing) {
  auto auth = k1_only();
  al::http::Request request;
  request.headers.set("x-api-key", "");
  auto result = al::auth::authenticate(request, auth);
  EXPECT_FALSE(result.agent_id);
  EXPECT_EQ(result.failure.status, 401u);
  EXPECT_EQ(body_json(result.failure).at("error").as_string(), "Missing x-api-key header");
}

TEST(Authenticate, InvalidKey) {
  auto auth = k1_only();
  al::http::Request request;
  request.headers.set("x-api-key", "alk.k1.agt_1.not-the-mac");
  auto result = al::auth::authenticate(request, auth);
  EXPECT_FALSE(result.agent_id);
  EXPECT_EQ(result.failure.status, 401u);
  auto body = body_json(result.failure);
  EXPECT_EQ(body.at("error").as_string(), "Invalid API key");
  EXPECT_EQ(body.at("code").as_string(), "unauthorized");
}

TEST(Authenticate, ValidKeyHeaderNameIsCaseInsensitive) {
  auto auth = k1_only();
  al::http::Request request;
  request.headers.set("X-Api-Key", auth.issue("agt_42"));
  auto result = al::auth::authenticate(request, auth);
  ASSERT_TRUE(result.agent_id);
  EXPECT_EQ(*result.agent_id, "agt_42");
}

TEST(FurtherKeys, EachIssueIsANewKeyThatVerifiesToTheAgent) {
  auto auth = k1_only();
  std::string a = auth.issue_additional("agt_1"), b = auth.issue_additional("agt_1");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("alk.k1.agt_1.", 0), 0u) << a;
  EXPECT_EQ(std::count(a.begin(), a.end(), '.'), 4);
  EXPECT_EQ(auth.verify(a), "agt_1");
  EXPECT_EQ(auth.verify(b), "agt_1");
  // The nonce is signed: another nonce with the same mac does not verify.
  std::string nonce = a.substr(13, a.rfind('.') - 13);
  std::string other = "alk.k1.agt_1." + std::string(nonce.size(), 'A') + a.substr(a.rfind('.'));
  EXPECT_FALSE(auth.verify(other));
  // Nor does dropping the nonce (a v2 mac is not a v1 mac) or moving it.
  EXPECT_FALSE(auth.verify("alk.k1.agt_1" + a.substr(a.rfind('.'))));
  EXPECT_FALSE(auth.verify(a + ".x"));
  EXPECT_EQ(auth.issue_with_nonce("agt_1", nonce), a);
}

TEST(FurtherKeys, KeyIdsAreDerivedFromTheWholeKey) {
  auto auth = k1_only();
  std::string a = auth.issue("agt_1"), b = auth.issue_additional("agt_1");
  EXPECT_EQ(ApiKeyAuthority::key_id(a), "key_" + ApiKeyAuthority::fingerprint(a).substr(0, 24));
  EXPECT_NE(ApiKeyAuthority::key_id(a), ApiKeyAuthority::key_id(b));
  EXPECT_EQ(auth.verify_key(a)->key_id, ApiKeyAuthority::key_id(a));
  EXPECT_EQ(auth.verify_key(b)->agent_id, "agt_1");
}

TEST(Revocation, ARevokedKeyStopsAtItsEffectiveTimeAndOthersKeepWorking) {
  al::testing::TestClock clock(1'000'000);
  ApiKeyAuthority auth({{"k1", kSecret1}}, "k1", clock);
  std::string signup = auth.issue("agt_1"), rotated = auth.issue_additional("agt_1"), fresh = auth.issue_additional("agt_1");
  EXPECT_TRUE(auth.verify(signup));  // cached as verified: revocation must still apply
  auth.revocations().revoke({"agt_1", ApiKeyAuthority::key_id(signup), 1'000'000});
  auth.revocations().revoke({"agt_1", ApiKeyAuthority::key_id(rotated), 1'005'000});
  EXPECT_FALSE(auth.verify(signup));
  EXPECT_TRUE(auth.verify(rotated));  // in its grace period
  EXPECT_TRUE(auth.verify(fresh));
  clock.advance(5'000);
  EXPECT_FALSE(auth.verify(rotated));
  EXPECT_TRUE(auth.verify(fresh));
  al::http::Request request;
  request.headers.set("x-api-key", signup);
  EXPECT_EQ(al::auth::authenticate(request, auth).failure.status, 401u);
}

TEST(Revocation, TheEarliestEffectiveTimeWinsAndListenersHearOfChanges) {
  al::auth::KeyRevocations list;
  std::vector<al::Millis> heard;
  list.listen([&](const al::auth::KeyRevocations::Revocation& r) { heard.push_back(r.effective_at); });
  EXPECT_TRUE(list.revoke({"agt_1", "key_a", 500}));
  EXPECT_FALSE(list.revoke({"agt_1", "key_a", 900}));  // later: ignored
  EXPECT_TRUE(list.revoke({"agt_1", "key_a", 100}));   // earlier (revoked during a grace period)
  EXPECT_EQ(list.effective_at("key_a"), 100);
  EXPECT_EQ(heard, (std::vector<al::Millis>{500, 100}));
  EXPECT_FALSE(list.revoked("key_a", 99));
  EXPECT_TRUE(list.revoked("key_a", 100));
  EXPECT_FALSE(list.revoked("key_b", 100));
}

TEST(Revocation, LastUseIsRecordedPerKeyAndTakenOnce) {
  al::testing::TestClock clock(7'000);
  ApiKeyAuthority auth({{"k1", kSecret1}}, "k1", clock);
  std::string key = auth.issue("agt_1");
  auth.verify(key);
  clock.advance(10);
  auth.verify(key);
  auto used = auth.take_last_used();
  ASSERT_EQ(used.size(), 1u);
  EXPECT_EQ(used.at(ApiKeyAuthority::key_id(key)), 7'010);
  EXPECT_TRUE(auth.take_last_used().empty());
  auth.verify("alk.k1.agt_1.forged");
  EXPECT_TRUE(auth.take_last_used().empty());
}

}  // namespace
