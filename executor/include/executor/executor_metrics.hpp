// The executor's Prometheus metrics: the latencies it measures per order
// (OrderLatencies: fixed-bound histograms, no allocation per observation)
// and the rendering of its stats figures (ExecutorFigures, gathered by the
// node where it writes its stats file) as tp_executor_* metrics. Pure: no
// socket, no clock; values in, text out. One thread (the executor's loop).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/metrics.hpp"
#include "executor/broker_link.hpp"
#include "executor/circuit_breaker.hpp"
#include "executor/execution_desk.hpp"
#include "executor/position_book.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

// How the execution-report stream went.
struct StreamCounters {
  std::uint64_t received = 0;   // from the reports socket
  std::uint64_t duplicate = 0;  // a seq already applied (a fetch and the socket both brought it)
  std::uint64_t gaps = 0;       // a seq ahead of the next expected: the missing ones fetched
  std::uint64_t fetched = 0;    // reports taken from ReportQuery answers
  std::uint64_t streams = 0;    // dll_gateway's store began a new stream
};

// The steps of an order's way, each between two timestamps the executor
// holds: the tick's gateway_ts_ns, the signal's created_ts_ns (strategy),
// the executor reading the signal, the order handed to dll_gateway, the
// broker's decision (OrderReply::broker_ts_ns) and the answer read back.
// Hops across hosts compare two hosts' clocks.
enum class Hop : std::uint8_t {
  tick_to_signal,          // gateway published the tick -> the strategy emitted the signal
  signal_to_executor,      // the strategy emitted it -> the executor read it
  executor_to_order_sent,  // read -> its order handed to dll_gateway (commit, a free order client)
  order_sent_to_broker,    // handed to dll_gateway -> the broker decided
  broker_to_answer,        // the broker decided -> the executor read the answer
};
inline constexpr std::size_t hop_count = 5;
std::string_view to_string(Hop hop) noexcept;

// The order latencies as Prometheus histograms (latency_bounds_seconds()).
// A negative interval (two hosts' clocks apart) is observed as 0 and
// counted in clock_skews(): a hop never shows a negative latency.
class OrderLatencies {
 public:
  OrderLatencies();
  // A signal read at `read_wall_ns`: tick_to_signal and signal_to_executor
  // (each only when its stamps are set).
  void signal_read(const proto::TradingSignal& signal, std::int64_t read_wall_ns) noexcept;
  // An order accepted at `accepted_wall_ns` (OrderRecord::created_ns)
  // handed to dll_gateway at `sent_wall_ns`.
  void order_sent(std::int64_t accepted_wall_ns, std::int64_t sent_wall_ns) noexcept;
  // An order's answer: the round trip on the monotonic clock (resends
  // included), and the two hops around the broker's stamp unless the
  // answer is a stored one (a duplicate: its stamp is from an earlier call).
  void answered(const proto::OrderReply& reply, std::int64_t sent_wall_ns, std::int64_t round_trip_ns,
                std::int64_t read_wall_ns) noexcept;

  const metrics::Histogram& hop(Hop h) const noexcept { return hops_[static_cast<std::size_t>(h)]; }
  const metrics::Histogram& round_trip() const noexcept { return round_trip_; }
  std::uint64_t clock_skews() const noexcept { return clock_skews_; }

 private:
  void observe(Hop h, std::int64_t from_ns, std::int64_t to_ns) noexcept;

  std::array<metrics::Histogram, hop_count> hops_;
  metrics::Histogram round_trip_;
  std::uint64_t clock_skews_ = 0;
};

// Every figure of executor.stats.json that becomes a metric, copied by the
// node at a stats write.
struct ExecutorFigures {
  DeskCounters desk;
  LinkCounters link;
  StreamCounters stream;
  std::uint64_t signals_received = 0;
  std::uint64_t order_retries = 0;
  std::uint64_t order_socket_failures = 0;
  std::uint64_t dead_letters_sent = 0;
  std::uint64_t dead_letters_dropped = 0;
  std::uint64_t dead_letters_replayed = 0;
  std::uint64_t dead_letters_owed = 0;      // stored letters waiting for room in the queue
  std::uint64_t dead_letters_given_up = 0;  // owed letters dropped: more were owed than kept
  std::uint64_t store_checkpoints = 0;      // the store's, between bursts
  std::uint64_t report_next_seq = 0;
  std::uint64_t orders_unknown = 0;
  std::uint64_t orders_intent = 0;
  std::uint64_t orders_held_now = 0;
  std::uint64_t orders_working = 0;
  std::uint64_t open_orders = 0;
  BreakerState breaker = BreakerState::closed;
  std::uint64_t breaker_opens = 0;
  bool broker_alive = false;
  OrdersCheck orders_check = OrdersCheck::pending;
  std::uint64_t unknown_open_orders = 0;
  PositionCheck position_check = PositionCheck::pending;
  std::map<std::string, ExecutionDesk::Mismatch, std::less<>> position_mismatches;
  proto::TradingState trading_state = proto::TradingState::active;
  std::int64_t trading_state_since_ns = 0;
  bool flatten_pending = false;
  std::map<std::string, Position, std::less<>> positions;  // by instrument, quote currency
  // Every known (group, instrument), zero when it never traded.
  std::map<std::string, std::map<std::string, Position, std::less<>>, std::less<>> group_positions;
  std::string account_currency;
  double equity = 0;
  double realized_pnl = 0;  // account currency, as the valuation
  double unrealized_pnl = 0;
  double daily_pnl = 0;
  bool daily_pnl_known = false;
  bool portfolio_complete = true;
  std::uint64_t marks = 0;
};

// tp_executor_* for `f`: counters (signals, orders, fills by instrument,
// rejections by reason, reports, cancels...), the trading state, breaker and
// start-up checks as one gauge per state (1 for the current one), positions
// and PnL by instrument and group, the portfolio in the account currency
// (label currency), the store's checkpoints, and tp_dead_letters_sent_total /
// tp_dead_letters_dropped_total.
void add_executor_metrics(metrics::MetricsText& out, const ExecutorFigures& f);
// tp_executor_tick_to_fill_seconds, tp_executor_order_round_trip_seconds and
// tp_executor_hop_latency_seconds{hop} and tp_executor_latency_clock_skews_total.
void add_latency_metrics(metrics::MetricsText& out, const metrics::Histogram& tick_to_fill,
                         const OrderLatencies& latencies);

}  // namespace tp::executor
