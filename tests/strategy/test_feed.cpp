#include <gtest/gtest.h>

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
