#pragma once
// Invariant checks for the fuzz targets: a broken invariant prints what broke and aborts, which
// libFuzzer reports as a crash and saves the input.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace al::fuzz {

[[noreturn]] inline void invariant_failed(const char* condition, const char* file, int line, std::string_view detail) {
  std::fprintf(stderr, "\n== invariant failed at %s:%d: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "== %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Printable form of fuzzer bytes for messages (C-style escapes, cut at 300 characters).
inline std::string shown(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes.substr(0, 300)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (bytes.size() > 300) out += "...";
  return out;
}

inline std::string detail() { return {}; }
inline std::string detail(std::string text) { return text; }

}  // namespace al::fuzz

// FUZZ_CHECK(condition) or FUZZ_CHECK(condition, detail): detail (a std::string) is evaluated
// only on failure.
#define FUZZ_CHECK(condition, ...)                                                                     \
  do {                                                                                                 \
    if (!(condition))                                                                                  \
      ::al::fuzz::invariant_failed(#condition, __FILE__, __LINE__, ::al::fuzz::detail(__VA_ARGS__));   \
  } while (0)
