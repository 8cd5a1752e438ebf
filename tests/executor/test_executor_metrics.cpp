// The executor's metrics without sockets: OrderLatencies' hops (stamps not
// set, clocks apart, stored answers) and the text add_executor_metrics /
// add_latency_metrics render from a figures struct.
#include <gtest/gtest.h>

#include <string>

#include "executor/executor_metrics.hpp"

using namespace tp::executor;
using tp::metrics::MetricsText;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;
constexpr std::int64_t us = 1'000;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(OrderLatencies, EachHopFromItsTwoStamps) {
  OrderLatencies l;
  tp::proto::TradingSignal s;
  s.causation_ts_ns = t0;
  s.created_ts_ns = t0 + 200 * us;
  l.signal_read(s, t0 + 500 * us);
  l.order_sent(t0 + 500 * us, t0 + 600 * us);
  tp::proto::OrderReply reply;
  reply.broker_ts_ns = t0 + 1'000 * us;
  l.answered(reply, t0 + 600 * us, 900 * us, t0 + 1'500 * us);

  const auto seconds = [&](Hop h) { return l.hop(h).sample().sum; };
  EXPECT_DOUBLE_EQ(seconds(Hop::tick_to_signal), 200e-6);
  EXPECT_DOUBLE_EQ(seconds(Hop::signal_to_executor), 300e-6);
  EXPECT_DOUBLE_EQ(seconds(Hop::executor_to_order_sent), 100e-6);
  EXPECT_DOUBLE_EQ(seconds(Hop::order_sent_to_broker), 400e-6);
  EXPECT_DOUBLE_EQ(seconds(Hop::broker_to_answer), 500e-6);
  EXPECT_DOUBLE_EQ(l.round_trip().sample().sum, 900e-6);
  for (std::size_t i = 0; i < hop_count; ++i) EXPECT_EQ(l.hop(static_cast<Hop>(i)).sample().count, 1u);
  EXPECT_EQ(l.clock_skews(), 0u);
}

TEST(OrderLatencies, UnsetStampsAreNotObservedAndClocksApartCountAsZero) {
  OrderLatencies l;
  tp::proto::TradingSignal old_sender;  // no causation_ts_ns, no created_ts_ns
  l.signal_read(old_sender, t0);
  EXPECT_EQ(l.hop(Hop::tick_to_signal).sample().count, 0u);
  EXPECT_EQ(l.hop(Hop::signal_to_executor).sample().count, 0u);

  tp::proto::TradingSignal ahead;  // the strategy's clock 2 ms ahead of the executor's
  ahead.causation_ts_ns = t0;
  ahead.created_ts_ns = t0 + 2'000 * us;
  l.signal_read(ahead, t0 + 1'000 * us);
  const auto h = l.hop(Hop::signal_to_executor).sample();
  EXPECT_EQ(h.count, 1u);
  EXPECT_EQ(h.sum, 0.0);
  EXPECT_EQ(h.cumulative_counts.front(), 1u) << "in the lowest bucket, never negative";
  EXPECT_EQ(l.clock_skews(), 1u);
}

TEST(OrderLatencies, AStoredAnswerTimesTheRoundTripOnly) {
  OrderLatencies l;
  tp::proto::OrderReply stored;
  stored.duplicate = true;
  stored.broker_ts_ns = t0 - 60'000'000 * us;  // the first call's, a minute ago
  l.answered(stored, t0, 300 * us, t0 + 300 * us);
  EXPECT_EQ(l.round_trip().sample().count, 1u);
  EXPECT_EQ(l.hop(Hop::order_sent_to_broker).sample().count, 0u);
  EXPECT_EQ(l.hop(Hop::broker_to_answer).sample().count, 0u);
}

TEST(ExecutorMetrics, RendersTheFiguresWithBoundedLabels) {
  ExecutorFigures f;
  f.signals_received = 12;
  f.desk.signals_accepted = 9;
  f.desk.fills = 7;
  f.desk.fills_by_instrument = {{"EURUSD", 7}, {"GBPUSD", 0}};
  f.desk.rejected = {{"max_position", 2}, {"trading_halted", 1}};
  f.desk.groups["trend"] = GroupCounters{.signals = 9, .rejected = 3, .fills = 7};
  f.link.orders_sent = 9;
  f.breaker = BreakerState::half_open;
  f.trading_state = tp::proto::TradingState::halted;
  f.trading_state_since_ns = t0;
  f.positions["EURUSD"] =
      Position{.position = -1000, .avg_price = 1.25, .realized_pnl = 3.5, .last_price = 1.5};
  f.group_positions["trend"]["EURUSD"] = Position{.position = -1000, .realized_pnl = 3.5};
  f.group_positions["trend"]["GBPUSD"] = Position{};
  f.position_check = PositionCheck::mismatch;
  f.position_mismatches["GBPUSD"] = ExecutionDesk::Mismatch{.executor = 0, .broker = 500};
  f.account_currency = "USD";
  f.equity = 100'003.5;
  f.dead_letters_sent = 4;
  f.dead_letters_dropped = 1;
  f.dead_letters_owed = 5;
  f.dead_letters_given_up = 2;
  f.store_checkpoints = 3;

  MetricsText m;
  add_executor_metrics(m, f);
  const std::string& t = m.str();
  for (const char* line : {
           "tp_executor_signals_received_total 12",
           "tp_executor_signals_accepted_total 9",
           "tp_executor_orders_sent_total 9",
           "tp_executor_fills_total{instrument=\"EURUSD\"} 7",
           "tp_executor_fills_total{instrument=\"GBPUSD\"} 0",
           "tp_executor_signals_rejected_total{reason=\"max_position\"} 2",
           "tp_executor_signals_rejected_total{reason=\"trading_halted\"} 1",
           "tp_executor_trading_state{state=\"ACTIVE\"} 0",
           "tp_executor_trading_state{state=\"REDUCING\"} 0",
           "tp_executor_trading_state{state=\"HALTED\"} 1",
           "tp_executor_trading_state_since_timestamp_seconds 1.7e+09",
           "tp_executor_circuit_breaker_open 1",
           "tp_executor_circuit_breaker_state{state=\"half_open\"} 1",
           "tp_executor_circuit_breaker_state{state=\"closed\"} 0",
           "tp_executor_position_check{state=\"mismatch\"} 1",
           "tp_executor_position_mismatches 1",
           "tp_executor_position_mismatch{instrument=\"GBPUSD\",book=\"broker\"} 500",
           "tp_executor_position{instrument=\"EURUSD\"} -1000",
           "tp_executor_position_avg_price{instrument=\"EURUSD\"} 1.25",
           "tp_executor_realized_pnl{instrument=\"EURUSD\"} 3.5",
           "tp_executor_last_fill_price{instrument=\"EURUSD\"} 1.5",
           "tp_executor_group_position{group=\"trend\",instrument=\"EURUSD\"} -1000",
           "tp_executor_group_position{group=\"trend\",instrument=\"GBPUSD\"} 0",
           "tp_executor_group_signals_total{group=\"trend\"} 9",
           "tp_executor_group_rejected_total{group=\"trend\"} 3",
           "tp_executor_group_fills_total{group=\"trend\"} 7",
           "tp_executor_equity{currency=\"USD\"} 100003.5",
           "tp_dead_letters_sent_total 4",
           "tp_dead_letters_dropped_total 1",
           "tp_executor_dead_letters_owed 5",
           "tp_executor_dead_letters_given_up_total 2",
           "tp_executor_store_checkpoints_total 3",
       })
    EXPECT_TRUE(has_line(t, line)) << line << "\n" << t;
  EXPECT_EQ(count_of(t, "# TYPE tp_executor_fills_total counter\n"), 1u);
  EXPECT_EQ(count_of(t, "# TYPE tp_executor_trading_state gauge\n"), 1u);
  EXPECT_EQ(t.find("signal_id"), std::string::npos);
}

TEST(ExecutorMetrics, LatencyHistogramsOneFamilyWithAHopLabel) {
  OrderLatencies l;
  l.order_sent(t0, t0 + 80 * us);  // 80 us: above the 50 us bound, within 100 us
  tp::metrics::Histogram tick_to_fill(tp::metrics::latency_bounds_seconds());
  tick_to_fill.observe(0.003);

  MetricsText m;
  add_latency_metrics(m, tick_to_fill, l);
  const std::string& t = m.str();
  EXPECT_TRUE(has_line(t, "# TYPE tp_executor_tick_to_fill_seconds histogram"));
  EXPECT_TRUE(has_line(t, "tp_executor_tick_to_fill_seconds_bucket{le=\"0.0025\"} 0"));
  EXPECT_TRUE(has_line(t, "tp_executor_tick_to_fill_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(has_line(t, "tp_executor_order_round_trip_seconds_count 0"));
  EXPECT_EQ(count_of(t, "# TYPE tp_executor_hop_latency_seconds histogram\n"), 1u);
  EXPECT_TRUE(
      has_line(t, "tp_executor_hop_latency_seconds_bucket{hop=\"executor_to_order_sent\",le=\"5e-05\"} 0"))
      << t;
  EXPECT_TRUE(
      has_line(t, "tp_executor_hop_latency_seconds_bucket{hop=\"executor_to_order_sent\",le=\"1e-04\"} 1"))
      << t;
  for (const char* hop : {"tick_to_signal", "signal_to_executor", "executor_to_order_sent",
                          "order_sent_to_broker", "broker_to_answer"})
    EXPECT_NE(t.find(std::string("tp_executor_hop_latency_seconds_count{hop=\"") + hop + "\"}"),
              std::string::npos)
        << hop;
  EXPECT_TRUE(has_line(t, "tp_executor_latency_clock_skews_total 0"));
}
