// Pure parts of the executor: risk limits, positions, the decision layer.
#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "executor/decision.hpp"
#include "executor/final_orders.hpp"
#include "executor/owed_letters.hpp"
#include "executor/position_book.hpp"
#include "executor/risk.hpp"

using namespace tp::executor;

namespace {

tp::proto::TradingSignal make_signal(double qty, double price, tp::proto::Side side = tp::proto::Side::buy) {
  tp::proto::TradingSignal s;
  s.signal_id = "sma.0.1.1";
  s.strategy = "sma";
  s.instrument = "EURUSD";
  s.action = side;
  s.quantity = qty;
  s.trigger_price = price;
  return s;
}

tp::RiskConfig limits() {
  return tp::RiskConfig{.max_order_quantity = 1000, .max_position = 1500, .max_notional = 5000};
}

}  // namespace

// ------------------------------------------------------------------ risk

TEST(Risk, AllowsOrderWithinEveryLimit) {
  EXPECT_FALSE(check_risk(make_signal(1000, 5.0), 0, limits()).has_value());
}

TEST(Risk, RefusesQuantityAboveMaxOrderQuantity) {
  auto r = check_risk(make_signal(1001, 1.0), 0, limits());
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find("max_order_quantity"), std::string::npos) << *r;
  EXPECT_NE(r->find("1001"), std::string::npos) << *r;
}

TEST(Risk, RefusesNotionalAboveMaxNotional) {
  auto r = check_risk(make_signal(500, 10.01), 0, limits());
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find("max_notional"), std::string::npos) << *r;
  EXPECT_NE(r->find("5005"), std::string::npos) << *r;
}

TEST(Risk, RefusesAbsolutePositionAfterOrderAboveLimit) {
  auto r = check_risk(make_signal(600, 1.0), 1000, limits());
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find("max_position"), std::string::npos) << *r;
  EXPECT_NE(r->find("1600"), std::string::npos) << *r;
  // Short side counts by absolute value too.
  EXPECT_TRUE(check_risk(make_signal(600, 1.0, tp::proto::Side::sell), -1000, limits()).has_value());
}

TEST(Risk, AllowsReducingALargePosition) {
  EXPECT_FALSE(check_risk(make_signal(1000, 1.0, tp::proto::Side::sell), 1500, limits()).has_value());
  EXPECT_FALSE(check_risk(make_signal(1000, 1.0, tp::proto::Side::buy), -1500, limits()).has_value());
}

// ---------------------------------------------------------- positions

TEST(Risk, AGroupLimitOfZeroIsNoLimit) {
  EXPECT_FALSE(check_group_position(make_signal(1000, 1.0), 1e9, 0).has_value());
}

TEST(Risk, RefusesAGroupsAbsolutePositionAboveItsOwnLimitWithTheNumbers) {
  auto s = make_signal(1000, 1.0);
  s.strategy = "trend";
  EXPECT_FALSE(check_group_position(s, 500, 1500).has_value());  // 1500: at the limit, allowed
  auto r = check_group_position(s, 501, 1500);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, "group trend position after order 1501 (now 501) exceeds its max_position 1500");
  auto sell = make_signal(1000, 1.0, tp::proto::Side::sell);
  EXPECT_TRUE(check_group_position(sell, -600, 1500).has_value());
  EXPECT_FALSE(check_group_position(sell, 2000, 1500).has_value()) << "reducing to 1000";
}

TEST(PositionBook, AveragesEntriesOnTheSameSide) {
  PositionBook b;
  b.apply_fill("EURUSD", tp::proto::Side::buy, 100, 10);
  b.apply_fill("EURUSD", tp::proto::Side::buy, 100, 12);
  const auto* p = b.find("EURUSD");
  ASSERT_NE(p, nullptr);
  EXPECT_DOUBLE_EQ(p->position, 200);
  EXPECT_DOUBLE_EQ(p->avg_price, 11);
  EXPECT_DOUBLE_EQ(p->realized_pnl, 0);
  EXPECT_DOUBLE_EQ(p->last_price, 12);
}

TEST(PositionBook, PartialCloseFlipAndFlatten) {
  PositionBook b;
  b.apply_fill("X", tp::proto::Side::buy, 100, 10);
  b.apply_fill("X", tp::proto::Side::buy, 100, 12);  // 200 @ 11
  b.apply_fill("X", tp::proto::Side::sell, 50, 15);  // realise (15-11)*50 = 200
  EXPECT_DOUBLE_EQ(b.find("X")->position, 150);
  EXPECT_DOUBLE_EQ(b.find("X")->avg_price, 11);
  EXPECT_DOUBLE_EQ(b.find("X")->realized_pnl, 200);

  b.apply_fill("X", tp::proto::Side::sell, 200, 9);  // close 150: (9-11)*150 = -300; flip to -50 @ 9
  EXPECT_DOUBLE_EQ(b.find("X")->position, -50);
  EXPECT_DOUBLE_EQ(b.find("X")->avg_price, 9);
  EXPECT_DOUBLE_EQ(b.find("X")->realized_pnl, -100);

  b.apply_fill("X", tp::proto::Side::buy, 50, 8);  // close short 50: (8-9)*50*(-1) = +50
  EXPECT_DOUBLE_EQ(b.find("X")->position, 0);
  EXPECT_DOUBLE_EQ(b.find("X")->avg_price, 0);
  EXPECT_DOUBLE_EQ(b.find("X")->realized_pnl, -50);
  EXPECT_DOUBLE_EQ(b.find("X")->last_price, 8);
}

TEST(PositionBook, ShortPartialCloseKeepsAverage) {
  PositionBook b;
  b.apply_fill("X", tp::proto::Side::sell, 10, 100);
  b.apply_fill("X", tp::proto::Side::sell, 10, 110);  // -20 @ 105
  b.apply_fill("X", tp::proto::Side::buy, 5, 100);    // (100-105)*5*(-1) = +25
  EXPECT_DOUBLE_EQ(b.position("X"), -15);
  EXPECT_DOUBLE_EQ(b.find("X")->avg_price, 105);
  EXPECT_DOUBLE_EQ(b.find("X")->realized_pnl, 25);
}

TEST(PositionBook, InstrumentsAreIndependentAndZeroQuantityIgnored) {
  PositionBook b;
  b.apply_fill("A", tp::proto::Side::buy, 1, 2);
  b.apply_fill("B", tp::proto::Side::sell, 3, 4);
  b.apply_fill("A", tp::proto::Side::buy, 0, 99);
  EXPECT_DOUBLE_EQ(b.position("A"), 1);
  EXPECT_DOUBLE_EQ(b.position("B"), -3);
  EXPECT_DOUBLE_EQ(b.find("A")->last_price, 2);
  EXPECT_DOUBLE_EQ(b.position("never"), 0);
  EXPECT_EQ(b.find("never"), nullptr);
}

// ------------------------------------------------------------- decision

TEST(ClientOrderId, IsDeterministic) {
  EXPECT_EQ(client_order_id("sma.0.17.5"), "C-sma.0.17.5");
  EXPECT_EQ(client_order_id("sma.0.17.5"), client_order_id("sma.0.17.5"));
}

class DecisionTest : public ::testing::Test {
 protected:
  DecisionTest() {
    config.risk = limits();
    signal = make_signal(100, 1.0);
    signal.created_ts_ns = clock.now_ns();
    signal.expires_ts_ns = clock.now_ns() + 5 * tp::ns_per_ms;
  }
  tp::Config config;
  tp::FakeClock clock;
  tp::proto::TradingSignal signal;
};

TEST_F(DecisionTest, AcceptsAFreshValidSignal) {
  EXPECT_EQ(decide(signal, config, {}, clock).verdict, Verdict::accept);
}

TEST_F(DecisionTest, RejectsUnknownInstrument) {
  signal.instrument = "XAUUSD";
  auto d = decide(signal, config, {}, clock);
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "unknown_instrument");
  EXPECT_NE(d.detail.find("XAUUSD"), std::string::npos);
}

TEST_F(DecisionTest, ExpiresExactlyAtExpiryTime) {
  clock.advance_ms(4);
  EXPECT_EQ(decide(signal, config, {}, clock).verdict, Verdict::accept);
  clock.advance_ms(1);  // now == expires_ts_ns
  auto d = decide(signal, config, {}, clock);
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "expired");
}

TEST_F(DecisionTest, AcrossHostsTheDeadlineComesTheClocksSkewEarlier) {
  config.executor.max_clock_skew_ms = 2;
  EXPECT_EQ(tp::executor::expiry_margin_ns(config), 0) << "one host, one clock";
  config.hosts = {tp::Host{.name = "a", .address = "10.0.0.1", .programs = {"gateway"}}};
  EXPECT_EQ(tp::executor::expiry_margin_ns(config), 0) << "[[hosts]] with one host: one clock";
  config.hosts.push_back(tp::Host{.name = "b", .address = "10.0.0.2", .programs = {"executor"}});
  EXPECT_EQ(tp::executor::expiry_margin_ns(config), 2 * tp::ns_per_ms);
  clock.advance_ms(2);
  EXPECT_EQ(decide(signal, config, {}, clock).verdict, Verdict::accept);
  clock.advance_ms(1);  // now == expires_ts_ns - 2 ms
  auto d = decide(signal, config, {}, clock);
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "expired");
  EXPECT_NE(d.detail.find("margin 2 ms"), std::string::npos) << d.detail;
  // Every later check (held orders, dll_gateway, the broker's good-till) reads the order's deadline.
  EXPECT_EQ(intent_for(signal, clock.now_ns(), tp::executor::expiry_margin_ns(config)).expires_ns,
            signal.expires_ts_ns - 2 * tp::ns_per_ms);
}

TEST_F(DecisionTest, RejectsRiskRefusalWithTheNumbers) {
  auto d = decide(signal, config, {.instrument = 1450}, clock);  // 1550 > 1500
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "risk_rejected");
  EXPECT_NE(d.detail.find("max_position"), std::string::npos) << d.detail;
}

TEST_F(DecisionTest, RejectsAboveTheSignalsGroupOwnLimitAfterTheInstrumentsLimit) {
  config.strategy.groups = {tp::StrategyGroup{.name = "trend", .kind = "sma_crossover", .max_position = 300},
                            tp::StrategyGroup{.name = "revert", .kind = "rsi_reversion"}};
  signal.strategy = "trend";
  EXPECT_EQ(decide(signal, config, {.instrument = 0, .group = 200}, clock).verdict, Verdict::accept);
  auto d = decide(signal, config, {.instrument = 0, .group = 201}, clock);  // 301 > 300
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "group_position_limit");
  EXPECT_NE(d.detail.find("group trend"), std::string::npos) << d.detail;
  // Both limits broken: the instrument's is named.
  EXPECT_EQ(decide(signal, config, {.instrument = 1450, .group = 1450}, clock).reason, "risk_rejected");
  // A group without a limit of its own, and a group the config does not name.
  signal.strategy = "revert";
  EXPECT_EQ(decide(signal, config, {.instrument = 0, .group = 1e6}, clock).verdict, Verdict::accept);
  signal.strategy = "elsewhere";
  EXPECT_EQ(decide(signal, config, {.instrument = 0, .group = 1e6}, clock).verdict, Verdict::accept);
}

TEST_F(DecisionTest, RejectsIdTooLongForTheClientOrderIdPrefix) {
  signal.signal_id = std::string(tp::proto::max_id_length - 1, 'x');
  auto d = decide(signal, config, {}, clock);
  EXPECT_EQ(d.verdict, Verdict::reject);
  EXPECT_EQ(d.reason, "out_of_range");
  signal.signal_id = std::string(tp::proto::max_id_length - 2, 'x');
  EXPECT_EQ(decide(signal, config, {}, clock).verdict, Verdict::accept);
}

TEST(IntentFor, CarriesTheSignalIntoANewOrder) {
  tp::proto::TradingSignal s = make_signal(250, 1.2345, tp::proto::Side::sell);
  s.causation_ts_ns = 11;
  s.created_ts_ns = 22;
  s.expires_ts_ns = 33;
  const auto o = intent_for(s, 44);
  EXPECT_EQ(o.client_order_id, "C-sma.0.1.1");
  EXPECT_EQ(o.signal_id, "sma.0.1.1");
  EXPECT_EQ(o.strategy, "sma");
  EXPECT_EQ(o.instrument, "EURUSD");
  EXPECT_EQ(o.side, tp::proto::Side::sell);
  EXPECT_DOUBLE_EQ(o.quantity, 250);
  EXPECT_DOUBLE_EQ(o.price_hint, 1.2345);
  EXPECT_EQ(o.state, OrderState::intent);
  EXPECT_EQ(o.status, tp::proto::OrderStatus::new_order);
  EXPECT_DOUBLE_EQ(o.filled_quantity, 0);
  EXPECT_DOUBLE_EQ(o.fill_price, 0);
  EXPECT_EQ(o.order_id, "");
  EXPECT_EQ(o.reason, "");
  EXPECT_EQ(o.causation_ts_ns, 11);
  EXPECT_EQ(o.created_ns, 44);  // the executor's clock, not the signal's created_ts_ns
  EXPECT_EQ(o.updated_ns, 44);
  EXPECT_EQ(o.expires_ns, 33);
}

TEST(PositionBook, SamePositionToleratesSummationOrderButNotARealDifference) {
  using tp::executor::same_position;
  double a = 0, b = 0;
  for (double q : {0.1, 0.2, 0.3, 1000.7}) a += q;
  for (double q : {1000.7, 0.3, 0.2, 0.1}) b += q;
  EXPECT_TRUE(same_position(a, b));
  EXPECT_TRUE(same_position(0, 0));
  EXPECT_FALSE(same_position(1000, 1000.001));
  EXPECT_FALSE(same_position(0, 1e-6));
  EXPECT_FALSE(same_position(500, -500));
}

TEST(PositionBook, AdoptTakesTheBrokersFigureAndKeepsTheEntryPrice) {
  tp::executor::PositionBook book;
  book.apply_fill("EURUSD", tp::proto::Side::buy, 1000, 1.10);
  book.adopt("EURUSD", 1500);
  EXPECT_DOUBLE_EQ(book.position("EURUSD"), 1500);
  EXPECT_DOUBLE_EQ(book.find("EURUSD")->avg_price, 1.10);
  book.adopt("GBPUSD", -200);
  EXPECT_DOUBLE_EQ(book.position("GBPUSD"), -200);
  book.adopt("EURUSD", 0);
  EXPECT_DOUBLE_EQ(book.find("EURUSD")->avg_price, 0);
}

namespace {

tp::executor::FinalOrder filled(double quantity) {
  return {tp::proto::OrderStatus::filled, quantity, quantity};
}

}  // namespace

TEST(FinalOrders, HoldsTheNewestAndForgetsTheOldestWhenFull) {
  tp::executor::FinalOrders finals(2);
  finals.add("C-a", filled(100));
  finals.add("C-b", filled(200));
  ASSERT_NE(finals.find("C-a"), nullptr);
  EXPECT_EQ(finals.find("C-a")->status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(finals.find("C-a")->filled_quantity, 100);
  finals.add("C-c", filled(300));
  EXPECT_EQ(finals.find("C-a"), nullptr) << "the oldest went";
  EXPECT_DOUBLE_EQ(finals.find("C-b")->quantity, 200);
  EXPECT_DOUBLE_EQ(finals.find("C-c")->quantity, 300);
  EXPECT_EQ(finals.size(), 2u);
}

// An id added again takes the newest slot (its older one is freed), and a
// forgotten one frees its slot: what stays is always the newest, by id.
TEST(FinalOrders, AnOrderAddedTwiceOrForgottenKeepsOneSlot) {
  tp::executor::FinalOrders finals(2);
  finals.add("C-a", filled(1));
  finals.forget("C-a");
  EXPECT_EQ(finals.find("C-a"), nullptr);
  finals.add("C-b", filled(1));
  finals.add("C-b", filled(2));  // the first C-b's slot is freed
  EXPECT_DOUBLE_EQ(finals.find("C-b")->quantity, 2);
  EXPECT_EQ(finals.size(), 1u);
  finals.add("C-c", filled(3));  // takes the freed slot: C-b stays
  EXPECT_DOUBLE_EQ(finals.find("C-b")->quantity, 2);
  EXPECT_DOUBLE_EQ(finals.find("C-c")->quantity, 3);
  finals.add("C-d", filled(4));  // now the oldest, C-b, goes
  EXPECT_EQ(finals.find("C-b"), nullptr);
  EXPECT_NE(finals.find("C-c"), nullptr);
  EXPECT_NE(finals.find("C-d"), nullptr);
  finals.forget("C-c");
  finals.add("C-e", filled(5));
  finals.add("C-f", filled(6));  // evicts C-d, never the forgotten C-c's freed slot twice
  EXPECT_EQ(finals.find("C-d"), nullptr);
  EXPECT_NE(finals.find("C-e"), nullptr);
  EXPECT_NE(finals.find("C-f"), nullptr);
  EXPECT_EQ(finals.size(), 2u);
}

namespace {

tp::executor::OutcomeLetter owed(const std::string& key, std::size_t original_bytes = 10) {
  return {"expired", "order C-" + key + " refused", std::string(original_bytes, 'x'), key, 1};
}

}  // namespace

TEST(OwedLetters, ArePaidOldestFirstUntilTheQueueRefusesOne) {
  tp::executor::OwedLetters owed_letters;
  for (const char* k : {"a", "b", "c"}) owed_letters.owe(owed(k));
  std::vector<std::string> sent;
  int room = 2;
  auto send = [&](const tp::executor::OutcomeLetter& l) {
    if (room == 0) return false;
    --room;
    sent.push_back(l.key);
    return true;
  };
  EXPECT_EQ(owed_letters.pay(send), 2u);
  EXPECT_EQ(sent, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(owed_letters.size(), 1u) << "c waits for room";
  room = 5;
  EXPECT_EQ(owed_letters.pay(send), 1u);
  EXPECT_EQ(sent.back(), "c");
  EXPECT_TRUE(owed_letters.empty());
}

TEST(OwedLetters, PastTheirBoundsTheOldestAreGivenUp) {
  tp::executor::OwedLetters by_count;
  for (std::size_t i = 0; i < tp::executor::OwedLetters::max_letters + 3; ++i)
    by_count.owe(owed(std::to_string(i)));
  EXPECT_EQ(by_count.size(), tp::executor::OwedLetters::max_letters);
  EXPECT_EQ(by_count.given_up(), 3u);
  std::string first;
  by_count.pay([&](const tp::executor::OutcomeLetter& l) {
    first = l.key;
    return false;
  });
  EXPECT_EQ(first, "3") << "the three oldest went";

  tp::executor::OwedLetters by_bytes;
  const std::size_t big = tp::executor::OwedLetters::max_bytes / 2;
  for (const char* k : {"a", "b", "c"}) by_bytes.owe(owed(k, big));
  EXPECT_EQ(by_bytes.size(), 1u);
  EXPECT_EQ(by_bytes.given_up(), 2u);
}
