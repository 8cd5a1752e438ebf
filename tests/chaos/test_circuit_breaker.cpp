// The executor's circuit breaker, driven by a FakeClock: no sockets.
#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "executor/circuit_breaker.hpp"

namespace {

using tp::FakeClock;
using tp::executor::BreakerOptions;
using tp::executor::BreakerState;
using tp::executor::CircuitBreaker;

constexpr std::int64_t cooling_ms = 2000;
const BreakerOptions options{.failure_threshold = 3, .cooling_ns = cooling_ms * tp::ns_per_ms};

TEST(CircuitBreaker, StartsClosedAndAllows) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  EXPECT_EQ(b.state(), BreakerState::closed);
  EXPECT_TRUE(b.allow());
  EXPECT_TRUE(b.allow());  // closed: no limit
  EXPECT_EQ(b.opens(), 0u);
}

TEST(CircuitBreaker, OpensAfterThresholdConsecutiveFailures) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  b.on_failure();
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::closed);
  EXPECT_EQ(b.consecutive_failures(), 2);
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::open);
  EXPECT_EQ(b.opens(), 1u);
  EXPECT_FALSE(b.allow());
}

TEST(CircuitBreaker, SuccessResetsTheFailureRun) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  b.on_failure();
  b.on_failure();
  b.on_success();
  b.on_failure();
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::closed);  // 2 in a row, not 4
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::open);
}

TEST(CircuitBreaker, StaysOpenForTheCoolingPeriodThenLetsOneProbeThrough) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  for (int i = 0; i < 3; ++i) b.on_failure();
  clock.advance_ms(cooling_ms - 1);
  EXPECT_FALSE(b.allow());
  EXPECT_EQ(b.state(), BreakerState::open);
  clock.advance_ms(1);
  EXPECT_TRUE(b.allow());  // the probe
  EXPECT_EQ(b.state(), BreakerState::half_open);
  EXPECT_FALSE(b.allow());  // only one probe at a time
  EXPECT_FALSE(b.allow());
}

TEST(CircuitBreaker, ProbeSuccessCloses) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  for (int i = 0; i < 3; ++i) b.on_failure();
  clock.advance_ms(cooling_ms);
  ASSERT_TRUE(b.allow());
  b.on_success();
  EXPECT_EQ(b.state(), BreakerState::closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_TRUE(b.allow());
  EXPECT_EQ(b.opens(), 1u);
  // A fresh run of failures is needed to open again.
  b.on_failure();
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::closed);
}

TEST(CircuitBreaker, ProbeFailureReopensForAnotherCoolingPeriod) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  for (int i = 0; i < 3; ++i) b.on_failure();
  clock.advance_ms(cooling_ms);
  ASSERT_TRUE(b.allow());
  clock.advance_ms(500);  // the probe took a while
  b.on_failure();         // one failure is enough in half-open
  EXPECT_EQ(b.state(), BreakerState::open);
  EXPECT_EQ(b.opens(), 2u);
  EXPECT_EQ(b.retry_at_ns(), clock.monotonic_ns() + cooling_ms * tp::ns_per_ms);
  clock.advance_ms(cooling_ms - 1);
  EXPECT_FALSE(b.allow());
  clock.advance_ms(1);
  EXPECT_TRUE(b.allow());
  EXPECT_EQ(b.state(), BreakerState::half_open);
}

TEST(CircuitBreaker, ThresholdOfOneAndZeroCooling) {
  FakeClock clock;
  CircuitBreaker b(BreakerOptions{.failure_threshold = 0, .cooling_ns = -5}, clock);  // clamped to 1 and 0
  b.on_failure();
  EXPECT_EQ(b.state(), BreakerState::open);
  EXPECT_TRUE(b.allow());  // cooling 0: probe at once
  EXPECT_EQ(b.state(), BreakerState::half_open);
}

TEST(CircuitBreaker, CoolingIsMeasuredOnMonotonicTimeNotTheWallClock) {
  FakeClock clock;
  CircuitBreaker b(options, clock);
  for (int i = 0; i < 3; ++i) b.on_failure();
  clock.set_ns(clock.now_ns() + 3600 * 1000 * tp::ns_per_ms);  // the wall clock stepped an hour ahead
  EXPECT_FALSE(b.allow()) << "a wall-clock step does not end the cooling period";
  clock.advance_ms(cooling_ms);
  EXPECT_TRUE(b.allow());
}

TEST(CircuitBreaker, StateNames) {
  EXPECT_EQ(to_string(BreakerState::closed), "closed");
  EXPECT_EQ(to_string(BreakerState::open), "open");
  EXPECT_EQ(to_string(BreakerState::half_open), "half_open");
}

}  // namespace
