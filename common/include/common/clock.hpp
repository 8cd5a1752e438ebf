// Time. Every stamp on the wire is wall-clock nanoseconds since the Unix epoch
// so that processes can compare them. Components take a Clock& so that tests
// can drive timers and expiry with a FakeClock.
#pragma once

#include <chrono>
#include <cstdint>

namespace tp {

inline std::int64_t wall_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline constexpr std::int64_t ns_per_ms = 1'000'000;

// Wall time stamps messages and decides expiry; monotonic time drives timers
// and timeouts, which must not jump when the wall clock is stepped.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ns() const = 0;        // wall clock, epoch nanoseconds
  virtual std::int64_t monotonic_ns() const = 0;  // arbitrary origin, never goes back
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_ns() const override { return wall_ns(); }
  std::int64_t monotonic_ns() const override { return tp::monotonic_ns(); }
};

// Stands still until told to move; for tests. Advancing moves wall and
// monotonic time together; set_ns steps only the wall clock, as an operator
// or NTP would.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t start_ns = 1'700'000'000'000'000'000) : now_(start_ns) {}
  std::int64_t now_ns() const override { return now_; }
  std::int64_t monotonic_ns() const override { return mono_; }
  void advance_ns(std::int64_t d) {
    now_ += d;
    mono_ += d;
  }
  void advance_ms(std::int64_t d) { advance_ns(d * ns_per_ms); }
  void set_ns(std::int64_t t) { now_ = t; }

 private:
  std::int64_t now_;
  std::int64_t mono_ = 1'000'000'000;
};

}  // namespace tp
