#pragma once
#include <string>
#include <string_view>

namespace al {

// Cryptographically random, unguessable identifiers.
std::string random_token(std::size_t bytes);            // lowercase base32, no padding
std::string random_hex(std::size_t bytes);              // lowercase hex
std::string new_opaque_id(std::string_view prefix);     // e.g. "agt_" + 26 base32 chars
// prefix + 26 base32 chars that sort by creation time (a time part, then 80 random bits), so
// database indexes on such ids grow at one end instead of touching a random page per insert.
std::string new_sortable_id(std::string_view prefix, long long unix_ms);
std::string new_uuid_v4();                               // RFC 4122 text form
// RFC 9562 version 7: 48 bits of Unix milliseconds, then 74 random bits. Event ids use it so the
// outbox's and consumers' unique indexes on them grow at one end (one page per commit, not one
// random page per event).
std::string new_uuid_v7(long long unix_ms);

// Strict parse of a positive int64 in decimal text (no sign, no spaces, no leading '+').
bool parse_positive_int64(std::string_view text, long long& out);

// `text` as valid UTF-8 of at most `max_bytes` bytes, for echoing a client's bytes (a query
// parameter's name, a JSON key) in a JSON answer: each byte that does not start a well-formed
// UTF-8 sequence becomes U+FFFD, and the text is cut before the first character that would not fit.
std::string valid_utf8_prefix(std::string_view text, std::size_t max_bytes);

}  // namespace al
