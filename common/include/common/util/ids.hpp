#pragma once
#include <string>
#include <string_view>

namespace al {

// Cryptographically random, unguessable identifiers.
std::string random_token(std::size_t bytes);            // lowercase base32, no padding
std::string random_hex(std::size_t bytes);              // lowercase hex
std::string new_opaque_id(std::string_view prefix);     // e.g. "agt_" + 26 base32 chars
std::string new_uuid_v4();                               // RFC 4122 text form

// Strict parse of a positive int64 in decimal text (no sign, no spaces, no leading '+').
bool parse_positive_int64(std::string_view text, long long& out);

}  // namespace al
