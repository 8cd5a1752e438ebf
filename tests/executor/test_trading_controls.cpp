// The trading controls' pure rules: states and commands, the reduce-only
// test, open orders' remaining quantities, the throttle.
#include <gtest/gtest.h>

#include "executor/trading_controls.hpp"

namespace tp::executor {
namespace {

using proto::ControlCommand;
using proto::Side;
using proto::TradingState;

TEST(TradingStatus, CommandsMoveTheState) {
  TradingStatus s;
  s = after_command(s, ControlCommand::halt, "desk on fire", "tpctl:ops", 10);
  EXPECT_EQ(s.state, TradingState::halted);
  EXPECT_EQ(s.cause, "halt by tpctl:ops: desk on fire");
  EXPECT_EQ(s.since_ns, 10);
  // A repeat keeps the time it began.
  s = after_command(s, ControlCommand::halt, "", "tpctl:ops", 20);
  EXPECT_EQ(s.since_ns, 10);
  s = after_command(s, ControlCommand::flatten, "", "", 30);
  EXPECT_EQ(s.state, TradingState::reducing);
  EXPECT_TRUE(s.flatten_pending);
  EXPECT_EQ(s.cause, "flatten");
  EXPECT_EQ(after_command(s, ControlCommand::status, "x", "y", 40), s);
  s = after_command(s, ControlCommand::halt, "", "", 50);
  EXPECT_FALSE(s.flatten_pending);  // a halt sends nothing, closing orders included
  s = after_command(s, ControlCommand::resume, "", "", 60);
  EXPECT_EQ(s.state, TradingState::active);
  EXPECT_EQ(s.since_ns, 60);
}

TEST(TradingStatus, AutomaticTriggersOnlyRaise) {
  TradingStatus s;
  s = escalate(s, TradingState::reducing, "daily loss limit", 5);
  EXPECT_EQ(s.state, TradingState::reducing);
  EXPECT_EQ(s.cause, "daily loss limit");
  auto same = escalate(s, TradingState::reducing, "again", 6);
  EXPECT_EQ(same, s);
  s = escalate(s, TradingState::halted, "position mismatch", 7);
  EXPECT_EQ(s.state, TradingState::halted);
  EXPECT_EQ(escalate(s, TradingState::reducing, "loss", 8), s);  // never lowered
}

TEST(ReduceOnly, ShrinksWithoutFlipping) {
  EXPECT_TRUE(reduces(1000, 0, Side::sell, 400));
  EXPECT_TRUE(reduces(1000, 0, Side::sell, 1000));   // to flat
  EXPECT_FALSE(reduces(1000, 0, Side::sell, 1001));  // a flip
  EXPECT_FALSE(reduces(1000, 0, Side::buy, 1));      // adds
  EXPECT_FALSE(reduces(0, 0, Side::sell, 1));        // flat: nothing to reduce
  EXPECT_TRUE(reduces(-500, 0, Side::buy, 500));
  // Open orders on the same side count as filled: two sells of 600 against
  // a long 1000 would flip it.
  EXPECT_TRUE(reduces(1000, 400, Side::sell, 600));
  EXPECT_FALSE(reduces(1000, 600, Side::sell, 600));
  EXPECT_FALSE(reduces(-500, 100, Side::buy, 401));
}

TEST(OpenOrders, KeepsRemainingQuantitiesPerInstrumentAndGroup) {
  OpenOrders o;
  o.add("C-1", "EURUSD", "trend", Side::buy, 1000);
  o.add("C-2", "EURUSD", "revert", Side::sell, 300);
  o.add("C-3", "GBPUSD", "trend", Side::buy, 50);
  EXPECT_EQ(o.count(), 3u);
  EXPECT_DOUBLE_EQ(o.instrument("EURUSD").buy, 1000);
  EXPECT_DOUBLE_EQ(o.instrument("EURUSD").sell, 300);
  EXPECT_DOUBLE_EQ(o.group("trend", "EURUSD").buy, 1000);
  EXPECT_DOUBLE_EQ(o.group("trend", "EURUSD").sell, 0);
  EXPECT_DOUBLE_EQ(o.group("revert", "EURUSD").sell, 300);
  o.update("C-1", 250, false);  // 750 filled
  EXPECT_DOUBLE_EQ(o.instrument("EURUSD").buy, 250);
  EXPECT_DOUBLE_EQ(o.group("trend", "EURUSD").buy, 250);
  o.update("C-1", 250, true);
  EXPECT_DOUBLE_EQ(o.instrument("EURUSD").buy, 0);
  EXPECT_EQ(o.count(), 2u);
  o.remove("C-9");                                    // unknown: nothing
  o.add("C-2", "EURUSD", "revert", Side::sell, 100);  // known: replaced, not doubled
  EXPECT_DOUBLE_EQ(o.instrument("EURUSD").sell, 100);
  EXPECT_EQ(o.count(), 2u);
  EXPECT_DOUBLE_EQ(o.instrument("USDJPY").buy, 0);
  EXPECT_DOUBLE_EQ(o.group("nobody", "EURUSD").sell, 0);
}

TEST(OpenOrders, LeavesNoResidueWhenTheLastOrderGoes) {
  OpenOrders o;
  for (int i = 0; i < 10; ++i) o.add("C-" + std::to_string(i), "EURUSD", "g", Side::buy, 0.1);
  for (int i = 0; i < 10; ++i) o.update("C-" + std::to_string(i), 0.1 / 3, false);
  for (int i = 0; i < 10; ++i) o.remove("C-" + std::to_string(i));
  EXPECT_EQ(o.instrument("EURUSD").buy, 0.0);  // exactly, not 1e-17
  EXPECT_EQ(o.count(), 0u);
}

TEST(RateThrottle, AllowsTheRateAndABurstOfOneSecond) {
  constexpr std::int64_t s = 1'000'000'000;
  RateThrottle t(10);
  int taken = 0;
  while (t.available(s) && taken < 100) {
    t.take();
    ++taken;
  }
  EXPECT_EQ(taken, 10);                   // the burst: one second's worth
  EXPECT_FALSE(t.available(s + s / 20));  // half a token back
  EXPECT_TRUE(t.available(s + s / 10));   // one token back
  t.take();
  EXPECT_FALSE(t.available(s + s / 10));
  // A long quiet spell refills no more than the depth.
  taken = 0;
  while (t.available(100 * s) && taken < 100) {
    t.take();
    ++taken;
  }
  EXPECT_EQ(taken, 10);
}

TEST(RateThrottle, ZeroIsNoLimitAndSlowRatesStillAllowOne) {
  RateThrottle none;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(none.available(0));
    none.take();
  }
  RateThrottle slow(0.5);  // one order per two seconds
  EXPECT_TRUE(slow.available(0));
  slow.take();
  EXPECT_FALSE(slow.available(1'000'000'000));
  EXPECT_TRUE(slow.available(2'000'000'000));
}

}  // namespace
}  // namespace tp::executor
