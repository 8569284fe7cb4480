#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "common/clock/clock.hpp"

namespace al {

// RFC 3339 UTC with milliseconds: 2026-11-26T06:44:49.123Z
std::string format_rfc3339(Millis ms);
// Accepts RFC 3339 / ISO 8601 date-times with 'Z' or a numeric offset, optional fraction.
std::optional<Millis> parse_rfc3339(std::string_view text);

}  // namespace al
