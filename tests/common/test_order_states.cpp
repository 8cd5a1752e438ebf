// The one mapping of an order's states (common/order_states.hpp) against the
// two stores that write them: each store, driven through its public API in
// a temp dir, writes exactly the header's words in its orders.state column
// (read back from the file after the store closed), and the same broker
// answer leaves the rows the header's table says it does.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <string>

#include "common/order_states.hpp"
#include "dll_gateway/order_store.hpp"
#include "executor/decision.hpp"
#include "executor/store.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

namespace {

namespace words = tp::order_states;
using tp::executor::OrderState;

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;

// client_order_id -> orders.state, as the file holds them.
std::map<std::string, std::string> states_on_disk(const std::string& path) {
  std::map<std::string, std::string> out;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT client_order_id, state FROM orders", -1, &st, nullptr), SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] =
        reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

tp::proto::OrderReply answer(const std::string& client_order_id, tp::proto::OrderStatus status) {
  tp::proto::OrderReply r;
  r.client_order_id = client_order_id;
  r.order_id = "B-" + client_order_id;
  r.status = status;
  if (tp::proto::is_final(status) && status != tp::proto::OrderStatus::rejected) {
    r.filled_quantity = 100;
    r.fill_price = 1.5;
  }
  return r;
}

TEST(OrderStates, TheExecutorsVocabularyIsTheHeaders) {
  for (auto s :
       {OrderState::held, OrderState::intent, OrderState::unknown, OrderState::sent, OrderState::done}) {
    const auto word = tp::executor::to_string(s);
    EXPECT_NE(std::find(words::executor_db::all.begin(), words::executor_db::all.end(), word),
              words::executor_db::all.end())
        << word;
  }
  for (auto word : words::executor_db::all) {
    auto s = tp::executor::order_state_from(word);
    ASSERT_TRUE(s) << word;
    EXPECT_EQ(tp::executor::to_string(*s), word);
  }
}

TEST(OrderStates, EachStoreWritesTheHeadersWords) {
  tp::test::TempDir dir("tp-order-states-");
  const auto executor_db = dir.file("executor.db");
  const auto dll_gateway_db = dir.file("dll_gateway.db");
  {
    tp::executor::ExecutorStore store(executor_db, t0);
    auto record = [&](const std::string& id, OrderState state) {
      const tp::proto::TradingSignal s = tp::test::a_signal(id);
      auto intent = tp::executor::intent_for(s, t0);
      intent.state = state;
      EXPECT_TRUE(store.record_accepted(s, intent, t0));
      return intent.client_order_id;
    };
    const auto held = record("held", OrderState::held);
    const auto intent = record("intent", OrderState::intent);
    const auto unknown = record("unknown", OrderState::intent);
    store.set_state(unknown, OrderState::unknown, t0 + 1);
    // The same answers as dll_gateway's below: a working order, a filled one.
    const auto sent = record("sent", OrderState::intent);
    store.record_outcome(sent, answer(sent, tp::proto::OrderStatus::accepted), t0 + 1);
    const auto done = record("done", OrderState::intent);
    store.record_outcome(done, answer(done, tp::proto::OrderStatus::filled), t0 + 1);

    tp::dll_gateway::OrderStore gateway(dll_gateway_db);
    gateway.insert_pending(tp::test::an_order(intent), t0);
    gateway.insert_pending(tp::test::an_order(sent), t0);
    gateway.store_done(answer(sent, tp::proto::OrderStatus::accepted), t0 + 1);
    gateway.insert_pending(tp::test::an_order(done), t0);
    gateway.store_done(answer(done, tp::proto::OrderStatus::filled), t0 + 1);
    EXPECT_EQ(gateway.find(intent)->state, tp::dll_gateway::OrderState::pending);
    EXPECT_EQ(gateway.find(sent)->state, tp::dll_gateway::OrderState::done);
    EXPECT_FALSE(gateway.find(held)) << "a held order never reaches dll_gateway";
  }

  const auto id = [](std::string_view signal_id) { return tp::executor::client_order_id(signal_id); };
  const std::map<std::string, std::string> executor_rows = {
      {id("held"), std::string(words::executor_db::held)},
      {id("intent"), std::string(words::executor_db::intent)},
      {id("unknown"), std::string(words::executor_db::unknown)},
      {id("sent"), std::string(words::executor_db::sent)},
      {id("done"), std::string(words::executor_db::done)},
  };
  EXPECT_EQ(states_on_disk(executor_db), executor_rows);

  // A non-final answer is SENT at the executor and DONE at dll_gateway; a
  // final one DONE at both.
  const std::map<std::string, std::string> gateway_rows = {
      {id("intent"), std::string(words::dll_gateway_db::pending)},
      {id("sent"), std::string(words::dll_gateway_db::done)},
      {id("done"), std::string(words::dll_gateway_db::done)},
  };
  EXPECT_EQ(states_on_disk(dll_gateway_db), gateway_rows);
}

}  // namespace
