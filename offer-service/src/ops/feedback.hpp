#pragma once
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace al::offer {

// POST /api/public/feedback: what an agent or operator reports when a step blocks them.
struct Feedback {
  std::string surface;    // an API path; ids in it are replaced by placeholders
  std::string sentiment;  // blocked | confused | negative | neutral | positive
  std::string category;   // checkout | discovery | negotiation | payment | api | docs | trust | other
  std::string message;    // after redaction
  std::vector<std::string> redactions;  // kinds of secrets found (seed_phrase, api_key, private_key, secret)
  bool raw_message_stored() const { return redactions.empty(); }
};

inline constexpr std::string_view kSentiments[] = {"blocked", "confused", "negative", "neutral", "positive"};
inline constexpr std::string_view kCategories[] = {"checkout", "discovery", "negotiation", "payment",
                                                   "api",      "docs",      "trust",       "other"};

// Replaces what looks like a secret — a BIP-39 seed phrase, an agentlancer API key, a 32-byte hex
// private key, a PEM private key, a bearer token, `password=`/`secret=`/`token=` values, common
// provider key prefixes — by "[redacted:<kind>]"; returns the kinds found.
std::vector<std::string> redact_secrets(std::string& text);
// Replaces each run of 12 or more BIP-39 English words in a row (separated by whitespace, commas,
// semicolons or list numbering such as "1." or "2)", any case) by "[redacted:seed_phrase]";
// true when it replaced one.
bool redact_seed_phrases(std::string& text);
// Private ids in a surface path become placeholders ("/api/agent/threads/thr_x" → "…/{thread_id}").
std::string normalize_surface(std::string_view surface);

// A fixed window per client address: at most `limit` requests per `window`.
class RateLimiter {
 public:
  RateLimiter(int limit, std::chrono::milliseconds window) : limit_(limit), window_(window) {}
  // Seconds to wait when refused; nullopt when allowed (and counted).
  std::optional<long long> acquire(const std::string& client, std::chrono::steady_clock::time_point now);

 private:
  struct Slot {
    std::chrono::steady_clock::time_point start;
    int used = 0;
  };
  int limit_;
  std::chrono::milliseconds window_;
  std::mutex mutex_;
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace al::offer
