#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>

namespace al {

// Milliseconds since the Unix epoch. Every expiry, window and timestamp goes through a Clock so
// tests move time explicitly instead of sleeping.
using Millis = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Millis now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  static SystemClock& instance() {
    static SystemClock clock;
    return clock;
  }
};

}  // namespace al
