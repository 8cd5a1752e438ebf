// The executor process: owns the sockets (PULL signals, PUB order events and
// acks, the dead-letter PUSH), the store and the loop, and wires the parts:
// ExecutionDesk (execution_desk.hpp) decides signals and applies answers,
// BrokerLink (broker_link.hpp) talks to dll_gateway; the node publishes what
// the desk returns, runs the timers (reconcile, stats) on the injected
// clock's monotonic time and holds the fault-injection points. With
// metrics.port set it serves its stats as Prometheus metrics
// (executor_metrics.hpp), published where it writes its stats file. One
// thread (the metrics server's own reads only the published text).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/clock_skew.hpp"
#include "common/config.hpp"
#include "common/dead_letter.hpp"
#include "common/disk_watch.hpp"
#include "common/metrics.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "common/sqlite_store.hpp"
#include "common/stop.hpp"
#include "common/systemd_notify.hpp"
#include "common/zmq_util.hpp"
#include "executor/broker_link.hpp"
#include "executor/execution_desk.hpp"
#include "executor/executor_metrics.hpp"
#include "executor/owed_letters.hpp"
#include "executor/portfolio.hpp"
#include "executor/store.hpp"
#include "proto/codec.hpp"

namespace tp::executor {

// Where a fault test may make the process die (env TP_CRASH_POINT).
enum class CrashPoint { none, after_intent, after_send };
CrashPoint crash_point_from_env();

// Every counter of the process, for tests and stats: the desk's, the
// link's and the node's own (StreamCounters: executor_metrics.hpp).
struct ExecutorCounters : DeskCounters, LinkCounters {
  std::uint64_t signals_received = 0;
  StreamCounters report_stream;
};

class ExecutorNode {
 public:
  // How often open orders are reconciled (and held ones released).
  static constexpr std::int64_t reconcile_interval_ns = 1'000'000'000;
  // After a failed store write, signals are left unread this long before a
  // batch is tried again (a full disk: every second, not a busy loop).
  static constexpr std::int64_t storage_retry_ns = 1'000'000'000;
  // Signals accepted under one commit before their orders go out: bounds the
  // wait of the last one's order behind the others' acceptance.
  static constexpr std::size_t max_signals_per_batch = 64;

  // Opens the store (config.executor.db_path or <run.dir>/executor.db),
  // rebuilds positions (ExecutionDesk), binds and connects the sockets
  // (BrokerLink's takes config.executor's order and breaker settings).
  // Throws on failure.
  ExecutorNode(zmq::context_t& ctx, const Config& config, const Clock& clock,
               CrashPoint crash_point = CrashPoint::none, const Security& security = Security::none());

  // Reconciles open orders, then loops (a RunLoop; timers on the clock's
  // monotonic time) until tp::stop_requested() or stop(); writes the final
  // stats. Returns the exit code (0).
  int run();
  void stop() noexcept { stop_.store(true, std::memory_order_relaxed); }
  bool stopping() const noexcept { return stop_requested() || stop_.load(std::memory_order_relaxed); }

  // What the start-up comparison with the broker's positions found.
  using PositionCheck = tp::executor::PositionCheck;
  PositionCheck position_check() const noexcept { return desk_.position_check(); }

  ExecutorCounters counters() const;  // a copy: the desk's, the link's and the node's
  const PositionBook& positions() const noexcept { return desk_.positions(); }
  std::string stats_json();  // reads the store (orders_unknown)

 private:
  // A run of sends (a batch, a reconcile pass): up to
  // executor.orders_in_flight orders at dll_gateway at once, and the answers
  // received but not yet recorded. Recording them overlaps the orders still
  // in flight (dll_gateway works on those meanwhile), so that the two
  // processes use the two cores at once instead of taking turns, and the
  // answers that arrived together are recorded under one commit. Every
  // answer is recorded before the run ends. A crash before an answer is
  // recorded leaves its order as it was (INTENT): reconciled by query, as
  // after any crash between a send and its record.
  struct Unrecorded {
    std::vector<AnsweredOrder> answers;
    bool unanswered = false;  // an order of the run got no answer (UNKNOWN)
  };

  // Execution reports: from the socket, in seq order; a gap or a new stream
  // fetches the missing ones over the order socket first (fetch_reports).
  void drain_reports();
  void on_report(const proto::ExecutionReport& report, bool fetched);
  // Writes the reports that changed nothing (deferred by the store).
  void flush_reports();
  // Asks dll_gateway for every stored report from the next expected one,
  // until caught up or `until_seq` (exclusive, 0 = all) is reached. False
  // when dll_gateway did not answer (the rest waits for the next pass).
  bool fetch_reports(std::uint64_t until_seq = 0);
  // Takes `stream` as dll_gateway's report stream, from seq 1.
  void follow_stream(const std::string& stream);
  // Applies a ReportQuery's answer; true when it reached the last seq.
  bool apply_batch(const proto::ReportBatch& batch);
  // The CancelRequests read with the last batch of signals, after its orders.
  void handle_cancels();
  void send_cancel(const OrderRecord& order);
  // Reconcile's cancel work: sends the cancels still REQUESTED, asks for the
  // cancel of GTD orders the broker has not expired well past their time.
  void send_requested_cancels();
  // At start, once reports are caught up: the broker's open orders against
  // the executor's working ones.
  void check_open_orders();
  // SIGTERM with executor.cancel_on_shutdown: cancels every working order.
  void cancel_working_orders();
  // Receives and handles the signals that are waiting, at most `limit`, in
  // batches: see drain_signals() in the .cpp.
  void drain_signals(std::size_t limit);
  // Receives up to `max_messages` messages and decides them in one batch
  // (committed here). Throws StoreError when the rows could not be written.
  void accept_batch(std::size_t max_messages, std::size_t& received, bool& more);
  // Decodes one message into the desk's next signal. False when it is not a
  // signal (bad frames, undecodable): dead-lettered, and acked when its
  // sender can be named.
  bool take_signal(std::size_t total_frames);
  // Sends one order (Lazy Pirate) as soon as an order client is free; while
  // every one is busy, records the answers received (one commit) or waits
  // for more. The answer is left in `unrecorded`. False once an order of the
  // run got no answer (it is then UNKNOWN).
  bool send_order(const OrderRecord& order, Unrecorded& unrecorded);
  // Returns once an order client is free, recording answers or waiting for
  // them meanwhile (while_waiting answers the control socket there).
  void await_order_slot(Unrecorded& unrecorded);
  // Whether the answers received are enough for a commit of their own.
  bool enough_to_record(const Unrecorded& unrecorded) const noexcept;
  // Waits for at least one order in flight and takes the answers that came;
  // with `also`, returns as well once `also` is readable.
  void collect(Unrecorded& unrecorded, zmq::socket_t* also = nullptr);
  // Records the answers received, under one commit.
  void record_answers(Unrecorded& unrecorded);
  // Records every answer of the run: those received, then those of the
  // orders still in flight (recording overlaps the rest). With `also`, it
  // stops as soon as that socket is readable and says so (true): a signal
  // that comes while orders are out is decided at once, its risk checks
  // counting them at their worst; what is answered is recorded later.
  bool record(Unrecorded& unrecorded, zmq::socket_t* also = nullptr);
  // Sends the HELD orders (oldest first) once the breaker is closed; gives up
  // the ones whose signal has expired; stops at an order that got no answer
  // (UNKNOWN: the next pass asks about it).
  void release_held(Unrecorded& unrecorded);
  void reconcile();
  // Once no order is open or held: asks the broker for each position and
  // lets the desk compare. Pending until dll_gateway answers.
  void check_positions();
  // Writes the stats file when due: from the loop, and while an order waits
  // on dll_gateway, so that the heartbeat says "alive" during a long wait.
  void heartbeat();
  // The store's checkpoint, when due and no signal waits.
  void checkpoint_if_quiet();
  void storage_failed(std::string_view what, const StoreError& e, int err);
  // True for storage_retry_ns after a failed write: signals are not read.
  bool storage_paused() const noexcept;
  // --- trading controls and the portfolio (executor_controls.cpp) ---------
  // One ControlRequest from the control socket: answered once the desk has
  // stored the new state, then enforced.
  void handle_control();
  // While an order waits on dll_gateway: answers the requests waiting on
  // the control socket (the new state is stored and holds at once: no more
  // orders go out while HALTED), leaving their cancels and closing orders
  // to the loop (enforce_pending_). Not while a transaction is open.
  void answer_control();
  // Reads and answers one request; false when none was waiting or it was
  // refused.
  bool take_control_request();
  // The tick feed, for the latest mid of each instrument (the marks).
  void drain_ticks();
  // Every portfolio.interval_ms: values the books at the marks, publishes
  // PNL.<sym> and PORTFOLIO, stores an equity point, and enters REDUCING
  // when the day's PnL breaks risk.max_daily_loss.
  void value_portfolio();
  // HALTED or flattening: cancels every working order, gives up held ones,
  // and sends the flatten's closing orders once nothing is open.
  void enforce_trading_state();

  void publish(Outbox& out);
  void resend_stored_letters();
  void publish_ack(const std::string& topic, const proto::SignalAck& ack);
  void publish_event(const proto::OrderEvent& event);
  void publish_position(const proto::StrategyPosition& position);
  // Every known (group, instrument)'s StrategyPosition: at start and with
  // each stats write (run.stats_interval_ms).
  void publish_positions();
  void write_stats();
  // The stats' figures as Prometheus metrics, swapped into the server.
  void publish_metrics();
  ExecutorFigures figures();  // reads the store (orders_unknown, orders_intent, orders_working)

  const Config& config_;
  const Clock& clock_;
  CrashPoint crash_point_;
  std::string stats_path_;
  ExecutorStore store_;
  ExecutionDesk desk_;
  zmq::socket_t signals_;
  SocketMonitor signals_monitor_;  // counts connections ZeroMQ cut (oversized frames)
  zmq::socket_t events_;
  zmq::socket_t reports_;
  // Counts and redials a connection ZeroMQ cut (an oversized report frame):
  // libzmq does not reconnect it by itself.
  SocketMonitor reports_monitor_;
  BrokerLink link_;
  DeadLetterSender dead_letters_;
  std::uint64_t letters_resent_ = 0;  // stored outcome letters sent again: at start, the sink back
  proto::Encoder encoder_;
  proto::Decoder decoder_;
  std::vector<zmq::message_t> frames_;
  Outbox outbox_;  // filled by the desk, emptied by publish()
  // Acks and events. A PUB never refuses (ZeroMQ drops for a slow
  // subscriber unseen), so `dropped` stays 0; not in the stats.
  SendCounters event_sends_;
  std::uint64_t signals_received_ = 0;
  std::vector<proto::CancelRequest> cancels_;  // read with the current batch
  // The order in flight on each of link_'s order clients (by slot), and
  // when it was handed over (for its round trip).
  struct SentAt {
    std::int64_t wall_ns = 0;
    std::int64_t monotonic_ns = 0;
  };
  std::vector<std::optional<OrderRecord>> flying_;
  OwedLetters owed_letters_;  // stored letters the dead-letter queue could not take
  std::vector<SentAt> flying_sent_;
  OrderLatencies latencies_;
  ClockLags clock_lags_;
  LagWindow& signal_lag_ = clock_lags_.add("strategy");  // the strategies' clocks, from created_ts_ns
  LagWindow& tick_lag_ = clock_lags_.add("gateway");     // the gateway's, from its ticks' stamps
  std::vector<BrokerLink::SettledOrder> settled_;        // reused by collect()
  ReportCursor cursor_;                                  // the next report expected (as the store holds it)
  bool reports_caught_up_ = false;                       // a fetch reached dll_gateway's last seq
  StreamCounters stream_counters_;
  DiskWatch disk_;
  WriteFailures failures_;
  SystemdNotifier systemd_;  // WATCHDOG=1 from heartbeat(): also while an order waits on dll_gateway
  std::int64_t storage_paused_until_ns_ = 0;  // monotonic
  tp::sqlite::QuietCheckpoint checkpoint_;    // the store's, between bursts
  std::int64_t stats_every_ns_ = 0;
  std::int64_t next_stats_ns_ = 0;              // monotonic
  zmq::socket_t control_;                       // REP <- tpctl
  std::vector<zmq::message_t> frames_control_;  // not frames_: a request may come mid-exchange
  bool enforce_pending_ = false;                // a command answered mid-wait: enforced from the loop
  SendCounters control_sends_;
  zmq::socket_t ticks_;  // SUB: the marks
  Marks marks_;
  Valuation valuation_;                     // the last one
  std::string day_;                         // the UTC day day_start_pnl_ belongs to
  double day_start_pnl_ = 0;                // account currency
  bool day_start_stored_ = false;           // false: written again at the next valuation
  std::vector<std::string> waiting_marks_;  // open positions the day\'s start waits for (a mark, a rate)
  double daily_pnl_ = 0;
  std::int64_t next_portfolio_ns_ = 0;               // monotonic
  std::unique_ptr<metrics::MetricsServer> metrics_;  // null when metrics.port = 0
  std::atomic<bool> stop_{false};
  bool shutdown_cancels_ = false;  // cancel_working_orders() is sending: not "stopping" for the order client
};

}  // namespace tp::executor
