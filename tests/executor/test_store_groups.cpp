// The executor store's per-group positions: each order keeps its signal's
// strategy group, the groups' positions are rebuilt from the fills across a
// reopen and a pruning, and a database made before orders.strategy existed
// gets the column filled from its signal rows.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "executor/decision.hpp"
#include "executor/store.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;

tp::proto::TradingSignal signal_of(const std::string& group, const std::string& id, tp::proto::Side side,
                                   double qty) {
  return tp::test::a_signal(id).strategy(group).side(side).quantity(qty);
}

void record_filled(ExecutorStore& store, const tp::proto::TradingSignal& s, double price, std::int64_t now) {
  ASSERT_TRUE(store.record_accepted(s, intent_for(s, now), now));
  tp::proto::OrderReply r;
  r.client_order_id = client_order_id(s.signal_id);
  r.order_id = "B-" + s.signal_id;
  r.status = tp::proto::OrderStatus::filled;
  r.filled_quantity = s.quantity;
  r.fill_price = price;
  store.record_outcome(r.client_order_id, r, now + 1);
}

}  // namespace

TEST(ExecutorStoreGroups, EachOrderKeepsItsGroupAndGroupPositionsSurviveReopeningAndPruning) {
  tp::test::TempDir dir;
  const auto path = dir.file("executor.db");
  {
    ExecutorStore store(path, t0);
    record_filled(store, signal_of("trend", "trend.0.1.1", tp::proto::Side::buy, 100), 10, t0);
    record_filled(store, signal_of("revert", "revert.0.1.1", tp::proto::Side::sell, 40), 11, t0 + 2);
    EXPECT_EQ(store.find_order("C-trend.0.1.1")->strategy, "trend");
  }
  {
    ExecutorStore store(path, t0 + 10);
    auto stored = store.rebuild_positions();
    EXPECT_DOUBLE_EQ(stored.instruments.position("EURUSD"), 60);
    EXPECT_DOUBLE_EQ(stored.groups.at("trend").position("EURUSD"), 100);
    EXPECT_DOUBLE_EQ(stored.groups.at("revert").position("EURUSD"), -40);
  }
  const auto later = t0 + ExecutorStore::retention_ns + 100;
  {
    ExecutorStore store(path, later);  // prunes both orders into the snapshots
    EXPECT_FALSE(store.find_order("C-trend.0.1.1").has_value());
    record_filled(store, signal_of("trend", "trend.0.2.1", tp::proto::Side::sell, 100), 12, later);
  }
  ExecutorStore store(path, later + 10);
  auto stored = store.rebuild_positions();
  EXPECT_DOUBLE_EQ(stored.instruments.position("EURUSD"), -40);
  const auto* trend = stored.groups.at("trend").find("EURUSD");
  ASSERT_NE(trend, nullptr);
  EXPECT_DOUBLE_EQ(trend->position, 0);
  EXPECT_DOUBLE_EQ(trend->realized_pnl, 100 * 2.0);
  EXPECT_DOUBLE_EQ(stored.groups.at("revert").position("EURUSD"), -40);
  EXPECT_DOUBLE_EQ(stored.groups.at("revert").find("EURUSD")->avg_price, 11);
}

TEST(ExecutorStoreGroups, OldDatabaseGetsTheStrategyColumnFromItsSignalRows) {
  tp::test::TempDir dir;
  const auto path = dir.file("executor.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    // The schema before orders.strategy; 'orphan' has lost its signal row.
    const char* old_schema =
        "CREATE TABLE signals (signal_id TEXT PRIMARY KEY, strategy TEXT NOT NULL, instance INTEGER NOT "
        "NULL, "
        "instrument TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', received_ns "
        "INTEGER "
        "NOT NULL);"
        "CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, signal_id TEXT NOT NULL, instrument TEXT NOT "
        "NULL, side TEXT NOT NULL, quantity REAL NOT NULL, price_hint REAL NOT NULL, state TEXT NOT NULL, "
        "status TEXT NOT NULL, filled_quantity REAL NOT NULL DEFAULT 0, fill_price REAL NOT NULL DEFAULT 0, "
        "order_id TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', causation_ts_ns INTEGER NOT "
        "NULL, created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL DEFAULT "
        "0);"
        "INSERT INTO signals VALUES ('sma.1.1.1', 'sma_crossover', 1, 'EURUSD', 'ACCEPTED', '', "
        "1700000000000000000);"
        "INSERT INTO orders VALUES ('C-sma.1.1.1', 'sma.1.1.1', 'EURUSD', 'BUY', 100, 1.1, 'DONE', 'FILLED', "
        "100, 1.1, 'B-1', '', 0, 1700000000000000000, 1700000000000000001, 0);"
        "INSERT INTO orders VALUES ('C-orphan', 'orphan', 'EURUSD', 'BUY', 50, 1.1, 'DONE', 'FILLED', 50, "
        "1.2, 'B-2', '', 0, 1700000000000000000, 1700000000000000002, 0);";
    ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  ExecutorStore store(path, t0);
  EXPECT_EQ(store.find_order("C-sma.1.1.1")->strategy, "sma_crossover");
  EXPECT_EQ(store.find_order("C-orphan")->strategy, "");
  auto stored = store.rebuild_positions();
  EXPECT_DOUBLE_EQ(stored.instruments.position("EURUSD"), 150);
  ASSERT_EQ(stored.groups.size(), 1u) << "the orphan's fill is in no group";
  EXPECT_DOUBLE_EQ(stored.groups.at("sma_crossover").position("EURUSD"), 100);
  // New orders carry their group.
  auto s = signal_of("trend", "trend.0.1.1", tp::proto::Side::sell, 10);
  ASSERT_TRUE(store.record_accepted(s, intent_for(s, t0), t0));
  EXPECT_EQ(store.find_order("C-trend.0.1.1")->strategy, "trend");
}
