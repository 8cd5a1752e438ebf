// Hand-built series: each strategy fires exactly where expected.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

#include "strategy/strategies.hpp"

using namespace tp::strategy;
using tp::proto::Side;

namespace {

// Feeds `mids` and returns index -> side of every decision.
std::map<std::size_t, Side> run(Strategy& s, const std::vector<double>& mids) {
  std::map<std::size_t, Side> out;
  for (std::size_t i = 0; i < mids.size(); ++i) {
    if (auto d = s.on_mid(mids[i])) {
      EXPECT_GE(d->confidence, 0.0);
      EXPECT_LE(d->confidence, 1.0);
      out[i] = d->side;
    }
  }
  return out;
}

}  // namespace

TEST(SmaCrossover, FiresOnCrossesOnly) {
  SmaCrossover s(2, 3);
  //                 0     1     2     3     4    5    6    7
  const std::vector<double> mids{10, 10, 10, 11, 9, 8, 8, 12};
  // 2: equal (no sign); 3: fast above (first sign, no cross); 4: equal again;
  // 5: fast below -> SELL; 6: still below; 7: above -> BUY.
  EXPECT_EQ(run(s, mids), (std::map<std::size_t, Side>{{5, Side::sell}, {7, Side::buy}}));
}

TEST(SmaCrossover, NothingWhileWarmingUp) {
  SmaCrossover s(1, 5);
  EXPECT_TRUE(run(s, {1, 2, 1, 2}).empty());
}

TEST(RsiReversion, FiresOnLevelCrossings) {
  RsiReversion s(2, 30, 70);
  //                 0   1   2   3     4   5  6   7
  const std::vector<double> mids{10, 11, 12, 11.9, 10, 9, 12, 12.1};
  // RSI: 2:100 3:90.9 4:20.4 (crosses below 30 -> BUY) 5:11.2 6:76 (crosses
  // above 70 -> SELL) 7:77.1.
  EXPECT_EQ(run(s, mids), (std::map<std::size_t, Side>{{4, Side::buy}, {6, Side::sell}}));
}

TEST(Breakout, FiresOncePerBreakout) {
  Breakout s(3);
  //                 0   1   2     3     4     5     6     7     8     9    10
  const std::vector<double> mids{10, 11, 10.5, 10.8, 11.5, 11.6, 11.0, 11.7, 10.9, 10.0, 11.7};
  // 4: above max 11 -> BUY; 5: still breaking up (same breakout); 7: above
  // 11.6 -> BUY; 8: below min 11.0 -> SELL; 9: still breaking down; 10:
  // equal to the max is not above it.
  EXPECT_EQ(run(s, mids), (std::map<std::size_t, Side>{{4, Side::buy}, {7, Side::buy}, {8, Side::sell}}));
}

TEST(MakeStrategy, ByName) {
  tp::StrategyConfig cfg;
  for (const char* name : {"sma_crossover", "rsi_reversion", "breakout"}) {
    cfg.name = name;
    auto s = make_strategy(cfg);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name(), name);
  }
  cfg.name = "martingale";
  EXPECT_THROW(make_strategy(cfg), tp::ConfigError);
}

TEST(MakeStrategy, DefaultsFireOnARandomWalk) {
  // The demo wants signals fairly often with the default parameters.
  tp::StrategyConfig cfg;
  for (const char* name : {"sma_crossover", "rsi_reversion", "breakout"}) {
    cfg.name = name;
    auto s = make_strategy(cfg);
    std::uint32_t state = 12345;
    double mid = 1.085;
    int fired = 0;
    for (int i = 0; i < 1000; ++i) {
      state = state * 1664525u + 1013904223u;
      mid += (state >> 31) ? 0.00005 : -0.00005;
      if (s->on_mid(mid)) ++fired;
    }
    EXPECT_GE(fired, 5) << name;
  }
}

namespace {
TEST(EveryNth, FiresOnEveryNthTickAlternatingSides) {
  tp::StrategyConfig cfg;
  cfg.name = "every_nth";
  cfg.every_nth.n = 3;
  auto s = tp::strategy::make_strategy(cfg);
  std::vector<std::optional<tp::proto::Side>> got;
  for (int i = 0; i < 9; ++i) {
    auto d = s->on_mid(1.0 + i);
    got.push_back(d ? std::optional(d->side) : std::nullopt);
  }
  using tp::proto::Side;
  std::vector<std::optional<Side>> want{std::nullopt, std::nullopt, Side::buy,    std::nullopt, std::nullopt,
                                        Side::sell,   std::nullopt, std::nullopt, Side::buy};
  EXPECT_EQ(got, want);
}
}  // namespace
