// RFC 3339 date-times (common/src/util/time_format.cpp): parse_rfc3339 reads what clients send
// (expiredAt), format_rfc3339 writes every timestamp the API returns. Checks: a canonical UTC
// text ("2026-11-26T06:44:49.123Z") parses and prints back unchanged; what parses prints as a
// 24-character text that parses to the same instant (years 0000-9999); the calendar is checked
// against the C library's timegm; millisecond instants of those years print and parse back.
//
// Input: a date-time text; or, when it is exactly 8 bytes and does not parse, an instant in
// milliseconds (little endian) within years 0000-9999.
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

#include "common/util/time_format.hpp"
#include "fuzz_check.hpp"

namespace {
using al::Millis;
using al::fuzz::shown;

constexpr Millis kFirst = -62167219200000;  // 0000-01-01T00:00:00.000Z
constexpr Millis kLast = 253402300799999;   // 9999-12-31T23:59:59.999Z

void check_instant(Millis ms) {
  std::string text = al::format_rfc3339(ms);
  FUZZ_CHECK(text.size() == 24 && text[10] == 'T' && text[23] == 'Z', std::to_string(ms) + " printed as " + text);
  auto again = al::parse_rfc3339(text);
  FUZZ_CHECK(again && *again == ms, std::to_string(ms) + " printed as " + text + " which reads back as " +
                                        (again ? std::to_string(*again) : "nothing"));
}

bool is_canonical(std::string_view s) {
  if (s.size() != 24 || s[10] != 'T' || s[19] != '.' || s[23] != 'Z') return false;
  if (s[17] == '6') return false;  // a leap second reads as :59
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22})
    if (s[i] < '0' || s[i] > '9') return false;
  return s[4] == '-' && s[7] == '-' && s[13] == ':' && s[16] == ':';
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ms = al::parse_rfc3339(text);
  if (ms) {
    // Any offset may move a year-0000 or year-9999 instant out of the four-digit years.
    if (*ms >= kFirst && *ms <= kLast) check_instant(*ms);
    if (is_canonical(text)) {
      FUZZ_CHECK(al::format_rfc3339(*ms) == text, shown(text) + " printed back as " + al::format_rfc3339(*ms));
    }
    // The calendar (days per month, leap years) agrees with the C library for dates that parse.
    std::tm tm{};
    tm.tm_year = std::stoi(std::string(text.substr(0, 4))) - 1900;
    tm.tm_mon = std::stoi(std::string(text.substr(5, 2))) - 1;
    tm.tm_mday = std::stoi(std::string(text.substr(8, 2)));
    std::time_t midnight = timegm(&tm);
    std::tm back{};
    gmtime_r(&midnight, &back);
    FUZZ_CHECK(back.tm_mday == std::stoi(std::string(text.substr(8, 2))), shown(text) + " is not a calendar date");
  } else if (size == 8) {
    std::uint64_t raw;
    std::memcpy(&raw, data, 8);
    check_instant(kFirst + static_cast<Millis>(raw % static_cast<std::uint64_t>(kLast - kFirst + 1)));
  }
  return 0;
}
