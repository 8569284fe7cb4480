// al::Decimal (common/src/money/decimal.cpp): every amount a client sends. Checks more than "no
// crash": what parses prints canonically and reads back as the same value, the printed text is
// the same number as the input, ordering agrees with the numbers, from_double never changes the
// double it was given and from_int agrees with parse.
//
// Input: one amount ("25.00"), or two separated by a newline (both checked, then compared).
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/money/decimal.hpp"
#include "fuzz_check.hpp"

namespace {
using al::Decimal;
using al::fuzz::shown;

// The oracle, on text only: "-007.500" -> "-7.5", "-0.0" -> "0". Only for text parse accepted.
std::string canonical(std::string_view text) {
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  std::string_view whole = text.substr(0, text.find('.'));
  std::string_view fraction = whole.size() < text.size() ? text.substr(whole.size() + 1) : std::string_view{};
  whole.remove_prefix(std::min(whole.find_first_not_of('0'), whole.size() - 1));
  fraction = fraction.substr(0, fraction.find_last_not_of('0') + 1);
  std::string out(whole);
  if (!fraction.empty()) out += "." + std::string(fraction);
  if (negative && out != "0") out.insert(0, "-");
  return out;
}

// Compares two canonical decimal texts as numbers.
int compare_canonical(std::string a, std::string b) {
  bool na = a[0] == '-', nb = b[0] == '-';
  if (na != nb) return na ? -1 : 1;
  if (na) {
    a.erase(0, 1);
    b.erase(0, 1);
  }
  std::string aw = a.substr(0, a.find('.')), bw = b.substr(0, b.find('.'));
  std::string af = aw.size() < a.size() ? a.substr(aw.size() + 1) : "";
  std::string bf = bw.size() < b.size() ? b.substr(bw.size() + 1) : "";
  int c = aw.size() != bw.size() ? (aw.size() < bw.size() ? -1 : 1) : aw.compare(bw);
  if (c == 0) c = af.compare(bf);  // no trailing zeros: lexicographic is numeric
  c = c < 0 ? -1 : c > 0 ? 1 : 0;
  return na ? -c : c;
}

std::optional<Decimal> check_one(std::string_view text) {
  auto d = Decimal::parse(text);
  if (!d) return std::nullopt;
  std::string printed = d->to_string();
  FUZZ_CHECK(printed == canonical(text), shown(text) + " printed as " + printed + ", expected " + canonical(text));
  auto again = Decimal::parse(printed);
  FUZZ_CHECK(again && *again == *d, shown(text) + " printed as " + printed + " which reads back differently");
  FUZZ_CHECK(d->is_zero() == (printed == "0"));
  FUZZ_CHECK(d->is_negative() == (printed[0] == '-'));

  long long integer = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
  if (ec == std::errc() && end == text.data() + text.size()) {
    FUZZ_CHECK(Decimal::from_int(integer) == *d, shown(text) + ": from_int differs from parse");
    FUZZ_CHECK(Decimal::from_int(integer).to_string() == std::to_string(integer));
  }
  return d;
}

// A JSON number the reader hands to from_double (only |x| < 1e20, as ObjectReader does): the
// decimal it gives, read as a double again, is the same double.
void check_double(std::string_view text) {
  std::string copy(text);
  char* end = nullptr;
  double x = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !(x > -1e20 && x < 1e20)) return;
  auto d = Decimal::from_double(x);
  if (!d) return;
  std::string printed = d->to_string();
  FUZZ_CHECK(std::strtod(printed.c_str(), nullptr) == x, shown(text) + " became " + printed);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view first = input.substr(0, input.find('\n'));
  std::string_view second = first.size() < input.size() ? input.substr(first.size() + 1) : std::string_view{};
  auto a = check_one(first);
  check_double(first);
  if (first.size() == input.size()) return 0;
  auto b = check_one(second);
  check_double(second);
  if (a && b) {
    int expected = compare_canonical(a->to_string(), b->to_string());
    auto order = *a <=> *b;
    int got = order < 0 ? -1 : order > 0 ? 1 : 0;
    FUZZ_CHECK(got == expected, a->to_string() + " vs " + b->to_string());
  }
  return 0;
}
