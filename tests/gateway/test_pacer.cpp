#include <gtest/gtest.h>

#include "gateway/pacer.hpp"

namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t t0 = 5'000 * ms;  // an arbitrary monotonic start

TEST(Pacer, RateFirstTickAtOnceThenOnePerPeriod) {
  auto p = tp::gateway::Pacer::rate(100);  // one per 10 ms
  EXPECT_FALSE(p.next_due_ns().has_value());
  EXPECT_EQ(p.due_count(t0), 1u);
  p.sent(1);
  EXPECT_EQ(p.next_due_ns(), t0 + 10 * ms);
  EXPECT_EQ(p.due_count(t0 + 9 * ms), 0u);
  EXPECT_EQ(p.due_count(t0 + 10 * ms), 1u);  // exactly at next_due_ns: due
  p.sent(1);
  // Woken late: everything due meanwhile goes out as one batch.
  EXPECT_EQ(p.due_count(t0 + 55 * ms), 4u);  // ticks at 20, 30, 40, 50 ms
  p.sent(4);
  EXPECT_EQ(p.next_due_ns(), t0 + 60 * ms);
  EXPECT_EQ(p.due_count(t0 + 59 * ms), 0u);
}

TEST(Pacer, RateSleepingUntilNextDueAlwaysFindsWork) {
  // Awkward rate whose period is not a whole number of nanoseconds.
  auto p = tp::gateway::Pacer::rate(3.0);
  std::int64_t now = t0;
  for (int i = 0; i < 1000; ++i) {
    auto n = p.due_count(now);
    ASSERT_GE(n, 1u) << "woke at next_due_ns() and found nothing: would spin, tick " << i;
    p.sent(n);
    now = *p.next_due_ns();
  }
  // After 1000 ticks at 3/s the next (the 1001st) is due at 1000 / 3 s.
  EXPECT_NEAR(static_cast<double>(now - t0) / 1e9, 1000.0 / 3.0, 1e-6);
}

TEST(Pacer, RateSkipsBacklogAfterLongStall) {
  auto p = tp::gateway::Pacer::rate(1000);
  p.sent(p.due_count(t0));
  // Stalled for 5 s (SIGSTOP, swap...): no burst of 5000 ticks.
  auto n = p.due_count(t0 + 5000 * ms);
  EXPECT_EQ(n, 1u);
  p.sent(n);
  EXPECT_EQ(p.next_due_ns(), t0 + 5001 * ms);
}

TEST(Pacer, RateZeroIsFlatOut) {
  auto p = tp::gateway::Pacer::rate(0);
  EXPECT_TRUE(p.flat_out());
  EXPECT_GT(p.due_count(t0), 1000u);
  EXPECT_FALSE(p.next_due_ns().has_value());
}

TEST(Pacer, ReplayAtRecordedSpeed) {
  auto p = tp::gateway::Pacer::replay(1.0);
  const std::int64_t src = 1'704'182'400'000 * ms;  // recorded stamps, epoch ns
  EXPECT_EQ(p.due_at(src, t0), t0);                 // the first row is due at once
  EXPECT_EQ(p.due_at(src + 250 * ms, t0 + 1 * ms), t0 + 250 * ms);
  EXPECT_EQ(p.due_at(src + 250 * ms, t0 + 100 * ms), t0 + 250 * ms);  // asking again: same answer
  EXPECT_EQ(p.next_due_ns(), t0 + 250 * ms);
  EXPECT_EQ(p.due_at(src + 250 * ms, t0 + 250 * ms), t0 + 250 * ms);
  EXPECT_EQ(p.due_at(src + 1000 * ms, t0 + 260 * ms), t0 + 1000 * ms);
}

TEST(Pacer, ReplayFasterBySpeedFactor) {
  auto p = tp::gateway::Pacer::replay(10.0);
  const std::int64_t src = 1'000'000 * ms;
  EXPECT_EQ(p.due_at(src, t0), t0);
  EXPECT_EQ(p.due_at(src + 1000 * ms, t0), t0 + 100 * ms);
  EXPECT_EQ(p.due_at(src + 60'000 * ms, t0), t0 + 6000 * ms);
}

TEST(Pacer, ReplayOutOfOrderStampIsDueRightAfterThePrevious) {
  auto p = tp::gateway::Pacer::replay(1.0);
  const std::int64_t src = 1'000'000 * ms;
  p.due_at(src, t0);
  EXPECT_EQ(p.due_at(src + 500 * ms, t0), t0 + 500 * ms);
  // Goes back 300 ms: due with the previous one, and the schedule continues
  // from there rather than waiting out the 300 ms again.
  EXPECT_EQ(p.due_at(src + 200 * ms, t0 + 500 * ms), t0 + 500 * ms);
  EXPECT_EQ(p.due_at(src + 300 * ms, t0 + 500 * ms), t0 + 600 * ms);
}

TEST(Pacer, ReplaySpeedZeroIsFlatOut) {
  auto p = tp::gateway::Pacer::replay(0);
  EXPECT_TRUE(p.flat_out());
  EXPECT_EQ(p.due_at(1, t0), t0);
  EXPECT_EQ(p.due_at(1'000'000 * ms, t0), t0);
  EXPECT_FALSE(p.next_due_ns().has_value());
}

}  // namespace
