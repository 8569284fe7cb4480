// API keys (common/src/auth/api_key.cpp): al::auth::ApiKeyAuthority::verify on whatever arrives in
// x-api-key or a socket.io CONNECT, authenticate() on a request, and fingerprint(). Checks: a key
// verifies only in exactly the form issue() makes for its kid and agent; verification is stable
// (the cache answers as the HMAC did); an issued key verifies, and changing any one character of
// it does not; fingerprints are 64 hex digits and depend on the whole key.
//
// Input: a key ("alk.k1.agt_….<mac>" or "alk.k1.agt_….<nonce>.<mac>"); the same bytes are also
// used as an agent id to issue.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <string>

#include "common/auth/api_key.hpp"
#include "fuzz_check.hpp"

namespace {
using al::auth::ApiKeyAuthority;
using al::fuzz::shown;

// The secrets the seed corpus's valid keys were made with (docs/fuzzing.md).
const std::map<std::string, std::string> kSecrets{{"k1", "fuzz-secret-k1-0123456789abcdef0123456789"},
                                                  {"k2", "fuzz-secret-k2-0123456789abcdef0123456789"}};

const ApiKeyAuthority& signer(const std::string& kid) {
  static const ApiKeyAuthority k1(kSecrets, "k1"), k2(kSecrets, "k2");
  return kid == "k1" ? k1 : k2;
}

bool valid_agent_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

void check_fingerprint(std::string_view key) {
  std::string print = ApiKeyAuthority::fingerprint(key);
  FUZZ_CHECK(print.size() == 64 && print.find_first_not_of("0123456789abcdef") == std::string::npos, print);
  FUZZ_CHECK(print == ApiKeyAuthority::fingerprint(key));
  if (!key.empty()) FUZZ_CHECK(print != ApiKeyAuthority::fingerprint(key.substr(0, key.size() - 1)));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view key(reinterpret_cast<const char*>(data), size);
  const ApiKeyAuthority& authority = signer("k1");  // verifies keys of both kids

  auto agent = authority.verify(key);
  if (agent) {
    FUZZ_CHECK(valid_agent_id(*agent), "verified agent id " + shown(*agent));
    std::string kid(key.substr(4, key.find('.', 4) - 4));
    FUZZ_CHECK(kSecrets.count(kid) == 1, "kid " + shown(kid));
    // The signup form has 3 parts after "alk.", a further key 4 (its nonce third).
    std::string_view rest = key.substr(4);
    std::size_t dots = std::count(rest.begin(), rest.end(), '.');
    std::string reissued;
    if (dots == 2) reissued = signer(kid).issue(*agent);
    else {
      std::string_view nonce = rest.substr(0, rest.rfind('.'));
      nonce = nonce.substr(nonce.rfind('.') + 1);
      reissued = signer(kid).issue_with_nonce(*agent, nonce);
    }
    FUZZ_CHECK(reissued == key, shown(key) + " verified but is not the key issued for " + *agent);
    FUZZ_CHECK(authority.verify_key(key)->key_id == ApiKeyAuthority::key_id(key));
  }
  auto cached = authority.verify(key);
  FUZZ_CHECK(cached == agent, "a second verify of " + shown(key) + " answered differently");
  check_fingerprint(key);

  // The same bytes as a header: authenticate() agrees with verify (a parsed header never holds
  // CR, LF or NUL).
  if (key.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos) {
    al::http::Request request;
    request.headers.set("x-api-key", key);
    auto result = al::auth::authenticate(request, authority);
    std::string_view trimmed = request.header("x-api-key");
    FUZZ_CHECK(result.agent_id == (trimmed.empty() ? std::nullopt : authority.verify(trimmed)));
    if (!result.agent_id) FUZZ_CHECK(result.failure.status == 401);
  }

  // The same bytes as an agent id: its key verifies to it (any kid), and no one-character change
  // of that key does.
  std::string id(key.substr(0, 64));
  if (!valid_agent_id(id)) return 0;
  for (const std::string kid : {"k1", "k2"}) {
    std::string issued = signer(kid).issue(id);
    FUZZ_CHECK(authority.verify(issued) == id, issued + " does not verify");
    std::size_t at = size == 0 ? 0 : data[0] % issued.size();
    std::string changed = issued;
    changed[at] = changed[at] == 'A' ? 'B' : 'A';
    FUZZ_CHECK(!authority.verify(changed), changed + " verifies after changing character " + std::to_string(at));

    std::string further = signer(kid).issue_with_nonce(id, "n0nce-_Z9");
    FUZZ_CHECK(authority.verify(further) == id && further != issued, further + " does not verify");
    at = size == 0 ? 0 : data[0] % further.size();
    changed = further;
    changed[at] = changed[at] == 'A' ? 'B' : 'A';
    FUZZ_CHECK(!authority.verify(changed), changed + " verifies after changing character " + std::to_string(at));
  }
  return 0;
}
