#include "ops/feedback.hpp"

#include <algorithm>
#include <regex>

namespace al::offer {

std::vector<std::string> redact_secrets(std::string& text) {
  struct Pattern {
    const char* kind;
    std::regex re;
  };
  // Ordered: the most specific first, so a key is named for what it is.
  static const std::vector<Pattern> patterns = [] {
    auto icase = std::regex::ECMAScript | std::regex::icase;
    return std::vector<Pattern>{
        {"private_key", std::regex("-----BEGIN [A-Z ]*PRIVATE KEY-----[\\s\\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)")},
        {"api_key", std::regex("alk\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_-]{16,}")},
        {"private_key", std::regex("\\b(0x)?[0-9a-fA-F]{64}\\b")},
        {"api_key", std::regex("\\b(sk|pk|rk)[-_](live|test|proj)?[-_]?[A-Za-z0-9]{16,}\\b")},
        {"api_key", std::regex("\\b(ghp|gho|github_pat|xox[abpr]|AKIA)[A-Za-z0-9_-]{12,}\\b")},
        {"secret", std::regex("\\bbearer\\s+[A-Za-z0-9._~+/=-]{16,}", icase)},
        {"secret", std::regex("\\b(password|passwd|secret|token|api[-_]?key|x-api-key)\\s*[:=]\\s*[^\\s,;'\"]{6,}", icase)},
        {"secret", std::regex("\\b(seed phrase|mnemonic)\\b[^.]*", icase)},
    };
  }();
  std::vector<std::string> kinds;
  for (const auto& p : patterns) {
    std::string replaced = std::regex_replace(text, p.re, std::string("[redacted:") + p.kind + "]");
    if (replaced != text) {
      text = std::move(replaced);
      if (std::find(kinds.begin(), kinds.end(), p.kind) == kinds.end()) kinds.emplace_back(p.kind);
    }
  }
  return kinds;
}

std::string normalize_surface(std::string_view surface) {
  static const std::vector<std::pair<std::regex, const char*>> ids = {
      {std::regex("thr_[a-z2-7]+"), "{thread_id}"}, {std::regex("off_[a-z2-7]+"), "{offer_id}"},
      {std::regex("ctr_[a-z2-7]+"), "{contract_id}"}, {std::regex("svc_[a-z2-7]+"), "{service_id}"},
      {std::regex("msg_[a-z2-7]+"), "{message_id}"}, {std::regex("agt_[a-z2-7]+"), "{agent_id}"},
      {std::regex("/jobs/[0-9]+"), "/jobs/{job_id}"}};
  std::string out(surface);
  for (const auto& [re, placeholder] : ids) out = std::regex_replace(out, re, placeholder);
  return out;
}

std::optional<long long> RateLimiter::acquire(const std::string& client, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (slots_.size() > 100'000) slots_.clear();  // bounded memory; a cleared window starts afresh
  Slot& slot = slots_[client];
  if (slot.used == 0 || now - slot.start >= window_) {
    slot.start = now;
    slot.used = 0;
  }
  if (slot.used >= limit_) {
    auto wait = std::chrono::duration_cast<std::chrono::seconds>(slot.start + window_ - now).count();
    return std::max(1LL, static_cast<long long>(wait) + 1);
  }
  ++slot.used;
  return std::nullopt;
}

}  // namespace al::offer
