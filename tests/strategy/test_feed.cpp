#include <gtest/gtest.h>

#include <limits>

#include "common/clock.hpp"
#include "strategy/feed.hpp"

using namespace tp::strategy;

TEST(SeqTracker, CountsGapsDuplicatesAndRestarts) {
  SeqTracker t;
  EXPECT_EQ(t.on_seq(1), SeqVerdict::accept);
  EXPECT_EQ(t.on_seq(2), SeqVerdict::accept);
  EXPECT_EQ(t.on_seq(5), SeqVerdict::accept);  // 3 and 4 missed
  EXPECT_EQ(t.gaps(), 2u);
  EXPECT_EQ(t.on_seq(5), SeqVerdict::stale);  // duplicate
  EXPECT_EQ(t.on_seq(4), SeqVerdict::stale);  // late
  EXPECT_EQ(t.out_of_order(), 2u);
  EXPECT_EQ(t.on_seq(6), SeqVerdict::accept);
  EXPECT_EQ(t.last(), 6u);
  EXPECT_EQ(t.on_seq(1), SeqVerdict::restart);  // gateway restarted
  EXPECT_EQ(t.restarts(), 1u);
  EXPECT_EQ(t.on_seq(2), SeqVerdict::accept);
  EXPECT_EQ(t.gaps(), 2u);
  EXPECT_EQ(t.out_of_order(), 2u);
}

TEST(SeqTracker, JoiningMidStreamIsNotAGap) {
  SeqTracker t;
  EXPECT_EQ(t.on_seq(1000), SeqVerdict::accept);
  EXPECT_EQ(t.on_seq(1001), SeqVerdict::accept);
  EXPECT_EQ(t.gaps(), 0u);
}

TEST(SeqTracker, RepeatedFirstTickIsADuplicateNotARestart) {
  SeqTracker t;
  EXPECT_EQ(t.on_seq(1), SeqVerdict::accept);
  EXPECT_EQ(t.on_seq(1), SeqVerdict::stale);
  EXPECT_EQ(t.restarts(), 0u);
  EXPECT_EQ(t.out_of_order(), 1u);
}

TEST(FeedMonitor, AliveWithinTimeoutOnly) {
  tp::FakeClock clock;
  FeedMonitor feed(2000 * tp::ns_per_ms);
  EXPECT_FALSE(feed.alive(clock.now_ns()));  // nothing seen yet
  feed.on_activity(clock.now_ns());
  EXPECT_TRUE(feed.alive(clock.now_ns()));
  clock.advance_ms(2000);
  EXPECT_TRUE(feed.alive(clock.now_ns()));
  clock.advance_ns(1);
  EXPECT_FALSE(feed.alive(clock.now_ns()));
  feed.on_activity(clock.now_ns());  // a heartbeat revives it
  EXPECT_TRUE(feed.alive(clock.now_ns()));
}

namespace {
TEST(SeqTrackerRestart, AHeartbeatSaidRestartAcceptsAnySeqAsANewSeries) {
  tp::strategy::SeqTracker t;
  for (std::uint64_t s = 1; s <= 5000; ++s) t.on_seq(s);
  // The restarted gateway's first ticks were lost while the SUB reconnected.
  EXPECT_EQ(t.on_seq(10), tp::strategy::SeqVerdict::stale);
  t.expect_restart();
  EXPECT_EQ(t.on_seq(12), tp::strategy::SeqVerdict::restart);
  EXPECT_EQ(t.on_seq(13), tp::strategy::SeqVerdict::accept);
  EXPECT_EQ(t.on_seq(13), tp::strategy::SeqVerdict::stale);  // one restart, not a free pass
  EXPECT_EQ(t.restarts(), 1u);
  EXPECT_EQ(t.gaps(), 0u);
}
}  // namespace

namespace {
using tp::ns_per_ms;

// The default bounds: max_tick_age_ms 5000, max_clock_skew_ms 1000,
// max_signal_tick_age_ms 250.
constexpr Freshness defaults{
    .max_age_ns = 5000 * ns_per_ms, .max_skew_ns = 1000 * ns_per_ms, .max_signal_age_ns = 250 * ns_per_ms};

TEST(Freshness, JudgesAStampAgainstTheAgeAndSkewBounds) {
  const std::int64_t now = 1'800'000'000'000'000'000;
  EXPECT_EQ(defaults.judge(now, now), StampVerdict::fresh);
  EXPECT_EQ(defaults.judge(now - 5000 * ns_per_ms, now), StampVerdict::fresh);
  EXPECT_EQ(defaults.judge(now - 5000 * ns_per_ms - 1, now), StampVerdict::stale);
  EXPECT_EQ(defaults.judge(now - 6000 * ns_per_ms, now), StampVerdict::stale);  // a gateway 6 s behind
  EXPECT_EQ(defaults.judge(now + 1000 * ns_per_ms, now), StampVerdict::fresh);
  EXPECT_EQ(defaults.judge(now + 1000 * ns_per_ms + 1, now), StampVerdict::future);
  // Hostile stamps do not wrap round into fresh.
  EXPECT_EQ(defaults.judge(std::numeric_limits<std::int64_t>::min(), now), StampVerdict::stale);
  EXPECT_EQ(defaults.judge(std::numeric_limits<std::int64_t>::max(), -now), StampVerdict::future);
}

TEST(Freshness, ATickOlderThanTheSignalBoundMovesIndicatorsButIsNotTraded) {
  const std::int64_t now = 1'800'000'000'000'000'000;
  for (const std::int64_t age_ms : {0, 1, 250}) {
    EXPECT_EQ(defaults.judge(now - age_ms * ns_per_ms, now), StampVerdict::fresh) << age_ms;
    EXPECT_TRUE(defaults.tradeable(now - age_ms * ns_per_ms, now)) << age_ms;
  }
  // A backlog: believed (indicators), not traded on.
  for (const std::int64_t age_ms : {251, 3000, 4900}) {
    EXPECT_EQ(defaults.judge(now - age_ms * ns_per_ms, now), StampVerdict::fresh) << age_ms;
    EXPECT_FALSE(defaults.tradeable(now - age_ms * ns_per_ms, now)) << age_ms;
  }
  EXPECT_FALSE(defaults.tradeable(now - 250 * ns_per_ms - 1, now));
  // Stamped ahead within the skew: as fresh as now.
  EXPECT_TRUE(defaults.tradeable(now + 900 * ns_per_ms, now));
  EXPECT_FALSE(defaults.tradeable(std::numeric_limits<std::int64_t>::min(), now));
}

TEST(FeedMonitor, AFeedWhoseEveryTickAndHeartbeatIsRefusedIsDead) {
  tp::FakeClock clock;
  FeedMonitor feed(2000 * ns_per_ms);
  // A gateway 6 s behind: ticks every 4 ms, heartbeats every 500 ms, all of
  // them stamped 6 s ago.
  for (int ms = 0; ms <= 4000; ms += 4) {
    const auto now = clock.now_ns();
    EXPECT_FALSE(feed.on_message(now, defaults.judge(now - 6000 * ns_per_ms, now)));
    EXPECT_FALSE(feed.alive(now)) << ms;
    clock.advance_ms(4);
  }
  // It comes back: one believed heartbeat makes it alive.
  auto now = clock.now_ns();
  EXPECT_TRUE(feed.on_message(now, defaults.judge(now - 1 * ns_per_ms, now)));
  EXPECT_TRUE(feed.alive(now));
  // Then its clock falls behind again: alive for feed_timeout_ms, then dead
  // although messages keep arriving.
  for (int ms = 0; ms < 2000; ms += 100) {
    clock.advance_ms(100);
    now = clock.now_ns();
    feed.on_message(now, defaults.judge(now - 5001 * ns_per_ms, now));
    EXPECT_TRUE(feed.alive(now)) << ms;
  }
  clock.advance_ms(100);
  now = clock.now_ns();
  feed.on_message(now, defaults.judge(now + 1001 * ns_per_ms, now));  // nor is a future stamp believed
  EXPECT_FALSE(feed.alive(now));
}
}  // namespace
