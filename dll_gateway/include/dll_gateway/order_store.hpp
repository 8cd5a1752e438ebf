// OrderStore: dll_gateway's durable memory of client order ids, so that a
// retried or replayed OrderRequest never reaches the broker twice, even
// across a crash and restart. One SQLite file (<run.dir>/dll_gateway.db by
// default), table orders: a row is PENDING from just before the broker is
// called until its answer is stored, then DONE with the reply.
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
#include <string>

#include "common/sqlite.hpp"
#include "proto/messages.hpp"

namespace tp::dll_gateway {

using StoreError = tp::sqlite::StoreError;

// The row's state: PENDING or DONE on disk. How it relates to the executor's
// state for the same order: common/order_states.hpp.
enum class OrderState { pending, done };

struct StoredOrder {
  OrderState state = OrderState::pending;
  // For DONE rows: the broker's reply as first answered (duplicate = false).
  proto::OrderReply reply;
};

class OrderStore {
 public:
  // Opens or creates the database at `path`. Throws StoreError naming it,
  // also when the file is damaged: a write-ahead log that would drop
  // committed rows, or a failed quick_check (common/sqlite_store.hpp).
  explicit OrderStore(const std::string& path);
  ~OrderStore();
  OrderStore(const OrderStore&) = delete;
  OrderStore& operator=(const OrderStore&) = delete;

  std::optional<StoredOrder> find(const std::string& client_order_id);
  // Records that `order` is about to go to the broker (committed on return).
  void insert_pending(const proto::OrderRequest& order, std::int64_t ts_ns);
  // Stores the broker's answer for reply.client_order_id as DONE, creating
  // the row when there was none (committed on return).
  void store_done(const proto::OrderReply& reply, std::int64_t ts_ns);

  const std::string& path() const noexcept { return path_; }

 private:
  struct Impl;
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tp::dll_gateway
