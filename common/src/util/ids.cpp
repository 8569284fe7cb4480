#include "common/util/ids.hpp"

#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

namespace al {
namespace {
void fill_random(unsigned char* data, std::size_t n) {
  if (RAND_bytes(data, static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
}
}  // namespace

std::string random_token(std::size_t bytes) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::vector<unsigned char> raw(bytes);
  fill_random(raw.data(), raw.size());
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char byte : raw) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::string random_hex(std::size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::vector<unsigned char> raw(bytes);
  fill_random(raw.data(), raw.size());
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char byte : raw) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 15]);
  }
  return out;
}

std::string new_opaque_id(std::string_view prefix) {
  return std::string(prefix) + random_token(16);
}

std::string new_sortable_id(std::string_view prefix, long long unix_ms) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out(prefix);
  // 10 base32 digits = 50 bits of milliseconds, most significant first: ids sort by creation time.
  for (int shift = 45; shift >= 0; shift -= 5)
    out.push_back(kAlphabet[(static_cast<unsigned long long>(unix_ms) >> shift) & 31]);
  return out + random_token(10);  // 80 random bits keep it unguessable
}

namespace {
std::string uuid_text(const unsigned char* b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}
}  // namespace

std::string new_uuid_v4() {
  unsigned char b[16];
  fill_random(b, sizeof b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return uuid_text(b);
}

std::string new_uuid_v7(long long unix_ms) {
  unsigned char b[16];
  fill_random(b, sizeof b);
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(static_cast<unsigned long long>(unix_ms) >> (40 - 8 * i));
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  return uuid_text(b);
}

bool parse_positive_int64(std::string_view text, long long& out) {
  if (text.empty() || text.size() > 19) return false;
  unsigned long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 9223372036854775807ULL) return false;
  out = static_cast<long long>(value);
  return true;
}

namespace {
// The length of the well-formed UTF-8 sequence starting `text` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it does not start one.
std::size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&text](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
  if (length == 0 || text.size() < length) return 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead == 0xE0) low = 0xA0;
  if (lead == 0xED) high = 0x9F;
  if (lead == 0xF0) low = 0x90;
  if (lead == 0xF4) high = 0x8F;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}
}  // namespace

std::string valid_utf8_prefix(std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  while (!text.empty()) {
    std::size_t length = utf8_sequence_length(text);
    std::string_view character = length ? text.substr(0, length) : kReplacement;
    if (out.size() + character.size() > max_bytes) break;
    out.append(character);
    text.remove_prefix(length ? length : 1);
  }
  return out;
}

}  // namespace al
