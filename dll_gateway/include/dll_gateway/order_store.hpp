// OrderStore: dll_gateway's durable memory of orders, cancels and execution
// reports, so that a retried or replayed request never reaches the broker
// twice, even across a crash and restart, and so that every change of an
// order is numbered and kept for the executor to fetch. One SQLite file
// (<run.dir>/dll_gateway.db by default):
//   orders   a row is PENDING from just before the broker is called until
//            its answer is stored, then DONE with the order's latest state
//            (a DONE row may be open: ACCEPTED or PARTIALLY_FILLED);
//   cancels  the same for a cancel: PENDING before the broker's cancel call,
//            DONE with its answer (one cancel per order reaches the broker);
//   reports  every change of an order, numbered 1, 2, ... without gaps
//            (seq = rowid); written in the transaction that changes the order;
//   meta     the stream id: names this file's numbering, so that a reader
//            can tell a new file (seq restarts at 1) from a repeat.
//
// Durability: WAL journal with synchronous=NORMAL. Every committed row
// survives a crash of this process (kill -9 included); a power loss or OS
// crash may lose the last few commits (WAL is synced at checkpoints, not per
// commit) but never corrupts the file. The connection holds the file in
// locking_mode=EXCLUSIVE: no per-transaction locking, and no other process can
// open the database while dll_gateway runs (inspect it after it stops).
//
// Methods throw StoreError (common/sqlite.hpp) on SQLite failures (disk full,
// I/O error), naming the file and keeping the OS errno; the caller decides
// what that means for the order. One thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/sqlite.hpp"
#include "proto/messages.hpp"

namespace tp::dll_gateway {

using StoreError = tp::sqlite::StoreError;

// The row's state: PENDING or DONE on disk. How it relates to the executor's
// state for the same order: common/order_states.hpp.
enum class OrderState { pending, done };

struct StoredOrder {
  OrderState state = OrderState::pending;
  // What the order is (from its PENDING row; empty for a row made from a
  // broker answer alone, e.g. after the file was lost).
  std::string signal_id;
  std::string instrument;
  proto::Side side = proto::Side::buy;
  double quantity = 0;
  proto::OrderTerms terms;
  // For DONE rows: the order's latest state (duplicate = false).
  proto::OrderReply reply;
};

struct StoredCancel {
  OrderState state = OrderState::pending;
  proto::OrderReply reply;  // DONE: the answer the cancel got
};

class OrderStore {
 public:
  // Reports older than this are pruned at open; a reader asking for them is
  // told so (ReportBatch::reason) and settles by the open-orders query.
  static constexpr std::int64_t report_retention_ns = 7LL * 24 * 3600 * 1'000'000'000;

  // Opens or creates the database at `path` (adding the columns and tables
  // of orders with a life to an older file). Throws StoreError naming it,
  // also when the file is damaged: a write-ahead log that would drop
  // committed rows, or a failed quick_check (common/sqlite_store.hpp).
  explicit OrderStore(const std::string& path, std::int64_t now_ns = 0);
  ~OrderStore();
  OrderStore(const OrderStore&) = delete;
  OrderStore& operator=(const OrderStore&) = delete;

  std::optional<StoredOrder> find(const std::string& client_order_id);
  // Records that `order` is about to go to the broker (committed on return).
  void insert_pending(const proto::OrderRequest& order, std::int64_t ts_ns);
  // The same for several orders in one transaction: all of them committed on
  // return, none when it throws. The ids must be new and distinct.
  void insert_pending(std::span<const proto::OrderRequest* const> orders, std::int64_t ts_ns);
  // Stores the order's latest state as DONE, creating the row when there was
  // none, and with it `report` (its seq is assigned here and written back),
  // in one transaction (committed on return). No report when null.
  void store_done(const proto::OrderReply& reply, std::int64_t ts_ns,
                  proto::ExecutionReport* report = nullptr);

  // Several of store_done in one transaction (the reports a poll found).
  struct Change {
    proto::OrderReply reply;
    proto::ExecutionReport report;
  };
  void store_changes(std::vector<Change>& changes, std::int64_t ts_ns);

  // Rows the broker may still change, oldest first: DONE with a status that
  // is not final (resting at the broker), and PENDING (its answer never
  // stored: a crash between the answer and its row, a failed write).
  std::vector<StoredOrder> open_orders();

  std::optional<StoredCancel> find_cancel(const std::string& client_order_id);
  void insert_cancel_pending(const std::string& client_order_id, std::int64_t ts_ns);
  // The cancel's answer (DONE) and, when the cancel changed the order, the
  // order's new state and its report, in one transaction.
  void store_cancel_done(const proto::OrderReply& answer, const proto::OrderReply* order_state,
                         proto::ExecutionReport* report, std::int64_t ts_ns);

  // Stored reports from `from_seq` on, at most `max_count`, in seq order.
  std::vector<proto::ExecutionReport> reports_from(std::uint64_t from_seq, std::size_t max_count);
  std::uint64_t last_seq() const noexcept { return last_seq_; }
  std::uint64_t first_seq();  // the oldest kept (after pruning); last_seq() + 1 when none
  const std::string& stream() const noexcept { return stream_; }
  const std::string& path() const noexcept { return path_; }
  // The write-ahead log is due a checkpoint, for a moment with no request
  // waiting (tp::sqlite::Connection::defer_checkpoints).
  bool checkpoint_due() const noexcept;
  void checkpoint();  // throws StoreError

 private:
  struct Impl;
  void insert_report(proto::ExecutionReport& report, std::int64_t ts_ns);
  // Runs `work` (which may insert reports) in one transaction; a rollback
  // gives the seq numbers it took back.
  template <class Work>
  void in_report_transaction(Work&& work);
  std::string path_;
  std::unique_ptr<Impl> impl_;
  std::string stream_;
  std::uint64_t last_seq_ = 0;
};

}  // namespace tp::dll_gateway
