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

}  // namespace al
