#include "dll_gateway/order_store.hpp"

#include "common/order_states.hpp"
#include "common/sqlite_store.hpp"

namespace tp::dll_gateway {

namespace {

// The state words and what they mean beside executor.db's: common/order_states.hpp.
constexpr const char* schema = R"sql(
CREATE TABLE IF NOT EXISTS orders (
  client_order_id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE')),
  signal_id TEXT,
  instrument TEXT,
  side INTEGER,
  quantity REAL,
  order_id TEXT NOT NULL DEFAULT '',
  status INTEGER,
  filled_quantity REAL NOT NULL DEFAULT 0,
  fill_price REAL NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  broker_ts_ns INTEGER NOT NULL DEFAULT 0,
  created_ts_ns INTEGER NOT NULL,
  updated_ts_ns INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

}  // namespace

struct OrderStore::Impl {
  // The connection is held exclusively (locking_mode=EXCLUSIVE): the lock is
  // taken once instead of per transaction (14 fcntl() calls per order, half
  // of the order path's system time: measured 28 instead of 40 us of CPU per
  // find + PENDING + DONE), and the WAL index lives in heap memory instead of
  // a -shm file. Another process can read the file only after this one exits.
  explicit Impl(const std::string& path)
      : db(tp::sqlite::open_store(path, 1000)),
        find(init(db), sql_find, naming),
        pending(db, sql_pending, naming),
        done(db, sql_done, naming) {}

  // Runs before the statements are prepared: they need the table.
  static const tp::sqlite::Connection& init(tp::sqlite::Connection& db) {
    db.exec(schema);
    return db;
  }

  // One statement per method: "dll_gateway.db (...): step: ..." says which.
  static constexpr auto naming = tp::sqlite::Statement::Naming::operation;

  static constexpr const char* sql_find =
      "SELECT state, order_id, status, filled_quantity, fill_price, reason, broker_ts_ns "
      "FROM orders WHERE client_order_id = ?1";
  static constexpr const char* sql_pending =
      "INSERT INTO orders (client_order_id, state, signal_id, instrument, side, quantity, "
      "created_ts_ns, updated_ts_ns) VALUES (?1, 'PENDING', ?2, ?3, ?4, ?5, ?6, ?6)";
  static constexpr const char* sql_done =
      "INSERT INTO orders (client_order_id, state, order_id, status, filled_quantity, fill_price, "
      "reason, broker_ts_ns, created_ts_ns, updated_ts_ns) "
      "VALUES (?1, 'DONE', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
      "ON CONFLICT (client_order_id) DO UPDATE SET state = 'DONE', order_id = excluded.order_id, "
      "status = excluded.status, filled_quantity = excluded.filled_quantity, "
      "fill_price = excluded.fill_price, reason = excluded.reason, "
      "broker_ts_ns = excluded.broker_ts_ns, updated_ts_ns = excluded.updated_ts_ns";

  tp::sqlite::Connection db;
  tp::sqlite::Statement find;
  tp::sqlite::Statement pending;
  tp::sqlite::Statement done;
};

OrderStore::OrderStore(const std::string& path) : path_(path), impl_(std::make_unique<Impl>(path)) {}

OrderStore::~OrderStore() = default;

std::optional<StoredOrder> OrderStore::find(const std::string& client_order_id) {
  auto& q = impl_->find.reset().bind(1, client_order_id);
  if (!q.step()) return std::nullopt;
  StoredOrder o;
  o.state = q.column_text(0) == order_states::dll_gateway_db::done ? OrderState::done : OrderState::pending;
  o.reply.client_order_id = client_order_id;
  if (o.state == OrderState::done) {
    o.reply.order_id = q.column_text(1);
    o.reply.status = static_cast<proto::OrderStatus>(q.column_int(2));
    o.reply.filled_quantity = q.column_double(3);
    o.reply.fill_price = q.column_double(4);
    o.reply.reason = q.column_text(5);
    o.reply.broker_ts_ns = q.column_int(6);
  }
  q.reset();  // ends the read: no transaction stays open between calls
  return o;
}

void OrderStore::insert_pending(const proto::OrderRequest& order, std::int64_t ts_ns) {
  impl_->pending.reset()
      .bind(1, order.client_order_id)
      .bind(2, order.signal_id)
      .bind(3, order.instrument)
      .bind(4, static_cast<std::int64_t>(order.side))
      .bind(5, order.quantity)
      .bind(6, ts_ns)
      .step();  // autocommit: durable (per the pragmas) on return
}

void OrderStore::store_done(const proto::OrderReply& reply, std::int64_t ts_ns) {
  impl_->done.reset()
      .bind(1, reply.client_order_id)
      .bind(2, reply.order_id)
      .bind(3, static_cast<std::int64_t>(reply.status))
      .bind(4, reply.filled_quantity)
      .bind(5, reply.fill_price)
      .bind(6, reply.reason)
      .bind(7, reply.broker_ts_ns)
      .bind(8, ts_ns)
      .step();
}

}  // namespace tp::dll_gateway
