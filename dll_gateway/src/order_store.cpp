#include "dll_gateway/order_store.hpp"

#include <chrono>

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
CREATE TABLE IF NOT EXISTS cancels (
  client_order_id TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE')),
  order_id TEXT NOT NULL DEFAULT '',
  status INTEGER,
  filled_quantity REAL NOT NULL DEFAULT 0,
  fill_price REAL NOT NULL DEFAULT 0,
  reason TEXT NOT NULL DEFAULT '',
  broker_ts_ns INTEGER NOT NULL DEFAULT 0,
  created_ts_ns INTEGER NOT NULL,
  updated_ts_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
  seq INTEGER PRIMARY KEY,
  client_order_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  instrument TEXT NOT NULL,
  side INTEGER NOT NULL,
  status INTEGER NOT NULL,
  quantity REAL NOT NULL,
  last_quantity REAL NOT NULL,
  last_price REAL NOT NULL,
  filled_quantity REAL NOT NULL,
  avg_price REAL NOT NULL,
  reason TEXT NOT NULL,
  broker_ts_ns INTEGER NOT NULL,
  ts_ns INTEGER NOT NULL,
  quote_seq INTEGER NOT NULL,
  quote_ts_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
)sql";

// Columns of orders with a life, added to a file made before them; and the
// executor's send time of the request (OrderRequest.sent_ts_ns: the first
// attempt's, which a resend repeats), so that a reader can tell an order in
// flight at a moment from one sent after it.
constexpr const char* terms_columns[][2] = {
    {"order_type", "INTEGER NOT NULL DEFAULT 0"},    {"limit_price", "REAL NOT NULL DEFAULT 0"},
    {"time_in_force", "INTEGER NOT NULL DEFAULT 0"}, {"good_till_ns", "INTEGER NOT NULL DEFAULT 0"},
    {"sent_ts_ns", "INTEGER NOT NULL DEFAULT 0"},
};

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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
        done(db, sql_done, naming),
        open(db, sql_open, naming),
        find_cancel(db,
                    "SELECT state, order_id, status, filled_quantity, fill_price, reason, broker_ts_ns "
                    "FROM cancels WHERE client_order_id = ?1",
                    naming),
        cancel_pending(db,
                       "INSERT INTO cancels (client_order_id, state, created_ts_ns, updated_ts_ns) "
                       "VALUES (?1, 'PENDING', ?2, ?2)",
                       naming),
        cancel_done(
            db,
            "INSERT INTO cancels (client_order_id, state, order_id, status, filled_quantity, "
            "fill_price, reason, broker_ts_ns, created_ts_ns, updated_ts_ns) "
            "VALUES (?1, 'DONE', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
            "ON CONFLICT (client_order_id) DO UPDATE SET state = 'DONE', order_id = excluded.order_id, "
            "status = excluded.status, filled_quantity = excluded.filled_quantity, "
            "fill_price = excluded.fill_price, reason = excluded.reason, "
            "broker_ts_ns = excluded.broker_ts_ns, updated_ts_ns = excluded.updated_ts_ns",
            naming),
        report(
            db,
            "INSERT INTO reports (seq, client_order_id, order_id, instrument, side, status, quantity, "
            "last_quantity, last_price, filled_quantity, avg_price, reason, broker_ts_ns, ts_ns, quote_seq, "
            "quote_ts_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            naming),
        reports_from(db,
                     "SELECT seq, client_order_id, order_id, instrument, side, status, quantity, "
                     "last_quantity, last_price, filled_quantity, avg_price, reason, broker_ts_ns, ts_ns, "
                     "quote_seq, quote_ts_ns FROM reports WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
                     naming),
        begin(db, "BEGIN IMMEDIATE", naming),
        commit(db, "COMMIT", naming),
        rollback(db, "ROLLBACK", naming) {}

  // Runs before the statements are prepared: they need the tables.
  static const tp::sqlite::Connection& init(tp::sqlite::Connection& db) {
    db.exec(schema);
    for (const auto& [column, type] : terms_columns) {
      tp::sqlite::Statement cols(db, "SELECT 1 FROM pragma_table_info('orders') WHERE name = ?1");
      if (!cols.reset().bind(1, std::string_view(column)).step())
        db.exec(std::string("ALTER TABLE orders ADD COLUMN ") + column + " " + type);
    }
    return db;
  }

  // One statement per method: "dll_gateway.db (...): step: ..." says which.
  static constexpr auto naming = tp::sqlite::Statement::Naming::operation;

  static constexpr const char* sql_find =
      "SELECT state, order_id, status, filled_quantity, fill_price, reason, broker_ts_ns, signal_id, "
      "instrument, side, quantity, order_type, limit_price, time_in_force, good_till_ns, client_order_id "
      "FROM orders WHERE client_order_id = ?1";
  // Open: DONE and not final (proto::is_final: FILLED 4, REJECTED 5, CANCELED 6, EXPIRED 8), or
  // PENDING (the broker's answer never stored: a crash, a failed write).
  static constexpr const char* sql_open =
      "SELECT state, order_id, status, filled_quantity, fill_price, reason, broker_ts_ns, signal_id, "
      "instrument, side, quantity, order_type, limit_price, time_in_force, good_till_ns, client_order_id "
      "FROM orders WHERE (state = 'DONE' AND status IN (1, 2, 3)) OR state = 'PENDING' ORDER BY "
      "created_ts_ns";
  static constexpr const char* sql_pending =
      "INSERT INTO orders (client_order_id, state, signal_id, instrument, side, quantity, "
      "created_ts_ns, updated_ts_ns, order_type, limit_price, time_in_force, good_till_ns, sent_ts_ns) "
      "VALUES (?1, 'PENDING', ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11)";
  static constexpr const char* sql_done =
      "INSERT INTO orders (client_order_id, state, order_id, status, filled_quantity, fill_price, "
      "reason, broker_ts_ns, created_ts_ns, updated_ts_ns) "
      "VALUES (?1, 'DONE', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
      "ON CONFLICT (client_order_id) DO UPDATE SET state = 'DONE', order_id = excluded.order_id, "
      "status = excluded.status, filled_quantity = excluded.filled_quantity, "
      "fill_price = excluded.fill_price, reason = excluded.reason, "
      "broker_ts_ns = excluded.broker_ts_ns, updated_ts_ns = excluded.updated_ts_ns";

  // Runs `work` in one transaction; rolls back when it throws.
  template <class Work>
  void transaction(Work&& work) {
    begin.reset().run();
    try {
      work();
      commit.reset().run();
    } catch (...) {
      if (db.in_transaction()) {
        try {
          rollback.reset().run();
        } catch (...) {
          // The connection rolls back on close; the first error is the one to report.
        }
      }
      throw;
    }
  }

  static StoredOrder read_order(tp::sqlite::Statement& q) {
    StoredOrder o;
    o.state = q.column_text(0) == order_states::dll_gateway_db::done ? OrderState::done : OrderState::pending;
    o.reply.client_order_id = q.column_text(15);
    if (o.state == OrderState::done) {
      o.reply.order_id = q.column_text(1);
      o.reply.status = static_cast<proto::OrderStatus>(q.column_int(2));
      o.reply.filled_quantity = q.column_double(3);
      o.reply.fill_price = q.column_double(4);
      o.reply.reason = q.column_text(5);
      o.reply.broker_ts_ns = q.column_int(6);
    }
    o.signal_id = q.column_text(7);
    o.instrument = q.column_text(8);
    o.side = q.column_int(9) == static_cast<int>(proto::Side::sell) ? proto::Side::sell : proto::Side::buy;
    o.quantity = q.column_double(10);
    o.terms.order_type = static_cast<proto::OrderType>(q.column_int(11));
    o.terms.limit_price = q.column_double(12);
    o.terms.time_in_force = static_cast<proto::TimeInForce>(q.column_int(13));
    o.terms.good_till_ns = q.column_int(14);
    return o;
  }

  tp::sqlite::Connection db;
  tp::sqlite::Statement find, pending, done, open, find_cancel, cancel_pending, cancel_done, report,
      reports_from;
  tp::sqlite::Statement begin, commit, rollback;
};

bool OrderStore::checkpoint_due() const noexcept { return impl_->db.checkpoint_due(); }

void OrderStore::checkpoint() { impl_->db.checkpoint(); }

OrderStore::OrderStore(const std::string& path, std::int64_t now_ns)
    : path_(path), impl_(std::make_unique<Impl>(path)) {
  auto& db = impl_->db;
  {
    tp::sqlite::Statement q(db, "SELECT value FROM meta WHERE key = 'stream'");
    if (q.step()) stream_ = q.column_text(0);
  }
  if (stream_.empty()) {
    // Names this file's numbering: a new file (a lost or replaced one)
    // starts at seq 1 again under another name.
    stream_ = "dg-" + std::to_string(wall_ns());
    tp::sqlite::Statement(db, "INSERT INTO meta (key, value) VALUES ('stream', ?1)").bind(1, stream_).run();
  }
  if (now_ns > 0) {
    tp::sqlite::Statement(db, "DELETE FROM reports WHERE ts_ns < ?1 AND seq < (SELECT MAX(seq) FROM reports)")
        .bind(1, now_ns - report_retention_ns)
        .run();
  }
  tp::sqlite::Statement q(db, "SELECT COALESCE(MAX(seq), 0) FROM reports");
  if (q.step()) last_seq_ = static_cast<std::uint64_t>(q.column_int(0));
}

OrderStore::~OrderStore() = default;

std::optional<StoredOrder> OrderStore::find(const std::string& client_order_id) {
  auto& q = impl_->find.reset().bind(1, client_order_id);
  if (!q.step()) return std::nullopt;
  StoredOrder o = Impl::read_order(q);
  q.reset();  // ends the read: no transaction stays open between calls
  return o;
}

std::vector<StoredOrder> OrderStore::open_orders() {
  std::vector<StoredOrder> out;
  auto& q = impl_->open.reset();
  while (q.step()) out.push_back(Impl::read_order(q));
  return out;
}

namespace {

void bind_pending(tp::sqlite::Statement& s, const proto::OrderRequest& order, std::int64_t ts_ns) {
  s.reset()
      .bind(1, order.client_order_id)
      .bind(2, order.signal_id)
      .bind(3, order.instrument)
      .bind(4, static_cast<std::int64_t>(order.side))
      .bind(5, order.quantity)
      .bind(6, ts_ns)
      .bind(7, static_cast<std::int64_t>(order.order_type))
      .bind(8, order.limit_price)
      .bind(9, static_cast<std::int64_t>(order.time_in_force))
      .bind(10, order.good_till_ns)
      .bind(11, order.sent_ts_ns)
      .step();
}

}  // namespace

void OrderStore::insert_pending(const proto::OrderRequest& order, std::int64_t ts_ns) {
  bind_pending(impl_->pending, order, ts_ns);  // autocommit: durable (per the pragmas) on return
}

void OrderStore::insert_pending(std::span<const proto::OrderRequest* const> orders, std::int64_t ts_ns) {
  if (orders.empty()) return;
  if (orders.size() == 1) return insert_pending(*orders.front(), ts_ns);
  impl_->transaction([&] {
    for (const auto* order : orders) bind_pending(impl_->pending, *order, ts_ns);
  });
}

void OrderStore::insert_report(proto::ExecutionReport& r, std::int64_t ts_ns) {
  r.stream = stream_;
  r.seq = last_seq_ + 1;
  r.ts_ns = ts_ns;
  impl_->report.reset()
      .bind(1, static_cast<std::int64_t>(r.seq))
      .bind(2, r.client_order_id)
      .bind(3, r.order_id)
      .bind(4, r.instrument)
      .bind(5, static_cast<std::int64_t>(r.side))
      .bind(6, static_cast<std::int64_t>(r.status))
      .bind(7, r.quantity)
      .bind(8, r.last_quantity)
      .bind(9, r.last_price)
      .bind(10, r.filled_quantity)
      .bind(11, r.avg_price)
      .bind(12, r.reason)
      .bind(13, r.broker_ts_ns)
      .bind(14, r.ts_ns)
      .bind(15, static_cast<std::int64_t>(r.quote_seq))
      .bind(16, r.quote_ts_ns)
      .run();
  last_seq_ = r.seq;
}

namespace {

void bind_done(tp::sqlite::Statement& s, const proto::OrderReply& reply, std::int64_t ts_ns) {
  s.reset()
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

}  // namespace

template <class Work>
void OrderStore::in_report_transaction(Work&& work) {
  const auto seq_before = last_seq_;
  try {
    impl_->transaction(work);
  } catch (...) {
    last_seq_ = seq_before;  // rolled back: the numbers are free again
    throw;
  }
}

void OrderStore::store_done(const proto::OrderReply& reply, std::int64_t ts_ns,
                            proto::ExecutionReport* report) {
  if (!report) {
    bind_done(impl_->done, reply, ts_ns);  // autocommit
    return;
  }
  in_report_transaction([&] {
    bind_done(impl_->done, reply, ts_ns);
    insert_report(*report, ts_ns);
  });
}

void OrderStore::store_changes(std::vector<Change>& changes, std::int64_t ts_ns) {
  if (changes.empty()) return;
  in_report_transaction([&] {
    for (auto& c : changes) {
      bind_done(impl_->done, c.reply, ts_ns);
      insert_report(c.report, ts_ns);
    }
  });
}

std::optional<StoredCancel> OrderStore::find_cancel(const std::string& client_order_id) {
  auto& q = impl_->find_cancel.reset().bind(1, client_order_id);
  if (!q.step()) return std::nullopt;
  StoredCancel c;
  c.state = q.column_text(0) == order_states::dll_gateway_db::done ? OrderState::done : OrderState::pending;
  c.reply.client_order_id = client_order_id;
  c.reply.order_id = q.column_text(1);
  c.reply.status = static_cast<proto::OrderStatus>(q.column_int(2));
  c.reply.filled_quantity = q.column_double(3);
  c.reply.fill_price = q.column_double(4);
  c.reply.reason = q.column_text(5);
  c.reply.broker_ts_ns = q.column_int(6);
  q.reset();
  return c;
}

void OrderStore::insert_cancel_pending(const std::string& client_order_id, std::int64_t ts_ns) {
  impl_->cancel_pending.reset().bind(1, client_order_id).bind(2, ts_ns).step();
}

void OrderStore::store_cancel_done(const proto::OrderReply& answer, const proto::OrderReply* order_state,
                                   proto::ExecutionReport* report, std::int64_t ts_ns) {
  in_report_transaction([&] {
    bind_done(impl_->cancel_done, answer, ts_ns);
    if (order_state) bind_done(impl_->done, *order_state, ts_ns);
    if (report) insert_report(*report, ts_ns);
  });
}

std::vector<proto::ExecutionReport> OrderStore::reports_from(std::uint64_t from_seq, std::size_t max_count) {
  std::vector<proto::ExecutionReport> out;
  auto& q = impl_->reports_from.reset()
                .bind(1, static_cast<std::int64_t>(from_seq))
                .bind(2, static_cast<std::int64_t>(max_count));
  while (q.step()) {
    proto::ExecutionReport r;
    r.stream = stream_;
    r.seq = static_cast<std::uint64_t>(q.column_int(0));
    r.client_order_id = q.column_text(1);
    r.order_id = q.column_text(2);
    r.instrument = q.column_text(3);
    r.side = static_cast<proto::Side>(q.column_int(4));
    r.status = static_cast<proto::OrderStatus>(q.column_int(5));
    r.quantity = q.column_double(6);
    r.last_quantity = q.column_double(7);
    r.last_price = q.column_double(8);
    r.filled_quantity = q.column_double(9);
    r.avg_price = q.column_double(10);
    r.reason = q.column_text(11);
    r.broker_ts_ns = q.column_int(12);
    r.ts_ns = q.column_int(13);
    r.quote_seq = static_cast<std::uint64_t>(q.column_int(14));
    r.quote_ts_ns = q.column_int(15);
    out.push_back(std::move(r));
  }
  return out;
}

std::uint64_t OrderStore::first_seq() {
  tp::sqlite::Statement q(impl_->db, "SELECT MIN(seq) FROM reports");
  if (q.step() && q.column_int(0) > 0) return static_cast<std::uint64_t>(q.column_int(0));
  return last_seq_ + 1;
}

}  // namespace tp::dll_gateway
