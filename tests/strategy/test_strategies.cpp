// Hand-built series: each strategy fires exactly where expected.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "fake_context.hpp"
#include "strategy/strategies.hpp"

using namespace tp::strategy;
using tp::proto::Side;

namespace {

// Feeds `mids` and returns index -> side of every decision.
std::map<std::size_t, Side> run(MidStrategy& s, const std::vector<double>& mids) {
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

tp::Params params(std::map<std::string, std::string, std::less<>> values) {
  return tp::Params(std::move(values), "strategy.groups[g].params");
}

TEST(MakeStrategy, ByName) {
  for (const char* name : {"sma_crossover", "rsi_reversion", "breakout", "every_nth"}) {
    auto s = make_mid_strategy(name, tp::Params{});
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->name(), name);
  }
  EXPECT_THROW(make_mid_strategy("martingale", tp::Params{}), tp::ConfigError);
}

TEST(MakeStrategy, ParametersAreCheckedNamingTheKey) {
  const auto error_of = [](const char* kind, std::map<std::string, std::string, std::less<>> values) {
    try {
      make_mid_strategy(kind, params(std::move(values)));
    } catch (const tp::ParamError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(
      error_of("sma_crossover", {{"fast", "30"}, {"slow", "10"}}).find("strategy.groups[g].params.slow"),
      std::string::npos);
  EXPECT_NE(error_of("sma_crossover", {{"fast", "ten"}}).find("params.fast must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of("rsi_reversion", {{"oversold", "80"}}).find("params.oversold"), std::string::npos);
  EXPECT_NE(error_of("breakout", {{"window", "1"}}).find("params.window must be >= 2"), std::string::npos);
  EXPECT_NE(error_of("every_nth", {{"n", "0"}}).find("params.n"), std::string::npos);
  EXPECT_EQ(error_of("every_nth", {{"n", "3"}}), "");
}

TEST(MakeStrategy, UnreadParametersAreVisibleToTheRuntime) {
  auto p = params({{"fast", "5"}, {"slow", "20"}, {"sloww", "40"}});
  make_mid_strategy("sma_crossover", p);
  EXPECT_EQ(p.unread(), std::vector<std::string>{"sloww"});
}

TEST(MakeStrategy, DefaultsFireOnARandomWalk) {
  // The demo wants signals fairly often with the default parameters.
  for (const char* name : {"sma_crossover", "rsi_reversion", "breakout"}) {
    auto s = make_mid_strategy(name, tp::Params{});
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
  auto s = make_mid_strategy("every_nth", params({{"n", "3"}}));
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

// On a 5-decimal random walk the crossover fires exactly where exact decimal
// averages cross: prices are whole ticks, so the averages compare exactly as
// integers (fast_sum * slow - slow_sum * fast). Equal averages that differ
// in the last place by rounding are touching, not crossing.
TEST(SmaCrossover, FiresExactlyWhereExactDecimalAveragesCross) {
  constexpr std::size_t fast = 10, slow = 50, n = 200'000;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> step(-1, 1);
  std::vector<std::int64_t> ticks;  // the price in units of 1e-5
  std::int64_t t = 100'000;
  for (std::size_t i = 0; i < n; ++i) ticks.push_back(t += step(rng));

  std::map<std::size_t, Side> exact;
  int last_sign = 0;
  for (std::size_t i = slow - 1; i < n; ++i) {
    std::int64_t fs = 0, ss = 0;
    for (std::size_t k = 0; k < fast; ++k) fs += ticks[i - k];
    for (std::size_t k = 0; k < slow; ++k) ss += ticks[i - k];
    const std::int64_t gap = fs * static_cast<std::int64_t>(slow) - ss * static_cast<std::int64_t>(fast);
    const int sign = gap > 0 ? 1 : gap < 0 ? -1 : 0;
    if (sign == 0) continue;
    if (last_sign != 0 && last_sign != sign) exact[i] = sign > 0 ? Side::buy : Side::sell;
    last_sign = sign;
  }

  std::vector<double> mids;
  for (auto x : ticks) mids.push_back(static_cast<double>(x) / 1e5);
  SmaCrossover s(fast, slow);
  const auto fired = run(s, mids);
  ASSERT_GT(exact.size(), 100u);  // the walk crosses often enough to tell
  EXPECT_EQ(fired, exact);
}

// A long flat stretch after real moves: RSI's averages decay towards the
// smallest doubles, but RSI stays where it was and nothing fires.
TEST(RsiReversion, ALongFlatStretchFiresNothing) {
  RsiReversion s(14, 30, 70);
  std::vector<double> mids;
  for (int i = 0; i < 30; ++i) mids.push_back(1.0 + 0.0001 * (i % 3));
  run(s, mids);
  std::vector<double> flat(50'000, mids.back());
  EXPECT_TRUE(run(s, flat).empty());
}

// One non-finite mid is ignored: the averages go on as if it had not come.
TEST(SmaCrossover, ANonFiniteMidIsIgnored) {
  SmaCrossover with(2, 4), without(2, 4);
  const std::vector<double> mids = {1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3, 2, 1};
  std::vector<double> poisoned = mids;
  poisoned.insert(poisoned.begin() + 4, std::numeric_limits<double>::infinity());
  poisoned.insert(poisoned.begin() + 6, std::numeric_limits<double>::quiet_NaN());
  auto a = run(without, mids);
  auto b = run(with, poisoned);
  ASSERT_GE(a.size(), 3u);
  // Indices shift by the inserted values; the sides in order are the same.
  std::vector<Side> sa, sb;
  for (auto& [i, side] : a) sa.push_back(side);
  for (auto& [i, side] : b) sb.push_back(side);
  EXPECT_EQ(sa, sb);
}

TEST(Builtin, CancelsAnOrderStillOpenAfterCancelAfterMsAndForgetsAFinalOne) {
  Builtin strategy("every_nth", 250);
  tp::test::FakeContext ctx({"EURUSD"}, {{"n", "1"}});
  strategy.attach(ctx);
  strategy.on_start();
  const tp::Tick tick{.instrument = "EURUSD", .bid = 1.0, .ask = 1.0002, .seq = 1};
  strategy.on_tick(tick);
  strategy.on_tick(tick);
  strategy.on_tick(tick);
  ASSERT_EQ(ctx.emitted.size(), 3u);
  EXPECT_EQ(ctx.timer_count(), 3u);  // one cancel timer per order
  // The first fills, the second is refused: their timers go.
  strategy.on_order({.signal_id = ctx.emitted[0].id, .status = tp::OrderStatus::filled});
  strategy.on_order({.signal_id = ctx.emitted[1].id, .status = tp::OrderStatus::rejected, .refused = true});
  // A partial fill is not final: the third's timer stays.
  strategy.on_order({.signal_id = ctx.emitted[2].id, .status = tp::OrderStatus::partially_filled});
  EXPECT_EQ(ctx.timer_count(), 1u);
  ctx.fire_timers();
  ASSERT_EQ(ctx.cancels.size(), 1u);
  EXPECT_EQ(ctx.cancels[0].first, ctx.emitted[2].id);
  EXPECT_EQ(ctx.cancels[0].second, "cancel_after_ms 250");
  EXPECT_EQ(ctx.timer_count(), 0u);
}

TEST(Builtin, WithoutCancelAfterMsNoTimer) {
  Builtin strategy("every_nth");
  tp::test::FakeContext ctx({"EURUSD"}, {{"n", "1"}});
  strategy.attach(ctx);
  strategy.on_start();
  strategy.on_tick({.instrument = "EURUSD", .bid = 1.0, .ask = 1.0002, .seq = 1});
  EXPECT_EQ(ctx.emitted.size(), 1u);
  EXPECT_EQ(ctx.timer_count(), 0u);
}
