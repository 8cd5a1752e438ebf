// The executor store's HELD orders (the circuit breaker's hold) and the
// migration that adds orders.expires_ns to a database made before it existed.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "executor/decision.hpp"
#include "executor/store.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;

tp::proto::TradingSignal make_signal(const std::string& id) {
  return tp::test::a_signal(id).strategy("every_nth").instance(0).expires_ns(t0 + 5'000'000'000);
}

// The node's intent, HELD when it would have been recorded behind an open breaker.
OrderRecord order_for(const tp::proto::TradingSignal& s, OrderState state, std::int64_t now) {
  auto o = intent_for(s, now);
  o.state = state;
  return o;
}

}  // namespace

TEST(ExecutorStoreHeld, HeldOrdersAreKeptApartFromOpenOnesInArrivalOrder) {
  tp::test::TempDir dir;
  ExecutorStore store(dir.file("executor.db"), t0);
  auto a = make_signal("a"), b = make_signal("b"), c = make_signal("c");
  ASSERT_TRUE(store.record_accepted(a, order_for(a, OrderState::intent, t0), t0));
  ASSERT_TRUE(store.record_accepted(b, order_for(b, OrderState::held, t0 + 1), t0 + 1));
  ASSERT_TRUE(store.record_accepted(c, order_for(c, OrderState::held, t0 + 2), t0 + 2));

  auto open = store.open_orders();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].client_order_id, "C-a");
  auto held = store.held_orders();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].client_order_id, "C-b");
  EXPECT_EQ(held[1].client_order_id, "C-c");
  EXPECT_EQ(held[0].state, OrderState::held);
  EXPECT_EQ(held[0].expires_ns, b.expires_ts_ns);
  EXPECT_EQ(store.count_in_state(OrderState::held), 2u);

  // Released: INTENT before it is sent, so reconciled like any other.
  store.set_state("C-b", OrderState::intent, t0 + 3);
  EXPECT_EQ(store.open_orders().size(), 2u);
  EXPECT_EQ(store.held_orders().size(), 1u);
  EXPECT_EQ(to_string(OrderState::held), "HELD");
  EXPECT_EQ(order_state_from("HELD"), OrderState::held);
}

TEST(ExecutorStoreHeld, HeldOrdersSurviveReopening) {
  tp::test::TempDir dir;
  auto a = make_signal("a");
  {
    ExecutorStore store(dir.file("executor.db"), t0);
    ASSERT_TRUE(store.record_accepted(a, order_for(a, OrderState::held, t0), t0));
  }
  ExecutorStore store(dir.file("executor.db"), t0 + 10);
  ASSERT_EQ(store.held_orders().size(), 1u);
  EXPECT_FALSE(store.record_accepted(a, order_for(a, OrderState::held, t0 + 10), t0 + 10));  // seen
}

TEST(ExecutorStoreHeld, OldDatabaseGetsTheExpiryColumn) {
  tp::test::TempDir dir;
  const auto path = dir.file("executor.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    const char* old_schema =
        "CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, signal_id TEXT NOT NULL, instrument TEXT NOT "
        "NULL, "
        "side TEXT NOT NULL, quantity REAL NOT NULL, price_hint REAL NOT NULL, state TEXT NOT NULL, "
        "status TEXT NOT NULL, filled_quantity REAL NOT NULL DEFAULT 0, fill_price REAL NOT NULL DEFAULT 0, "
        "order_id TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', causation_ts_ns INTEGER NOT "
        "NULL, "
        "created_ns INTEGER NOT NULL, updated_ns INTEGER NOT NULL);"
        "INSERT INTO orders VALUES ('C-old', 'old', 'EURUSD', 'BUY', 1, 1.1, 'UNKNOWN', 'NEW', 0, 0, '', '', "
        "0, "
        "1700000000000000000, 1700000000000000000);";
    ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  ExecutorStore store(path, t0);
  auto open = store.open_orders();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].client_order_id, "C-old");
  EXPECT_EQ(open[0].expires_ns, 0);
  auto s = make_signal("new");
  EXPECT_TRUE(store.record_accepted(s, order_for(s, OrderState::held, t0), t0));
  EXPECT_EQ(store.held_orders().at(0).expires_ns, s.expires_ts_ns);
}
