// See store.hpp for the durability choice (WAL + synchronous=NORMAL).
#include "executor/store.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "common/sqlite_store.hpp"

namespace tp::executor {
namespace {

using tp::sqlite::Statement;

// orders.state holds the words of common/order_states.hpp (executor_db).
constexpr std::string_view schema = R"sql(
CREATE TABLE IF NOT EXISTS signals (
  signal_id   TEXT PRIMARY KEY,
  strategy    TEXT NOT NULL,
  instance    INTEGER NOT NULL,
  instrument  TEXT NOT NULL,
  status      TEXT NOT NULL,
  reason      TEXT NOT NULL DEFAULT '',
  received_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_received ON signals(received_ns);
CREATE TABLE IF NOT EXISTS orders (
  client_order_id TEXT PRIMARY KEY,
  signal_id       TEXT NOT NULL,
  instrument      TEXT NOT NULL,
  side            TEXT NOT NULL,
  quantity        REAL NOT NULL,
  price_hint      REAL NOT NULL,
  state           TEXT NOT NULL,
  status          TEXT NOT NULL,
  filled_quantity REAL NOT NULL DEFAULT 0,
  fill_price      REAL NOT NULL DEFAULT 0,
  order_id        TEXT NOT NULL DEFAULT '',
  reason          TEXT NOT NULL DEFAULT '',
  causation_ts_ns INTEGER NOT NULL,
  created_ns      INTEGER NOT NULL,
  updated_ns      INTEGER NOT NULL,
  expires_ns      INTEGER NOT NULL DEFAULT 0,
  strategy        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS orders_state ON orders(state);
-- Every execution report received from dll_gateway, once (its id is
-- "<stream>:<seq>"): applied = 1 when it changed the order, 0 when the
-- order already knew it (an answer said it first).
CREATE TABLE IF NOT EXISTS reports (
  report_id       TEXT PRIMARY KEY,
  stream          TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  client_order_id TEXT NOT NULL,
  status          TEXT NOT NULL,
  last_quantity   REAL NOT NULL,
  filled_quantity REAL NOT NULL,
  applied         INTEGER NOT NULL,
  received_ns     INTEGER NOT NULL
) WITHOUT ROWID;
-- The next report expected: one row, the stream it belongs to.
CREATE TABLE IF NOT EXISTS report_cursor (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  stream   TEXT NOT NULL,
  next_seq INTEGER NOT NULL
);
-- Positions carried by orders pruned after the retention period.
CREATE TABLE IF NOT EXISTS position_snapshot (
  instrument   TEXT PRIMARY KEY,
  position     REAL NOT NULL,
  avg_price    REAL NOT NULL,
  realized_pnl REAL NOT NULL,
  last_price   REAL NOT NULL
);
-- The same, per strategy group (the orders' strategy column).
CREATE TABLE IF NOT EXISTS group_position_snapshot (
  strategy     TEXT NOT NULL,
  instrument   TEXT NOT NULL,
  position     REAL NOT NULL,
  avg_price    REAL NOT NULL,
  realized_pnl REAL NOT NULL,
  last_price   REAL NOT NULL,
  PRIMARY KEY (strategy, instrument)
);
-- The trading state (the kill switch): one row, written before a command
-- is answered. No row: ACTIVE.
CREATE TABLE IF NOT EXISTS trading_state (
  id              INTEGER PRIMARY KEY CHECK (id = 1),
  state           TEXT NOT NULL,
  cause           TEXT NOT NULL,
  since_ns        INTEGER NOT NULL,
  flatten_pending INTEGER NOT NULL
);
-- Every change of it, and every command, in order.
CREATE TABLE IF NOT EXISTS control_log (
  ts_ns   INTEGER NOT NULL,
  command TEXT NOT NULL,
  state   TEXT NOT NULL,
  cause   TEXT NOT NULL
);
-- The portfolio's PnL at the first valuation of each UTC day (the daily
-- loss limit's zero) and its equity over time.
CREATE TABLE IF NOT EXISTS portfolio_days (
  day       TEXT PRIMARY KEY,
  start_pnl REAL NOT NULL,
  ts_ns     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
  ts_ns          INTEGER NOT NULL,
  equity         REAL NOT NULL,
  realized_pnl   REAL NOT NULL,
  unrealized_pnl REAL NOT NULL,
  daily_pnl      REAL NOT NULL,
  complete       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS equity_ts ON equity(ts_ns);
-- The last dead letters about outcomes, sent again at start (OutcomeLetter).
CREATE TABLE IF NOT EXISTS letters (
  seq      INTEGER PRIMARY KEY,
  key      TEXT NOT NULL,
  reason   TEXT NOT NULL,
  detail   TEXT NOT NULL,
  ts_ns    INTEGER NOT NULL,
  original BLOB NOT NULL
);
)sql";

constexpr std::string_view order_columns =
    "client_order_id, signal_id, instrument, side, quantity, price_hint, state, status, filled_quantity, "
    "fill_price, order_id, reason, causation_ts_ns, created_ns, updated_ns, expires_ns, strategy, "
    "order_type, "
    "limit_price, time_in_force, good_till_ns, cancel_state, cancel_reason";

std::string_view side_text(proto::Side s) { return s == proto::Side::buy ? "BUY" : "SELL"; }
proto::Side side_from(std::string_view s) { return s == "SELL" ? proto::Side::sell : proto::Side::buy; }

proto::OrderStatus status_from(std::string_view s) {
  for (int i = 1; i <= 8; ++i) {
    auto st = static_cast<proto::OrderStatus>(i);
    if (proto::to_string(st) == s) return st;
  }
  return proto::OrderStatus::unknown;
}

// Commits on commit(); rolls back when left any other way.
class Transaction {
 public:
  Transaction(Statement& begin, Statement& commit, Statement& rollback)
      : commit_(commit), rollback_(rollback) {
    begin.reset().run();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) {
      try {
        rollback_.reset().run();
      } catch (...) {  // a failed rollback leaves SQLite to roll back on close
      }
    }
  }
  void commit() {
    commit_.reset().run();
    open_ = false;
  }

 private:
  Statement& commit_;
  Statement& rollback_;
  bool open_ = true;
};

// Inside a batch: the same all-or-nothing for one record, without ending
// the batch's transaction.
class Savepoint {
 public:
  Savepoint(Statement& savepoint, Statement& release, Statement& rollback_to)
      : release_(release), rollback_to_(rollback_to) {
    savepoint.reset().run();
  }
  Savepoint(const Savepoint&) = delete;
  Savepoint& operator=(const Savepoint&) = delete;
  ~Savepoint() {
    if (open_) {
      try {
        rollback_to_.reset().run();
        release_.reset().run();
      } catch (...) {  // the batch's rollback (or close) undoes it
      }
    }
  }
  void release() {
    release_.reset().run();
    open_ = false;
  }

 private:
  Statement& release_;
  Statement& rollback_to_;
  bool open_ = true;
};

}  // namespace

// ------------------------------------------------------------ ExecutorStore

ExecutorStore::ExecutorStore(const std::string& path, std::int64_t now_ns) : path_(path) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
  }
  // One writer, and nobody reads the file while the executor runs (tests and
  // tools read it after it exits): open_store holds it exclusively.
  db_ = tp::sqlite::open_store(path, 2000);
  db_.exec(schema);
  migrate();

  begin_ = Statement(db_, "BEGIN IMMEDIATE");
  commit_ = Statement(db_, "COMMIT");
  rollback_ = Statement(db_, "ROLLBACK");
  savepoint_ = Statement(db_, "SAVEPOINT record");
  release_ = Statement(db_, "RELEASE record");
  rollback_to_ = Statement(db_, "ROLLBACK TO record");
  find_signal_ = Statement(db_, "SELECT signal_id, status, reason FROM signals WHERE signal_id = ?1");
  delete_signal_ = Statement(db_, "DELETE FROM signals WHERE signal_id = ?1");
  insert_signal_ =
      Statement(db_,
                "INSERT INTO signals (signal_id, strategy, instance, instrument, status, reason, "
                "received_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  insert_order_ = Statement(
      db_,
      "INSERT INTO orders (" + std::string(order_columns) +
          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
          "?20, ?21, ?22, ?23)");
  set_state_ = Statement(db_, "UPDATE orders SET state = ?2, updated_ns = ?3 WHERE client_order_id = ?1");
  set_outcome_ =
      Statement(db_,
                "UPDATE orders SET state = ?2, status = ?3, filled_quantity = ?4, fill_price = ?5, "
                "order_id = ?6, reason = ?7, updated_ns = ?8 WHERE client_order_id = ?1");
  find_order_ =
      Statement(db_, "SELECT " + std::string(order_columns) + " FROM orders WHERE client_order_id = ?1");
  // Orders whose fate the broker must be asked: never answered, or answered
  // without a status (UNKNOWN). A working order (SENT, ACCEPTED or
  // PARTIALLY_FILLED) is followed by the execution reports instead.
  open_orders_ =
      Statement(db_, "SELECT " + std::string(order_columns) +
                         " FROM orders WHERE state IN ('INTENT', 'UNKNOWN') OR (state = 'SENT' AND "
                         "status NOT IN ('ACCEPTED', 'PARTIALLY_FILLED')) ORDER BY created_ns");
  working_orders_ = Statement(db_, "SELECT " + std::string(order_columns) +
                                       " FROM orders WHERE state = 'SENT' AND status IN ('ACCEPTED', "
                                       "'PARTIALLY_FILLED') ORDER BY created_ns");
  count_working_ = Statement(
      db_, "SELECT COUNT(*) FROM orders WHERE state = 'SENT' AND status IN ('ACCEPTED', 'PARTIALLY_FILLED')");
  cancel_requested_ = Statement(db_, "SELECT " + std::string(order_columns) +
                                         " FROM orders WHERE cancel_state = 'REQUESTED' ORDER BY created_ns");
  set_cancel_ = Statement(
      db_,
      "UPDATE orders SET cancel_state = ?2, cancel_reason = ?3, updated_ns = ?4 WHERE client_order_id = ?1");
  insert_report_ =
      Statement(db_,
                "INSERT INTO reports (report_id, stream, seq, client_order_id, status, last_quantity, "
                "filled_quantity, applied, received_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  set_cursor_ =
      Statement(db_,
                "INSERT INTO report_cursor (id, stream, next_seq) VALUES (1, ?1, ?2) ON CONFLICT (id) DO "
                "UPDATE SET stream = excluded.stream, next_seq = excluded.next_seq");
  held_orders_ = Statement(db_, "SELECT " + std::string(order_columns) +
                                    " FROM orders WHERE state = 'HELD' ORDER BY created_ns, rowid");
  count_state_ = Statement(db_, "SELECT COUNT(*) FROM orders WHERE state = ?1");
  unfinished_orders_ = Statement(
      db_, "SELECT " + std::string(order_columns) + " FROM orders WHERE state != 'DONE' ORDER BY created_ns");
  read_trading_ =
      Statement(db_, "SELECT state, cause, since_ns, flatten_pending FROM trading_state WHERE id = 1");
  write_trading_ =
      Statement(db_,
                "INSERT INTO trading_state (id, state, cause, since_ns, flatten_pending) VALUES (1, "
                "?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET state = excluded.state, cause = "
                "excluded.cause, since_ns = excluded.since_ns, flatten_pending = "
                "excluded.flatten_pending");
  log_control_ =
      Statement(db_, "INSERT INTO control_log (ts_ns, command, state, cause) VALUES (?1, ?2, ?3, ?4)");
  read_day_ = Statement(db_, "SELECT start_pnl FROM portfolio_days WHERE day = ?1");
  write_day_ =
      Statement(db_, "INSERT OR IGNORE INTO portfolio_days (day, start_pnl, ts_ns) VALUES (?1, ?2, ?3)");
  add_equity_ =
      Statement(db_,
                "INSERT INTO equity (ts_ns, equity, realized_pnl, unrealized_pnl, daily_pnl, complete) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  prune_equity_ = Statement(db_,
                            "DELETE FROM equity WHERE ts_ns < (SELECT ts_ns FROM equity ORDER BY ts_ns DESC "
                            "LIMIT 1 OFFSET ?1)");
  insert_letter_ = Statement(
      db_, "INSERT INTO letters (key, reason, detail, ts_ns, original) VALUES (?1, ?2, ?3, ?4, ?5)");
  prune_letters_ = Statement(db_, "DELETE FROM letters WHERE seq <= (SELECT MAX(seq) FROM letters) - ?1");
  recent_letters_ = Statement(db_,
                              "SELECT key, reason, detail, ts_ns, original FROM (SELECT * FROM letters "
                              "ORDER BY seq DESC LIMIT ?1) ORDER BY seq");
  try {
    prune(now_ns);
  } catch (const StoreError& e) {
    // Pruning writes (deletes need log space): on a full disk the executor
    // still starts, keeps the old rows and prunes at its next start.
    spdlog::warn("old rows not pruned: {}", e.what());
  }
}

void ExecutorStore::abort_batch() noexcept {
  if (!in_batch_) return;
  in_batch_ = false;
  // SQLite may have rolled the transaction back itself (SQLITE_FULL inside a
  // statement does); roll back only what is still open.
  if (db_.in_transaction()) {
    try {
      rollback_.reset().run();
    } catch (
        const StoreError&) {  // nothing more to do: the connection stays usable or the next write says why
    }
  }
}

int ExecutorStore::last_errno() const noexcept { return db_.last_errno(); }

const std::string& ExecutorStore::path() const noexcept { return path_; }

ExecutorStore::~ExecutorStore() {
  if (in_batch_) {
    try {
      rollback_.reset().run();
    } catch (...) {  // sqlite3_close rolls back anyway
    }
  }
}

void ExecutorStore::begin_batch() {
  if (in_batch_) throw StoreError("executor store: begin_batch inside a batch");
  begin_.reset().run();
  in_batch_ = true;
}

void ExecutorStore::commit_batch() {
  if (!in_batch_) throw StoreError("executor store: commit_batch without a batch");
  commit_.reset().run();
  in_batch_ = false;
}

void ExecutorStore::migrate() {
  auto has_column = [&](std::string_view column) {
    Statement cols(db_, "SELECT name FROM pragma_table_info('orders')");
    while (cols.step()) {
      if (cols.column_text(0) == column) return true;
    }
    return false;
  };
  // Orders with a life: terms (absent = market IOC) and the cancel state.
  for (const auto& [column, type] : {std::pair{"order_type", "INTEGER NOT NULL DEFAULT 0"},
                                     {"limit_price", "REAL NOT NULL DEFAULT 0"},
                                     {"time_in_force", "INTEGER NOT NULL DEFAULT 0"},
                                     {"good_till_ns", "INTEGER NOT NULL DEFAULT 0"},
                                     {"cancel_state", "TEXT NOT NULL DEFAULT ''"},
                                     {"cancel_reason", "TEXT NOT NULL DEFAULT ''"}}) {
    if (!has_column(column)) db_.exec(std::string("ALTER TABLE orders ADD COLUMN ") + column + " " + type);
  }
  // The orders a cancel is requested for, read by every reconcile pass (each
  // second): a partial index holds only those, so the pass reads a few
  // entries instead of every order of the retention period. After the
  // columns: a file made before cancel_state gets it first.
  db_.exec(
      "CREATE INDEX IF NOT EXISTS orders_cancel_requested ON orders(created_ns) WHERE cancel_state = "
      "'REQUESTED'");
  // Databases made before orders.expires_ns existed get the column (0: none).
  if (!has_column("expires_ns"))
    db_.exec("ALTER TABLE orders ADD COLUMN expires_ns INTEGER NOT NULL DEFAULT 0");
  // Before orders.strategy: each order's group is its signal's strategy
  // field, while the signal's row is kept (an order whose signal row was
  // pruned stays '': counted in the instrument's position, in no group's).
  if (!has_column("strategy")) {
    // One transaction: a crash leaves either no column or a filled one (a
    // failure throws out of the constructor, and closing rolls back).
    db_.exec(
        "BEGIN IMMEDIATE;"
        "ALTER TABLE orders ADD COLUMN strategy TEXT NOT NULL DEFAULT '';"
        "UPDATE orders SET strategy = COALESCE((SELECT s.strategy FROM signals s WHERE s.signal_id = "
        "orders.signal_id), '');"
        "COMMIT;");
  }
}

OrderRecord ExecutorStore::read_order(Statement& s) const {
  OrderRecord o;
  o.client_order_id = s.column_text(0);
  o.signal_id = s.column_text(1);
  o.instrument = s.column_text(2);
  o.side = side_from(s.column_text(3));
  o.quantity = s.column_double(4);
  o.price_hint = s.column_double(5);
  o.state = order_state_from(s.column_text(6)).value_or(OrderState::unknown);
  o.status = status_from(s.column_text(7));
  o.filled_quantity = s.column_double(8);
  o.fill_price = s.column_double(9);
  o.order_id = s.column_text(10);
  o.reason = s.column_text(11);
  o.causation_ts_ns = s.column_int(12);
  o.created_ns = s.column_int(13);
  o.updated_ns = s.column_int(14);
  o.expires_ns = s.column_int(15);
  o.strategy = s.column_text(16);
  o.terms.order_type = static_cast<proto::OrderType>(s.column_int(17));
  o.terms.limit_price = s.column_double(18);
  o.terms.time_in_force = static_cast<proto::TimeInForce>(s.column_int(19));
  o.terms.good_till_ns = s.column_int(20);
  o.cancel = cancel_state_from(s.column_text(21));
  o.cancel_reason = s.column_text(22);
  return o;
}

void ExecutorStore::prune(std::int64_t now_ns) {
  const std::int64_t cutoff = now_ns - retention_ns;
  Transaction tx(begin_, commit_, rollback_);

  // Fold the fills of finished orders about to go into the snapshots first
  // (the instrument's and its group's), in the order they were recorded, so
  // that positions do not change.
  PositionBook carried;
  GroupBooks carried_groups;
  read_snapshots(carried, carried_groups);
  bool any = false;
  {
    Statement old(db_,
                  "SELECT instrument, side, filled_quantity, fill_price, strategy FROM orders WHERE state = "
                  "'DONE' AND updated_ns < ?1 ORDER BY updated_ns, rowid");
    old.bind(1, cutoff);
    while (old.step()) {
      any = true;
      apply_stored_fill(old, carried, carried_groups);
    }
  }
  if (any) {
    Statement put(db_,
                  "INSERT OR REPLACE INTO position_snapshot (instrument, position, avg_price, realized_pnl, "
                  "last_price) VALUES (?1, ?2, ?3, ?4, ?5)");
    for (const auto& [sym, p] : carried.all()) {
      put.reset()
          .bind(1, sym)
          .bind(2, p.position)
          .bind(3, p.avg_price)
          .bind(4, p.realized_pnl)
          .bind(5, p.last_price);
      put.run();
    }
    Statement put_group(db_,
                        "INSERT OR REPLACE INTO group_position_snapshot (strategy, instrument, position, "
                        "avg_price, realized_pnl, last_price) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    for (const auto& [group, book] : carried_groups) {
      for (const auto& [sym, p] : book.all()) {
        put_group.reset()
            .bind(1, group)
            .bind(2, sym)
            .bind(3, p.position)
            .bind(4, p.avg_price)
            .bind(5, p.realized_pnl)
            .bind(6, p.last_price);
        put_group.run();
      }
    }
    Statement del(db_, "DELETE FROM orders WHERE state = 'DONE' AND updated_ns < ?1");
    del.bind(1, cutoff).run();
  }
  Statement del_signals(db_, "DELETE FROM signals WHERE received_ns < ?1");
  del_signals.bind(1, cutoff).run();
  tx.commit();
}

std::optional<SignalRecord> ExecutorStore::find_signal(std::string_view signal_id) {
  auto& s = find_signal_.reset().bind(1, signal_id);
  if (!s.step()) return std::nullopt;
  SignalRecord r{s.column_text(0), s.column_text(1), s.column_text(2)};
  s.reset();
  return r;
}

bool ExecutorStore::record_accepted(const proto::TradingSignal& signal, const OrderRecord& o,
                                    std::int64_t now_ns) {
  // Outside a batch, its own transaction. Inside one, no savepoint: a
  // savepoint copies every page the pair touches into the statement journal
  // first, a fifth of the executor's CPU per order in a burst. The only
  // refusal that can come after the signal row is written, an order id taken
  // while the signal's is not, undoes it by hand.
  std::optional<Transaction> tx;
  if (!in_batch_) tx.emplace(begin_, commit_, rollback_);
  insert_signal_.reset()
      .bind(1, signal.signal_id)
      .bind(2, signal.strategy)
      .bind(3, static_cast<std::int64_t>(signal.instance))
      .bind(4, signal.instrument)
      .bind(5, std::string_view("ACCEPTED"))
      .bind(6, std::string_view())
      .bind(7, now_ns);
  if (!insert_signal_.run()) return false;  // a duplicate: nothing written
  insert_order_.reset()
      .bind(1, o.client_order_id)
      .bind(2, o.signal_id)
      .bind(3, o.instrument)
      .bind(4, side_text(o.side))
      .bind(5, o.quantity)
      .bind(6, o.price_hint)
      .bind(7, to_string(o.state))
      .bind(8, proto::to_string(o.status))
      .bind(9, o.filled_quantity)
      .bind(10, o.fill_price)
      .bind(11, o.order_id)
      .bind(12, o.reason)
      .bind(13, o.causation_ts_ns)
      .bind(14, o.created_ns)
      .bind(15, o.updated_ns)
      .bind(16, o.expires_ns)
      .bind(17, o.strategy)
      .bind(18, static_cast<std::int64_t>(o.terms.order_type))
      .bind(19, o.terms.limit_price)
      .bind(20, static_cast<std::int64_t>(o.terms.time_in_force))
      .bind(21, o.terms.good_till_ns)
      .bind(22, to_string(o.cancel))
      .bind(23, o.cancel_reason);
  if (!insert_order_.run()) {
    // The order outlived its signal row (pruned first): a duplicate too.
    if (in_batch_) delete_signal_.reset().bind(1, signal.signal_id).run();
    return false;  // outside a batch, the transaction's rollback
  }
  if (tx) tx->commit();
  return true;
}

bool ExecutorStore::record_rejected(const proto::TradingSignal& signal, std::string_view reason,
                                    std::int64_t now_ns, const OutcomeLetter& letter) {
  insert_signal_.reset()
      .bind(1, signal.signal_id)
      .bind(2, signal.strategy)
      .bind(3, static_cast<std::int64_t>(signal.instance))
      .bind(4, signal.instrument)
      .bind(5, std::string_view("REJECTED"))
      .bind(6, reason)
      .bind(7, now_ns);
  if (!insert_signal_.run()) return false;
  insert_letter(letter);
  return true;
}

void ExecutorStore::insert_letter(const OutcomeLetter& letter) {
  insert_letter_.reset()
      .bind(1, letter.key)
      .bind(2, letter.reason)
      .bind(3, letter.detail)
      .bind(4, letter.ts_ns)
      .bind_blob(5, letter.original)
      .run();
  // A delete of a few hundred rows now and then, not one per insert.
  if (++letters_since_prune_ >= letters_kept / 8) {
    prune_letters_.reset().bind(1, letters_kept).run();
    letters_since_prune_ = 0;
  }
}

std::vector<OutcomeLetter> ExecutorStore::recent_letters(std::size_t n) {
  std::vector<OutcomeLetter> out;
  auto& s = recent_letters_.reset().bind(1, static_cast<std::int64_t>(n));
  while (s.step())
    out.push_back({s.column_text(1), s.column_text(2), s.column_blob(4), s.column_text(0), s.column_int(3)});
  return out;
}

void ExecutorStore::set_state(std::string_view client_order_id, OrderState state, std::int64_t now_ns) {
  set_state_.reset().bind(1, client_order_id).bind(2, to_string(state)).bind(3, now_ns).run();
}

void ExecutorStore::record_outcome(std::string_view client_order_id, const proto::OrderReply& reply,
                                   std::int64_t now_ns, const OutcomeLetter* letter) {
  std::optional<Savepoint> sp;
  if (letter) sp.emplace(savepoint_, release_, rollback_to_);
  const auto state = proto::is_final(reply.status) ? OrderState::done : OrderState::sent;
  set_outcome_.reset()
      .bind(1, client_order_id)
      .bind(2, to_string(state))
      .bind(3, proto::to_string(reply.status))
      .bind(4, reply.filled_quantity)
      .bind(5, reply.fill_price)
      .bind(6, reply.order_id)
      .bind(7, reply.reason)
      .bind(8, now_ns)
      .run();
  if (letter) {
    insert_letter(*letter);
    sp->release();
  }
}

std::optional<OrderRecord> ExecutorStore::find_order(std::string_view client_order_id) {
  auto& s = find_order_.reset().bind(1, client_order_id);
  if (!s.step()) return std::nullopt;
  auto o = read_order(s);
  s.reset();
  return o;
}

std::vector<OrderRecord> ExecutorStore::open_orders() {
  std::vector<OrderRecord> out;
  auto& s = open_orders_.reset();
  while (s.step()) out.push_back(read_order(s));
  return out;
}

std::vector<OrderRecord> ExecutorStore::working_orders() {
  std::vector<OrderRecord> out;
  auto& s = working_orders_.reset();
  while (s.step()) out.push_back(read_order(s));
  return out;
}

std::uint64_t ExecutorStore::count_working() {
  auto& s = count_working_.reset();
  std::uint64_t n = s.step() ? static_cast<std::uint64_t>(s.column_int(0)) : 0;
  s.reset();
  return n;
}

std::vector<OrderRecord> ExecutorStore::cancel_requested() {
  std::vector<OrderRecord> out;
  auto& s = cancel_requested_.reset();
  while (s.step()) out.push_back(read_order(s));
  return out;
}

void ExecutorStore::set_cancel(std::string_view client_order_id, CancelState state, std::string_view reason,
                               std::int64_t now_ns) {
  set_cancel_.reset()
      .bind(1, client_order_id)
      .bind(2, to_string(state))
      .bind(3, reason)
      .bind(4, now_ns)
      .run();
}

void ExecutorStore::record_report(const proto::ExecutionReport& report, bool applied,
                                  const proto::OrderReply* outcome, std::int64_t now_ns,
                                  const OutcomeLetter* letter) {
  Transaction tx(begin_, commit_, rollback_);
  // The deferred reports come before this one in the stream: written first,
  // so that the cursor never passes a report that is not recorded.
  for (const auto& [r, ts] : deferred_) insert_report(r, false, ts);
  if (outcome) record_outcome(outcome->client_order_id, *outcome, now_ns, letter);
  insert_report(report, applied, now_ns);
  set_cursor_.reset().bind(1, report.stream).bind(2, static_cast<std::int64_t>(report.seq + 1)).run();
  tx.commit();
  deferred_.clear();
}

void ExecutorStore::insert_report(const proto::ExecutionReport& r, bool applied, std::int64_t now_ns) {
  report_id_.assign(r.stream).append(":").append(std::to_string(r.seq));
  insert_report_.reset()
      .bind(1, report_id_)
      .bind(2, r.stream)
      .bind(3, static_cast<std::int64_t>(r.seq))
      .bind(4, r.client_order_id)
      .bind(5, proto::to_string(r.status))
      .bind(6, r.last_quantity)
      .bind(7, r.filled_quantity)
      .bind(8, static_cast<std::int64_t>(applied ? 1 : 0))
      .bind(9, now_ns);
  insert_report_.run();  // false: recorded before (fetched again after a crash); the first row stands
}

void ExecutorStore::defer_known(const proto::ExecutionReport& report, std::int64_t now_ns) {
  deferred_.emplace_back(report, now_ns);
}

void ExecutorStore::flush_known() {
  if (deferred_.empty()) return;
  Transaction tx(begin_, commit_, rollback_);
  for (const auto& [r, ts] : deferred_) insert_report(r, false, ts);
  const auto& last = deferred_.back().first;
  set_cursor_.reset().bind(1, last.stream).bind(2, static_cast<std::int64_t>(last.seq + 1)).run();
  tx.commit();
  deferred_.clear();
}

ReportCursor ExecutorStore::report_cursor() {
  Statement q(db_, "SELECT stream, next_seq FROM report_cursor WHERE id = 1");
  if (!q.step()) return {};
  return {q.column_text(0), static_cast<std::uint64_t>(q.column_int(1))};
}

void ExecutorStore::set_report_cursor(const ReportCursor& cursor) {
  set_cursor_.reset().bind(1, cursor.stream).bind(2, static_cast<std::int64_t>(cursor.next_seq)).run();
}

std::vector<OrderRecord> ExecutorStore::held_orders() {
  std::vector<OrderRecord> out;
  auto& s = held_orders_.reset();
  while (s.step()) out.push_back(read_order(s));
  return out;
}

std::uint64_t ExecutorStore::count_in_state(OrderState state) {
  auto& s = count_state_.reset().bind(1, to_string(state));
  std::uint64_t n = s.step() ? static_cast<std::uint64_t>(s.column_int(0)) : 0;
  s.reset();
  return n;
}

void ExecutorStore::read_snapshots(PositionBook& book, GroupBooks& groups) {
  Statement snap(db_,
                 "SELECT instrument, position, avg_price, realized_pnl, last_price FROM position_snapshot");
  while (snap.step()) {
    book.restore(snap.column_text(0), {snap.column_double(1), snap.column_double(2), snap.column_double(3),
                                       snap.column_double(4)});
  }
  Statement group_snap(db_,
                       "SELECT strategy, instrument, position, avg_price, realized_pnl, last_price FROM "
                       "group_position_snapshot");
  while (group_snap.step()) {
    groups[group_snap.column_text(0)].restore(group_snap.column_text(1),
                                              {group_snap.column_double(2), group_snap.column_double(3),
                                               group_snap.column_double(4), group_snap.column_double(5)});
  }
}

void ExecutorStore::apply_stored_fill(Statement& row, PositionBook& book, GroupBooks& groups) {
  const auto instrument = row.column_text(0);
  const auto side = side_from(row.column_text(1));
  const double quantity = row.column_double(2);
  const double price = row.column_double(3);
  book.apply_fill(instrument, side, quantity, price);
  const auto group = row.column_text(4);
  if (!group.empty()) groups[group].apply_fill(instrument, side, quantity, price);
}

StoredPositions ExecutorStore::rebuild_positions() {
  StoredPositions out;
  read_snapshots(out.instruments, out.groups);
  Statement fills(db_,
                  "SELECT instrument, side, filled_quantity, fill_price, strategy FROM orders WHERE "
                  "filled_quantity > 0 ORDER BY updated_ns, rowid");
  while (fills.step()) apply_stored_fill(fills, out.instruments, out.groups);
  return out;
}

}  // namespace tp::executor

namespace tp::executor {

std::vector<OrderRecord> ExecutorStore::unfinished_orders() {
  std::vector<OrderRecord> out;
  auto& s = unfinished_orders_.reset();
  while (s.step()) out.push_back(read_order(s));
  return out;
}

TradingStatus ExecutorStore::trading_status() {
  TradingStatus status;
  auto& s = read_trading_.reset();
  if (s.step()) {
    const auto word = s.column_text(0);
    for (auto state :
         {proto::TradingState::active, proto::TradingState::reducing, proto::TradingState::halted})
      if (proto::to_string(state) == word) status.state = state;
    // A word this build does not know (a newer one wrote it): fail closed.
    if (proto::to_string(status.state) != word) status.state = proto::TradingState::halted;
    status.cause = s.column_text(1);
    status.since_ns = s.column_int(2);
    status.flatten_pending = s.column_int(3) != 0;
  }
  s.reset();
  return status;
}

void ExecutorStore::save_trading_status(const TradingStatus& status, std::string_view command,
                                        std::int64_t now_ns) {
  Transaction tx(begin_, commit_, rollback_);
  write_trading_.reset()
      .bind(1, proto::to_string(status.state))
      .bind(2, status.cause)
      .bind(3, status.since_ns)
      .bind(4, std::int64_t{status.flatten_pending ? 1 : 0})
      .run();
  log_control_.reset()
      .bind(1, now_ns)
      .bind(2, command)
      .bind(3, proto::to_string(status.state))
      .bind(4, status.cause)
      .run();
  tx.commit();
}

std::optional<double> ExecutorStore::day_start_pnl(std::string_view day) {
  auto& s = read_day_.reset().bind(1, day);
  std::optional<double> out;
  if (s.step()) out = s.column_double(0);
  s.reset();
  return out;
}

void ExecutorStore::set_day_start_pnl(std::string_view day, double pnl, std::int64_t now_ns) {
  write_day_.reset().bind(1, day).bind(2, pnl).bind(3, now_ns).run();
}

void ExecutorStore::add_equity_point(const EquityPoint& p) {
  add_equity_.reset()
      .bind(1, p.ts_ns)
      .bind(2, p.equity)
      .bind(3, p.realized_pnl)
      .bind(4, p.unrealized_pnl)
      .bind(5, p.daily_pnl)
      .bind(6, std::int64_t{p.complete ? 1 : 0})
      .run();
  // Bounded: the oldest points go, a thousand at a time.
  if (++equity_points_ % 1000 == 0) prune_equity_.reset().bind(1, std::int64_t{max_equity_points}).run();
}

}  // namespace tp::executor
