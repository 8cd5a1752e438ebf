#include "executor/executor_metrics.hpp"

#include <algorithm>
#include <initializer_list>

namespace tp::executor {
namespace {

using metrics::Histogram;
using metrics::MetricsText;

// Counters by a bounded key, through MetricsText::counters (which takes
// the plain map type).
std::map<std::string, std::uint64_t> plain(const std::map<std::string, std::uint64_t, std::less<>>& by) {
  return {by.begin(), by.end()};
}

// One gauge per possible state, 1 for the current one: every state is
// always present, so that an alert on `== 1` never sees a missing series.
template <class State>
void state_gauges(MetricsText& out, std::string_view name, std::string_view help, State current,
                  std::initializer_list<State> all) {
  for (const State s : all) out.gauge(name, help, s == current, {{"state", std::string(to_string(s))}});
}

void add_signal_and_order_counters(MetricsText& out, const ExecutorFigures& f) {
  const auto& d = f.desk;
  const auto& l = f.link;
  out.counter("tp_executor_signals_received_total", "Messages read from the signals socket.",
              f.signals_received)
      .counter("tp_executor_signals_accepted_total", "Signals accepted (recorded with their order intent).",
               d.signals_accepted)
      .counter("tp_executor_signals_duplicate_total",
               "Signals already recorded (a strategy's resend), acked again.", d.duplicates)
      .counters("tp_executor_signals_rejected_total",
                "Signals refused, by reason (risk, trading state, expiry...).", plain(d.rejected), "reason")
      .counter("tp_executor_orders_sent_total", "Orders handed to dll_gateway (first attempts).",
               l.orders_sent)
      .counter("tp_executor_order_retries_total", "Requests to dll_gateway sent again after a timeout.",
               f.order_retries)
      .counter("tp_executor_order_timeouts_total",
               "Orders that got no answer through all attempts (UNKNOWN).", l.order_timeouts)
      .counter("tp_executor_order_socket_failures_total", "Order sockets that failed and were made again.",
               f.order_socket_failures)
      .counters("tp_executor_fills_total", "Orders that ended FILLED, by instrument.",
                plain(d.fills_by_instrument), "instrument")
      .counter("tp_executor_partial_fills_total", "Answers and reports with part of an order filled.",
               d.partial_fills)
      .counter("tp_executor_broker_rejects_total", "Orders the broker (or dll_gateway) refused.",
               d.broker_rejects)
      .counter("tp_executor_orders_held_total", "Orders recorded HELD (the circuit breaker was not closed).",
               d.orders_held)
      .counter("tp_executor_held_expired_total", "HELD orders given up: their signal expired first.",
               d.held_expired)
      .counter("tp_executor_orders_canceled_total", "Orders that ended CANCELED.", d.canceled)
      .counter("tp_executor_orders_expired_at_broker_total", "GTD orders that ended EXPIRED.",
               d.expired_at_broker)
      .counter("tp_executor_cancel_requests_total", "Cancel requests accepted (durably REQUESTED).",
               d.cancel_requests)
      .counter("tp_executor_cancel_duplicates_total", "Repeats of a cancel already requested.",
               d.cancel_duplicates)
      .counter("tp_executor_cancels_sent_total", "Cancels sent to dll_gateway.", l.cancels_sent)
      .counters("tp_executor_cancels_refused_total", "Cancel requests refused, by reason.",
                plain(d.cancels_refused), "reason")
      .counter("tp_executor_control_commands_total", "tpctl requests answered (status included).",
               d.control_commands);
}

void add_report_counters(MetricsText& out, const ExecutorFigures& f) {
  const auto& d = f.desk;
  out.counter("tp_executor_reports_received_total", "Execution reports read from the reports socket.",
              f.stream.received)
      .counter("tp_executor_reports_fetched_total", "Execution reports fetched by seq (ReportQuery).",
               f.stream.fetched)
      .counter("tp_executor_reports_duplicate_total", "Reports of a seq already applied.", f.stream.duplicate)
      .counter("tp_executor_report_gaps_total", "Gaps in the report stream (the missing ones fetched).",
               f.stream.gaps)
      .counter("tp_executor_report_streams_total", "New report streams of dll_gateway's store followed.",
               f.stream.streams)
      .counter("tp_executor_report_queries_total", "ReportQuery requests sent to dll_gateway.",
               f.link.report_queries)
      .counter("tp_executor_reports_applied_total", "Reports that changed an order.", d.reports_applied)
      .counter("tp_executor_reports_known_total", "Reports whose news an answer had brought first.",
               d.reports_known)
      .counter("tp_executor_reports_unknown_order_total", "Reports for an order the executor does not know.",
               d.reports_unknown_order)
      .counter("tp_executor_stale_updates_total", "Answers or reports older than what was known.",
               d.stale_updates)
      .counter("tp_executor_invalid_transitions_total", "Order changes the state machine refused (logged).",
               d.invalid_transitions)
      .gauge("tp_executor_report_next_seq", "The next report seq expected from dll_gateway's stream.",
             f.report_next_seq);
}

void add_state_gauges(MetricsText& out, const ExecutorFigures& f) {
  out.gauge("tp_executor_orders_unknown", "Orders sent without an answer, to be reconciled.",
            f.orders_unknown)
      .gauge("tp_executor_orders_intent", "Orders recorded and perhaps sent (INTENT).", f.orders_intent)
      .gauge("tp_executor_orders_held", "Orders HELD now (to be sent once the breaker closes).",
             f.orders_held_now)
      .gauge("tp_executor_orders_working", "Orders working at the broker (resting, perhaps part filled).",
             f.orders_working)
      .gauge("tp_executor_orders_open", "Orders not final: recorded, held, in flight, unknown or working.",
             f.open_orders)
      .gauge("tp_executor_circuit_breaker_open",
             "1 while the circuit breaker to dll_gateway is not closed (open or half open): orders are held.",
             f.breaker != BreakerState::closed);
  state_gauges(out, "tp_executor_circuit_breaker_state",
               "The circuit breaker's state (1 for the current one).", f.breaker,
               {BreakerState::closed, BreakerState::open, BreakerState::half_open});
  out.counter("tp_executor_circuit_breaker_opens_total", "Times the circuit breaker opened.", f.breaker_opens)
      .gauge("tp_executor_broker_alive", "1 when dll_gateway answered the last request.", f.broker_alive)
      .counter("tp_executor_liveness_probes_total", "Liveness probes of an idle dll_gateway.",
               f.link.liveness_probes);
  state_gauges(out, "tp_executor_orders_check",
               "The start-up comparison of open orders with the broker's (1 for the current outcome).",
               f.orders_check,
               {OrdersCheck::pending, OrdersCheck::matched, OrdersCheck::mismatch, OrdersCheck::unavailable});
  out.gauge("tp_executor_unknown_open_orders", "Orders open at the broker that the executor does not know.",
            f.unknown_open_orders);
  state_gauges(out, "tp_executor_position_check",
               "The start-up comparison of positions with the broker's (1 for the current outcome).",
               f.position_check,
               {PositionCheck::pending, PositionCheck::matched, PositionCheck::mismatch,
                PositionCheck::adopted, PositionCheck::unavailable});
  out.gauge("tp_executor_position_mismatches", "Instruments whose position differs from the broker's.",
            static_cast<std::uint64_t>(f.position_mismatches.size()));
  for (const auto& [sym, m] : f.position_mismatches)
    out.gauge("tp_executor_position_mismatch", "A differing position as each book holds it.", m.executor,
              {{"instrument", sym}, {"book", "executor"}})
        .gauge("tp_executor_position_mismatch", "A differing position as each book holds it.", m.broker,
               {{"instrument", sym}, {"book", "broker"}});
  state_gauges(out, "tp_executor_trading_state", "The trading state (1 for the current one).",
               f.trading_state,
               {proto::TradingState::active, proto::TradingState::reducing, proto::TradingState::halted});
  out.gauge("tp_executor_trading_state_since_timestamp_seconds",
            "When the trading state last changed, since unix epoch in seconds (0: never).",
            static_cast<double>(f.trading_state_since_ns) / 1e9)
      .gauge("tp_executor_flatten_pending", "1 while a flatten is under way.", f.flatten_pending);
}

void add_books(MetricsText& out, const ExecutorFigures& f) {
  // A family's samples must follow each other: one loop per field.
  for (const auto& [sym, p] : f.positions)
    out.gauge("tp_executor_position", "Net position by instrument (signed: < 0 short).", p.position,
              {{"instrument", sym}});
  for (const auto& [sym, p] : f.positions)
    out.gauge("tp_executor_position_avg_price", "Average entry price of the open position (0 when flat).",
              p.avg_price, {{"instrument", sym}});
  for (const auto& [sym, p] : f.positions)
    out.gauge("tp_executor_realized_pnl", "Realized PnL by instrument, in its quote currency.",
              p.realized_pnl, {{"instrument", sym}});
  for (const auto& [sym, p] : f.positions)
    out.gauge("tp_executor_last_fill_price", "Price of the instrument's latest fill.", p.last_price,
              {{"instrument", sym}});
  for (const auto& [group, book] : f.group_positions)
    for (const auto& [sym, p] : book)
      out.gauge("tp_executor_group_position", "A strategy group's position by instrument.", p.position,
                {{"group", group}, {"instrument", sym}});
  for (const auto& [group, book] : f.group_positions)
    for (const auto& [sym, p] : book)
      out.gauge("tp_executor_group_realized_pnl", "A strategy group's realized PnL, in the quote currency.",
                p.realized_pnl, {{"group", group}, {"instrument", sym}});
  const auto by_group = [&](auto field) {
    std::map<std::string, std::uint64_t> n;
    for (const auto& [group, book] : f.group_positions) {
      const auto c = f.desk.groups.find(group);
      n[group] = c == f.desk.groups.end() ? 0 : c->second.*field;
    }
    return n;
  };
  out.counters("tp_executor_group_signals_total", "A strategy group's signals accepted.",
               by_group(&GroupCounters::signals), "group")
      .counters("tp_executor_group_rejected_total",
                "A strategy group's signals refused (duplicates not counted).",
                by_group(&GroupCounters::rejected), "group")
      .counters("tp_executor_group_fills_total", "Answers that added filled quantity to a group's orders.",
                by_group(&GroupCounters::fills), "group");

  const metrics::Labels currency{{"currency", f.account_currency}};
  out.gauge("tp_executor_equity", "Capital plus realized and unrealized PnL, in the account currency.",
            f.equity, currency)
      .gauge("tp_executor_portfolio_realized_pnl", "Realized PnL of the whole book, in the account currency.",
             f.realized_pnl, currency)
      .gauge("tp_executor_portfolio_unrealized_pnl", "Unrealized PnL at the marks, in the account currency.",
             f.unrealized_pnl, currency)
      .gauge("tp_executor_daily_pnl", "PnL since the UTC day began, in the account currency.", f.daily_pnl,
             currency)
      .gauge("tp_executor_daily_pnl_known",
             "1 once every open position has a mark (the daily loss limit armed).", f.daily_pnl_known)
      .gauge("tp_executor_portfolio_complete",
             "0 while a line's PnL cannot be converted to the account currency.", f.portfolio_complete)
      .gauge("tp_executor_marks", "Instruments with a mark (latest mid) from the tick feed.", f.marks);
}

}  // namespace

std::string_view to_string(Hop hop) noexcept {
  switch (hop) {
    case Hop::tick_to_signal:
      return "tick_to_signal";
    case Hop::signal_to_executor:
      return "signal_to_executor";
    case Hop::executor_to_order_sent:
      return "executor_to_order_sent";
    case Hop::order_sent_to_broker:
      return "order_sent_to_broker";
    case Hop::broker_to_answer:
      return "broker_to_answer";
  }
  return "?";
}

static_assert(hop_count == 5, "one histogram per hop below");

OrderLatencies::OrderLatencies()
    : hops_{Histogram(metrics::latency_bounds_seconds()), Histogram(metrics::latency_bounds_seconds()),
            Histogram(metrics::latency_bounds_seconds()), Histogram(metrics::latency_bounds_seconds()),
            Histogram(metrics::latency_bounds_seconds())},
      round_trip_(metrics::latency_bounds_seconds()) {}

void OrderLatencies::observe(Hop h, std::int64_t from_ns, std::int64_t to_ns) noexcept {
  if (from_ns <= 0 || to_ns <= 0) return;  // a stamp not set (older senders, tests)
  std::int64_t ns = to_ns - from_ns;
  if (ns < 0) {
    ++clock_skews_;
    ns = 0;
  }
  hops_[static_cast<std::size_t>(h)].observe(static_cast<double>(ns) / 1e9);
}

void OrderLatencies::signal_read(const proto::TradingSignal& signal, std::int64_t read_wall_ns) noexcept {
  observe(Hop::tick_to_signal, signal.causation_ts_ns, signal.created_ts_ns);
  observe(Hop::signal_to_executor, signal.created_ts_ns, read_wall_ns);
}

void OrderLatencies::order_sent(std::int64_t accepted_wall_ns, std::int64_t sent_wall_ns) noexcept {
  observe(Hop::executor_to_order_sent, accepted_wall_ns, sent_wall_ns);
}

void OrderLatencies::answered(const proto::OrderReply& reply, std::int64_t sent_wall_ns,
                              std::int64_t round_trip_ns, std::int64_t read_wall_ns) noexcept {
  round_trip_.observe(static_cast<double>(std::max<std::int64_t>(0, round_trip_ns)) / 1e9);
  if (reply.duplicate) return;
  observe(Hop::order_sent_to_broker, sent_wall_ns, reply.broker_ts_ns);
  observe(Hop::broker_to_answer, reply.broker_ts_ns, read_wall_ns);
}

void add_executor_metrics(metrics::MetricsText& out, const ExecutorFigures& f) {
  add_signal_and_order_counters(out, f);
  add_report_counters(out, f);
  add_state_gauges(out, f);
  add_books(out, f);
  out.counter("tp_dead_letters_sent_total", "Dead letters this program handed to the dead-letter sink.",
              f.dead_letters_sent)
      .counter("tp_dead_letters_dropped_total",
               "Dead letters this program dropped unsent (the sink away and its queue full).",
               f.dead_letters_dropped)
      .counter("tp_executor_dead_letters_replayed_total",
               "Stored dead letters sent again at start and when the sink is back after a lost connection "
               "(a kill of either may have lost them).",
               f.dead_letters_replayed)
      .gauge("tp_executor_dead_letters_owed",
             "Stored outcome letters the dead-letter queue had no room for, sent as it empties.",
             f.dead_letters_owed)
      .counter("tp_executor_dead_letters_given_up_total",
               "Owed outcome letters given up unsent (more were owed than the executor keeps); the rows "
               "stay in its store.",
               f.dead_letters_given_up)
      .counter("tp_executor_store_checkpoints_total",
               "Checkpoints of the store's write-ahead log made between bursts.", f.store_checkpoints);
}

void add_latency_metrics(metrics::MetricsText& out, const metrics::Histogram& tick_to_fill,
                         const OrderLatencies& latencies) {
  out.histogram(
         "tp_executor_tick_to_fill_seconds",
         "From the causing tick's gateway_ts_ns to its fill read back from dll_gateway (round trips only).",
         tick_to_fill.sample())
      .histogram("tp_executor_order_round_trip_seconds",
                 "From an order handed to dll_gateway to its answer read back (resends included).",
                 latencies.round_trip().sample());
  for (std::size_t i = 0; i < hop_count; ++i) {
    const auto hop = static_cast<Hop>(i);
    out.histogram("tp_executor_hop_latency_seconds",
                  "One step of an order's way, by hop (across hosts: two clocks compared).",
                  latencies.hop(hop).sample(), {{"hop", std::string(to_string(hop))}});
  }
  out.counter("tp_executor_latency_clock_skews_total",
              "Hop intervals that came out negative (two hosts' clocks apart), observed as 0.",
              latencies.clock_skews());
}

}  // namespace tp::executor
