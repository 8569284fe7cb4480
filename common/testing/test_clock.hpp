#pragma once
#include <atomic>

#include "common/clock/clock.hpp"

namespace al::testing {

// A clock tests move by hand: no test sleeps to wait for time to pass.
class TestClock final : public Clock {
 public:
  explicit TestClock(Millis start = 1'800'000'000'000) : now_(start) {}
  Millis now_ms() const override { return now_.load(); }
  void set(Millis t) { now_.store(t); }
  void advance(Millis delta) { now_.fetch_add(delta); }

 private:
  std::atomic<Millis> now_;
};

}  // namespace al::testing
