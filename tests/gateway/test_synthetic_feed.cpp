#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include "common/config.hpp"
#include "gateway/synthetic_feed.hpp"
#include "proto/codec.hpp"

namespace {

std::vector<tp::Instrument> default_instruments() { return tp::Config{}.instruments; }

TEST(SyntheticFeed, SameSeedGivesIdenticalSequence) {
  tp::gateway::SyntheticFeed a(default_instruments(), 1234), b(default_instruments(), 1234);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next(i), b.next(i)) << "tick " << i;
}

TEST(SyntheticFeed, DifferentSeedsDiffer) {
  tp::gateway::SyntheticFeed a(default_instruments(), 1), b(default_instruments(), 2);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += a.next(0).bid == b.next(0).bid;
  EXPECT_LT(same, 10);
}

TEST(SyntheticFeed, RoundRobinWithSeqPerInstrumentFromOne) {
  auto insts = default_instruments();
  tp::gateway::SyntheticFeed feed(insts, 42);
  std::map<std::string, std::uint64_t> last;
  for (std::size_t i = 0; i < 400; ++i) {
    auto t = feed.next(static_cast<std::int64_t>(i));
    EXPECT_EQ(t.instrument, insts[i % insts.size()].symbol);
    EXPECT_EQ(t.seq, last[t.instrument] + 1) << t.instrument;
    last[t.instrument] = t.seq;
    EXPECT_EQ(t.source_ts_ns, static_cast<std::int64_t>(i));
  }
  for (const auto& inst : insts) EXPECT_EQ(last[inst.symbol], 100u);
}

TEST(SyntheticFeed, PricesPositiveBookNotCrossedSpreadAsConfigured) {
  auto insts = default_instruments();
  tp::gateway::SyntheticFeed feed(insts, 7);
  for (int i = 0; i < 20000; ++i) {
    auto t = feed.next(1);
    const auto& inst = insts[static_cast<std::size_t>(i) % insts.size()];
    ASSERT_GT(t.bid, 0);
    ASSERT_LE(t.bid, t.ask);
    ASSERT_NEAR(t.ask - t.bid, inst.spread, 1e-9);
    ASSERT_GT(t.bid_volume, 0);
    ASSERT_GT(t.ask_volume, 0);
    ASSERT_FALSE(tp::proto::validate(t).has_value());
  }
}

TEST(SyntheticFeed, WildVolatilityNeverDrivesTheMidToZero) {
  // A step of 10x the price each time: without the reflection the walk would
  // go negative within a few ticks.
  tp::gateway::SyntheticFeed feed({{"XXX", 1.0, 0.01, 10.0}}, 99);
  for (int i = 0; i < 10000; ++i) {
    auto t = feed.next(0);
    ASSERT_GT(t.bid, 0) << "tick " << i;
    ASSERT_LE(t.bid, t.ask);
  }
}

TEST(SyntheticFeed, RefusesBadInstruments) {
  EXPECT_THROW(tp::gateway::SyntheticFeed({}, 1), std::invalid_argument);
  EXPECT_THROW(tp::gateway::SyntheticFeed({{"X", 0.0, 0.1, 0.1}}, 1), std::invalid_argument);
  EXPECT_THROW(tp::gateway::SyntheticFeed({{"X", 1.0, -0.1, 0.1}}, 1), std::invalid_argument);
}

}  // namespace
