// The executor's durable memory (SQLite): every signal id it has decided
// about, and every order with its write-ahead intent, final outcome and
// strategy group (so that positions per instrument and per group are rebuilt
// from the fills). One instance per process, owned by the loop's thread (not
// thread-safe).
//
// Durability: WAL journal with synchronous=NORMAL. A committed transaction
// survives a process crash or kill -9 (the WAL is in the OS page cache and is
// replayed on the next open); a power loss or OS crash may lose the last few
// transactions. synchronous=FULL would close that window at the cost of an
// fsync per commit; the failure model here is process crashes, so NORMAL.
//
// Every statement used per message is prepared once and reused. SQLite
// failures throw StoreError (common/sqlite.hpp) naming the file and the
// statement ("executor.db (/path): step 'COMMIT': ..."). A failed write is
// never treated as done: the executor does not ack what it could not record,
// leaves an order's row as it was (reconciliation settles it later) and
// retries while the disk is full (see ExecutorNode).
// Opening refuses a damaged file (common/sqlite_store.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/sqlite.hpp"
#include "executor/order_record.hpp"
#include "executor/position_book.hpp"
#include "executor/trading_controls.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

using StoreError = tp::sqlite::StoreError;

// Positions as the store holds them: per instrument (every fill) and per
// strategy group (the fills of each group's signals).
struct StoredPositions {
  PositionBook instruments;
  GroupBooks groups;
};

// Where the executor is in dll_gateway's report stream: the stream's name
// and the seq it expects next (1 when it has seen none).
struct ReportCursor {
  std::string stream;
  std::uint64_t next_seq = 1;
};

// A dead letter about an outcome (a refused signal, a held order given up,
// an order refused expired). Stored in the transaction that records the
// outcome and sent after it commits; the last ones are sent again when the
// executor starts, because a letter still in the sender's queue dies with a
// killed process. `key` (the signal id: one outcome letter per signal) lets
// the sink write each once. Field order: reason, detail, original first, so
// that an unkeyed letter is written {reason, detail, original}.
struct OutcomeLetter {
  std::string reason;
  std::string detail;
  std::string original;
  std::string key;         // empty: not stored, never sent again
  std::int64_t ts_ns = 0;  // 0: the time it is sent
  bool operator==(const OutcomeLetter&) const = default;
};

// One point of the equity curve (account currency).
struct EquityPoint {
  std::int64_t ts_ns = 0;
  double equity = 0;
  double realized_pnl = 0;
  double unrealized_pnl = 0;
  double daily_pnl = 0;
  bool complete = true;
};

struct SignalRecord {
  std::string signal_id;
  std::string status;  // "ACCEPTED" or "REJECTED"
  std::string reason;
};

class ExecutorStore {
 public:
  static constexpr std::int64_t retention_ns = 7LL * 24 * 3600 * 1'000'000'000;

  // Opens (creating when needed) the database at `path`, refusing it when
  // its write-ahead log would drop committed transactions or it fails
  // quick_check (StoreError naming the file), sets WAL/NORMAL, creates the
  // tables, and prunes signals and finished orders older than
  // retention_ns before `now_ns` (finished orders' fills are first folded
  // into a per-instrument snapshot so that positions stay whole).
  ExecutorStore(const std::string& path, std::int64_t now_ns);
  ExecutorStore(const ExecutorStore&) = delete;
  ExecutorStore& operator=(const ExecutorStore&) = delete;
  ~ExecutorStore();  // rolls back an open batch

  std::optional<SignalRecord> find_signal(std::string_view signal_id);

  // A batch: one transaction (BEGIN IMMEDIATE) around every record_* call
  // made until commit_batch(); the rows are durable only after it returns.
  // Lets the executor accept a burst of signals with one commit. Rolled back
  // when the store is destroyed with the batch still open.
  void begin_batch();
  void commit_batch();
  // Ends a batch whose statement or commit threw: rolls back whatever is
  // still open, so that the next batch starts clean. Nothing of it is kept.
  void abort_batch() noexcept;
  bool in_batch() const noexcept { return in_batch_; }
  // Any transaction open (a batch, or a write under way).
  bool in_transaction() const noexcept { return db_.in_transaction(); }
  // The OS error behind the last failure (ENOSPC for a full disk), or 0.
  int last_errno() const noexcept;
  const std::string& path() const noexcept;
  // The write-ahead log is due a checkpoint, for a moment with no signal
  // waiting (tp::sqlite::Connection::defer_checkpoints).
  bool checkpoint_due() const noexcept { return db_.checkpoint_due(); }
  void checkpoint() { db_.checkpoint(); }  // throws StoreError

  // Atomically (its own transaction, or inside a batch's): the signal row
  // (ACCEPTED) and the order intent. False when the signal id, or the
  // order's, is already known (nothing written).
  bool record_accepted(const proto::TradingSignal& signal, const OrderRecord& intent, std::int64_t now_ns);
  // The signal row (REJECTED, reason) and its dead letter (inside the open
  // batch). False when the id is already known (nothing written).
  bool record_rejected(const proto::TradingSignal& signal, std::string_view reason, std::int64_t now_ns,
                       const OutcomeLetter& letter);

  void set_state(std::string_view client_order_id, OrderState state, std::int64_t now_ns);
  // Stores the broker's answer: state DONE when the status is final, SENT
  // when the broker is still working the order; with its dead letter, when
  // given, atomically (a savepoint: inside the open transaction, else its
  // own).
  void record_outcome(std::string_view client_order_id, const proto::OrderReply& reply, std::int64_t now_ns,
                      const OutcomeLetter* letter = nullptr);

  std::optional<OrderRecord> find_order(std::string_view client_order_id);
  // Orders whose fate must be asked of the broker, oldest first: INTENT,
  // UNKNOWN, and SENT without a working status (answered UNKNOWN).
  std::vector<OrderRecord> open_orders();
  // Orders working at the broker (SENT, ACCEPTED or PARTIALLY_FILLED), oldest first.
  std::vector<OrderRecord> working_orders();
  std::uint64_t count_working();
  // Orders with a cancel REQUESTED and not yet answered, oldest first.
  std::vector<OrderRecord> cancel_requested();
  void set_cancel(std::string_view client_order_id, CancelState state, std::string_view reason,
                  std::int64_t now_ns);
  // In one transaction: the deferred known reports (below), `outcome` (when
  // the report changed the order), the report's row (its id
  // "<stream>:<seq>" is the primary key: a row already there stands), and
  // the cursor moved past it.
  void record_report(const proto::ExecutionReport& report, bool applied, const proto::OrderReply* outcome,
                     std::int64_t now_ns, const OutcomeLetter* letter = nullptr);
  // A report that changed nothing (applied = 0) is kept in memory and
  // written with the next record_report or flush_known, many in one
  // transaction: the usual report repeats an answer already recorded, and a
  // crash that loses it only makes the executor fetch it again (applying it
  // again changes nothing).
  void defer_known(const proto::ExecutionReport& report, std::int64_t now_ns);
  // Writes the deferred reports and moves the cursor past the last (kept in
  // memory when it throws).
  void flush_known();
  std::size_t deferred_known() const noexcept { return deferred_.size(); }
  ReportCursor report_cursor();
  void set_report_cursor(const ReportCursor& cursor);
  // Orders in HELD, oldest first.
  std::vector<OrderRecord> held_orders();
  std::uint64_t count_in_state(OrderState state);
  // Positions from the pruned snapshots plus every stored fill, in the order
  // the fills were recorded: per instrument, and per group for the orders
  // whose strategy is known.
  StoredPositions rebuild_positions();
  // Every order not DONE (INTENT, HELD, SENT, UNKNOWN), oldest first: the
  // open orders the risk limits count.
  std::vector<OrderRecord> unfinished_orders();

  // --- trading controls and the portfolio (each its own transaction) ------
  // The stored trading state; ACTIVE when none was ever stored. A state word
  // this build does not know reads as HALTED (fail closed).
  TradingStatus trading_status();
  // Stores the state and appends it to control_log with the command (or
  // trigger) that made it, in one transaction. Throws StoreError.
  void save_trading_status(const TradingStatus& status, std::string_view command, std::int64_t now_ns);
  // The portfolio's PnL at the first valuation of a UTC day ("YYYY-MM-DD").
  std::optional<double> day_start_pnl(std::string_view day);
  // Kept when the day already has one (the first valuation's stands).
  void set_day_start_pnl(std::string_view day, double pnl, std::int64_t now_ns);
  // The newest `n` stored dead letters, oldest first (sent again at start).
  std::vector<OutcomeLetter> recent_letters(std::size_t n);
  // Letters kept: beyond this the oldest are deleted (checked every
  // letters_kept / 8 inserts).
  static constexpr std::int64_t letters_kept = 4096;
  static constexpr std::int64_t max_equity_points = 100'000;
  // Appends a point; beyond max_equity_points the oldest are deleted.
  void add_equity_point(const EquityPoint& point);

 private:
  using Statement = tp::sqlite::Statement;

  void migrate();
  void insert_report(const proto::ExecutionReport& report, bool applied, std::int64_t now_ns);
  void insert_letter(const OutcomeLetter& letter);
  void prune(std::int64_t now_ns);
  OrderRecord read_order(Statement& s) const;
  void read_snapshots(PositionBook& book, GroupBooks& groups);
  // `row`: instrument, side, filled_quantity, fill_price, strategy.
  static void apply_stored_fill(Statement& row, PositionBook& book, GroupBooks& groups);

  std::string path_;
  std::vector<std::pair<proto::ExecutionReport, std::int64_t>> deferred_;  // known reports, not yet written
  std::string report_id_;      // "<stream>:<seq>" of the report being written: reused, no malloc each
  tp::sqlite::Connection db_;  // declared first: destroyed after the statements
  Statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  bool in_batch_ = false;
  Statement find_signal_, delete_signal_, insert_signal_, insert_order_, set_state_, set_outcome_,
      find_order_, open_orders_, held_orders_, count_state_, working_orders_, cancel_requested_,
      count_working_, set_cancel_, insert_report_, set_cursor_, unfinished_orders_, read_trading_,
      write_trading_, log_control_, read_day_, write_day_, add_equity_, prune_equity_, insert_letter_,
      prune_letters_, recent_letters_;
  std::int64_t letters_since_prune_ = 0;
  std::uint64_t equity_points_ = 0;
};

}  // namespace tp::executor
