// The executor process: owns the sockets (PULL signals, PUB order events and
// acks, the OrderClient's REQ, the dead-letter PUSH), the store and the
// position book, and runs the single poll loop. One thread; the pure parts
// (decision, risk, positions) live in their own headers.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "common/stop.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/dead_letter.hpp"
#include "common/disk_watch.hpp"
#include "common/histogram.hpp"
#include "executor/circuit_breaker.hpp"
#include "executor/decision.hpp"
#include "executor/order_client.hpp"
#include "executor/position_book.hpp"
#include "executor/store.hpp"
#include "proto/codec.hpp"

namespace tp::executor {

// Where a fault test may make the process die (env TP_CRASH_POINT).
enum class CrashPoint { none, after_intent, after_send };
CrashPoint crash_point_from_env();

struct ExecutorCounters {
  std::uint64_t signals_received = 0;
  std::uint64_t signals_accepted = 0;
  std::uint64_t duplicates = 0;
  std::map<std::string, std::uint64_t, std::less<>> rejected;  // reason -> n
  std::uint64_t orders_sent = 0;
  std::uint64_t order_timeouts = 0;
  std::uint64_t fills = 0;
  std::uint64_t partial_fills = 0;
  std::uint64_t broker_rejects = 0;
  std::uint64_t orders_held = 0;     // recorded while the breaker was not closed
  std::uint64_t held_expired = 0;    // held orders given up: the signal expired first
  std::uint64_t liveness_probes = 0; // OrderQuery for a dummy id when nothing else was asked
};

class ExecutorNode {
 public:
  // How often open orders are reconciled (and held ones released).
  static constexpr std::int64_t reconcile_interval_ns = 1'000'000'000;
  // dll_gateway's liveness: when nothing has been asked of it for this long,
  // or as the half-open breaker's probe, one OrderQuery for an id that never
  // exists (one attempt, no retries) tells whether it answers.
  static constexpr std::int64_t liveness_idle_ns = 5'000'000'000;
  static constexpr std::string_view liveness_probe_id = "C-liveness-probe";
  // After a failed store write, signals are left unread this long before a
  // batch is tried again (a full disk: every second, not a busy loop).
  static constexpr std::int64_t storage_retry_ns = 1'000'000'000;

  // Opens the store (config.executor.db_path or <run.dir>/executor.db),
  // rebuilds positions, binds and connects the sockets. The circuit breaker
  // (see circuit_breaker.hpp) takes config.executor.breaker_failures and
  // breaker_cooling_ms. Throws on failure.
  ExecutorNode(zmq::context_t& ctx, const Config& config, const Clock& clock,
               CrashPoint crash_point = CrashPoint::none, const Security& security = Security::none());

  // Reconciles open orders, then loops until tp::stop_requested() or
  // stop(); writes the final stats. Returns the exit code (0).
  int run();
  void stop() noexcept { stop_.store(true, std::memory_order_relaxed); }
  bool stopping() const noexcept { return stop_requested() || stop_.load(std::memory_order_relaxed); }

  // What the start-up comparison with the broker's positions found.
  enum class PositionCheck { pending, matched, mismatch, adopted, unavailable };
  PositionCheck position_check() const noexcept { return position_check_; }

  const ExecutorCounters& counters() const noexcept { return counters_; }
  const PositionBook& positions() const noexcept { return book_; }
  std::string stats_json();  // reads the store (orders_unknown)

 private:
  // One signal of the batch being accepted; slots are reused across batches
  // so that their strings keep their capacity (decode_into allocates nothing).
  struct Slot {
    proto::TradingSignal signal;
    Verdict verdict = Verdict::accept;
    bool hold = false;        // accept: recorded HELD
    std::string reason;       // reject
    std::string detail;       // reject
    std::string payload;      // reject: the original bytes, for the dead letter
    OrderRecord order;        // accept
  };

  // Receives and handles the signals that are waiting, at most `limit`, in
  // batches: see run().
  void drain_signals(std::size_t limit);
  // Accept phase of one batch: receives up to `max_messages` messages into
  // slots, decides them and commits their rows in one transaction; returns
  // the slots used. Throws StoreError when the rows could not be written.
  std::size_t accept_batch(std::size_t max_messages, std::size_t& received, bool& more);
  // Accept phase for one message: decodes into the next slot and decides.
  // False when the message used no slot (bad frames, undecodable).
  bool take_signal(std::size_t total_frames, Slot& slot);
  void decide_slot(Slot& slot);
  // After the batch commit: acks, events, dead letters, in arrival order.
  void publish_outcome(const Slot& slot);
  // Send phase for one accepted order (not HELD at accept time).
  void send_or_hold(OrderRecord& order);
  void reject(const proto::TradingSignal& signal, const std::string& reason, const std::string& detail,
              std::string_view payload);
  void count_rejected(std::string_view reason);
  // Sends (Lazy Pirate); false when no answer came. The answer is applied
  // while the next order is in flight, or by settle().
  bool send_order(const OrderRecord& order);
  // Applies the answer send_order() left for later, if any. Called before
  // anything reads positions or orders again (the next batch's risk checks,
  // reconcile, stats, stop).
  void settle();
  // The breaker's gate and outcome, with one log line per state change.
  bool breaker_allows();
  void broker_answered(bool answered);
  void log_breaker(BreakerState before);
  // Sends the HELD orders (oldest first) once the breaker is closed; gives up
  // the ones whose signal has expired. False when the broker failed.
  bool release_held();
  void give_up_held(const OrderRecord& order);
  // Records the broker's answer (received at `received_ns`), updates
  // positions, publishes the event.
  void apply_reply(const OrderRecord& order, const proto::OrderReply& reply, bool live, std::int64_t received_ns);
  void reconcile();
  // Once no order is open or held: asks the broker for each position and
  // compares (see PositionCheck); a mismatch halts new signals unless
  // executor.adopt_broker_positions. Pending until dll_gateway answers.
  void check_positions();
  // Writes the stats file when due: from the loop, and while an order waits
  // on dll_gateway, so that the heartbeat says "alive" during a long wait.
  void heartbeat();
  // Runs one store write; a StoreError is recorded (storage_failed) and
  // turned into false: the write did not happen, and the caller does not act
  // as if it had.
  template <class Write>
  bool stored(std::string_view what, Write&& write) {
    try {
      write();
      return true;
    } catch (const StoreError& e) {
      storage_failed(what, e, store_.last_errno());
      return false;
    }
  }
  void storage_failed(std::string_view what, const StoreError& e, int err);
  // True for storage_retry_ns after a failed write: signals are not read.
  bool storage_paused() const noexcept;
  void publish_ack(const proto::TradingSignal& signal, proto::AckStatus status, std::string_view reason);
  void publish_event(const proto::OrderEvent& event);
  void write_stats();

  const Config& config_;
  const Clock& clock_;
  CrashPoint crash_point_;
  std::string stats_path_;
  ExecutorStore store_;
  PositionBook book_;
  zmq::socket_t signals_;
  SocketMonitor signals_monitor_;  // counts connections ZeroMQ cut (oversized frames)
  zmq::socket_t events_;
  OrderClient orders_;
  DeadLetterSender dead_letters_;
  proto::Encoder encoder_;
  proto::Decoder decoder_;
  std::vector<zmq::message_t> frames_;
  std::vector<Slot> slots_;
  LatencyHistogram tick_to_fill_;
  ExecutorCounters counters_;
  DiskWatch disk_;
  CircuitBreaker breaker_;
  bool broker_alive_ = false;   // the last request to dll_gateway was answered
  std::int64_t last_broker_exchange_ns_ = 0;  // monotonic; the last request (either outcome)
  std::uint64_t held_ = 0;      // HELD orders in the store
  // The last answered order, not yet applied: recording it overlaps the next
  // order's round trip (dll_gateway works on that one meanwhile), so that
  // the two processes use the two cores at once instead of taking turns.
  // A crash before it is applied leaves the order SENT: reconciled by query,
  // as after any crash between a send and its record.
  struct Answered {
    OrderRecord order;
    proto::OrderReply reply;
    std::int64_t received_ns = 0;
  };
  std::optional<Answered> unsettled_;
  PositionCheck position_check_ = PositionCheck::pending;
  struct Mismatch {
    double executor = 0;
    double broker = 0;
  };
  std::map<std::string, Mismatch, std::less<>> position_mismatches_;
  WriteFailures failures_;
  std::int64_t storage_paused_until_ns_ = 0;  // monotonic
  std::int64_t stats_every_ns_ = 0;
  std::int64_t next_stats_ns_ = 0;  // monotonic
  std::atomic<bool> stop_{false};
};

std::string_view to_string(ExecutorNode::PositionCheck c) noexcept;

}  // namespace tp::executor
