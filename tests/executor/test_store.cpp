// The executor's SQLite store against a database in a temporary directory.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "executor/decision.hpp"
#include "executor/store.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;

tp::proto::TradingSignal make_signal(const std::string& id, tp::proto::Side side = tp::proto::Side::buy,
                                     double qty = 100) {
  return tp::test::a_signal(id).side(side).quantity(qty).causation_ns(t0 - 5);
}

tp::proto::OrderReply filled(const std::string& coid, double qty, double price) {
  tp::proto::OrderReply r;
  r.client_order_id = coid;
  r.order_id = "B-" + coid;
  r.status = tp::proto::OrderStatus::filled;
  r.filled_quantity = qty;
  r.fill_price = price;
  return r;
}

OutcomeLetter letter_for(const tp::proto::TradingSignal& s, std::int64_t ts = t0) {
  return {"risk_rejected", "signal " + s.signal_id + ": too big", std::string("\x93\x00\x01", 3), s.signal_id,
          ts};
}

// The files this process holds open that are SQLite's temp files (unlinked
// at once: "/var/tmp/etilqs_... (deleted)").
int open_sqlite_temp_files() {
  int n = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(fd.path(), ec).string().find("etilqs_") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace

TEST(ExecutorStore, RecordsSignalAndIntentAndDetectsDuplicates) {
  tp::test::TempDir dir;
  ExecutorStore store(dir.file("executor.db"), t0);
  auto s = make_signal("sma.1.1.1");
  EXPECT_FALSE(store.find_signal(s.signal_id).has_value());
  ASSERT_TRUE(store.record_accepted(s, intent_for(s, t0), t0));

  auto rec = store.find_signal(s.signal_id);
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->status, "ACCEPTED");
  // A second record of the same id changes nothing, in either table.
  EXPECT_FALSE(store.record_accepted(s, intent_for(s, t0 + 1), t0 + 1));
  EXPECT_FALSE(store.record_rejected(s, "expired", t0 + 1, letter_for(s)));
  auto open = store.open_orders();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].client_order_id, "C-sma.1.1.1");
  EXPECT_EQ(open[0].state, OrderState::intent);
  EXPECT_EQ(open[0].created_ns, t0);
  EXPECT_EQ(open[0].causation_ts_ns, t0 - 5);

  auto r = make_signal("sma.1.1.2");
  ASSERT_TRUE(store.record_rejected(r, "risk_rejected: too big", t0, letter_for(r)));
  EXPECT_EQ(store.find_signal(r.signal_id)->status, "REJECTED");
  EXPECT_EQ(store.find_signal(r.signal_id)->reason, "risk_rejected: too big");
  EXPECT_EQ(store.open_orders().size(), 1u);  // no order for a rejected signal
}

TEST(ExecutorStore, OutcomeMovesOrderOutOfOpenStates) {
  tp::test::TempDir dir;
  ExecutorStore store(dir.file("executor.db"), t0);
  auto a = make_signal("a");
  auto b = make_signal("b");
  store.record_accepted(a, intent_for(a, t0), t0);
  store.record_accepted(b, intent_for(b, t0 + 1), t0 + 1);
  store.set_state("C-b", OrderState::unknown, t0 + 2);
  EXPECT_EQ(store.count_in_state(OrderState::unknown), 1u);

  store.record_outcome("C-a", filled("C-a", 100, 1.2), t0 + 3);
  auto o = store.find_order("C-a");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->state, OrderState::done);
  EXPECT_EQ(o->status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(o->filled_quantity, 100);
  EXPECT_EQ(o->order_id, "B-C-a");

  auto open = store.open_orders();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].client_order_id, "C-b");
  EXPECT_EQ(open[0].state, OrderState::unknown);

  // A broker still working an order leaves it open (SENT): a working order,
  // followed by execution reports rather than asked about.
  tp::proto::OrderReply working;
  working.client_order_id = "C-b";
  working.status = tp::proto::OrderStatus::accepted;
  store.record_outcome("C-b", working, t0 + 4);
  EXPECT_EQ(store.find_order("C-b")->state, OrderState::sent);
  EXPECT_TRUE(store.open_orders().empty());
  ASSERT_EQ(store.working_orders().size(), 1u);
  EXPECT_TRUE(store.working_orders()[0].working());
}

TEST(ExecutorStore, ReopenKeepsStateAndRebuildsPositions) {
  tp::test::TempDir dir;
  const auto path = dir.file("executor.db");
  {
    ExecutorStore store(path, t0);
    auto a = make_signal("a", tp::proto::Side::buy, 100);
    auto b = make_signal("b", tp::proto::Side::buy, 100);
    auto c = make_signal("c", tp::proto::Side::sell, 50);
    auto d = make_signal("d", tp::proto::Side::sell, 10);
    for (const auto* s : {&a, &b, &c, &d}) ASSERT_TRUE(store.record_accepted(*s, intent_for(*s, t0), t0));
    store.record_outcome("C-a", filled("C-a", 100, 10), t0 + 1);
    store.record_outcome("C-b", filled("C-b", 100, 12), t0 + 2);
    store.record_outcome("C-c", filled("C-c", 50, 15), t0 + 3);
    // d stays INTENT: no fill
  }  // closed, as after a crash or restart
  {
    ExecutorStore store(path, t0 + 10);
    EXPECT_TRUE(store.find_signal("a").has_value());
    EXPECT_FALSE(store.record_accepted(make_signal("a"), intent_for(make_signal("a"), t0), t0 + 10));
    auto open = store.open_orders();
    ASSERT_EQ(open.size(), 1u);
    EXPECT_EQ(open[0].client_order_id, "C-d");
    auto book = store.rebuild_positions().instruments;
    const auto* p = book.find("EURUSD");
    ASSERT_NE(p, nullptr);
    EXPECT_DOUBLE_EQ(p->position, 150);
    EXPECT_DOUBLE_EQ(p->avg_price, 11);
    EXPECT_DOUBLE_EQ(p->realized_pnl, 200);
    EXPECT_DOUBLE_EQ(p->last_price, 15);
  }
  // The file is in WAL mode (persistent in the database header).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(ExecutorStore, PruningAfterRetentionKeepsPositionsWhole) {
  tp::test::TempDir dir;
  const auto path = dir.file("executor.db");
  {
    ExecutorStore store(path, t0);
    auto a = make_signal("a", tp::proto::Side::buy, 100);
    auto b = make_signal("b", tp::proto::Side::sell, 40);
    store.record_accepted(a, intent_for(a, t0), t0);
    store.record_accepted(b, intent_for(b, t0), t0);
    store.record_outcome("C-a", filled("C-a", 100, 10), t0 + 1);
    store.record_outcome("C-b", filled("C-b", 40, 11), t0 + 2);
  }
  const auto later = t0 + ExecutorStore::retention_ns + 100;
  {
    ExecutorStore store(path, later);
    EXPECT_FALSE(store.find_signal("a").has_value());
    EXPECT_FALSE(store.find_order("C-a").has_value());
    auto c = make_signal("c", tp::proto::Side::sell, 60);
    store.record_accepted(c, intent_for(c, later), later);
    store.record_outcome("C-c", filled("C-c", 60, 12), later + 1);
  }
  ExecutorStore store(path, later + 10);
  auto book = store.rebuild_positions().instruments;
  const auto* p = book.find("EURUSD");
  ASSERT_NE(p, nullptr);
  EXPECT_DOUBLE_EQ(p->position, 0);
  EXPECT_DOUBLE_EQ(p->realized_pnl, 40 * 1.0 + 60 * 2.0);
  EXPECT_DOUBLE_EQ(p->last_price, 12);
}

TEST(ExecutorStore, BatchCommitsTogetherAndRollsBackWhenLeftOpen) {
  tp::test::TempDir dir;
  const auto db = dir.file("executor.db");
  auto a = make_signal("a");
  auto b = make_signal("b");
  {
    ExecutorStore store(db, t0);
    store.begin_batch();
    EXPECT_TRUE(store.in_batch());
    ASSERT_TRUE(store.record_accepted(a, intent_for(a, t0), t0));
    // A duplicate inside the batch is refused and undoes only its own rows.
    EXPECT_FALSE(store.record_accepted(a, intent_for(a, t0), t0));
    EXPECT_TRUE(store.find_signal("a").has_value());
    ASSERT_TRUE(store.record_rejected(b, "risk_rejected: x", t0, letter_for(b)));
    store.commit_batch();
    EXPECT_FALSE(store.in_batch());

    auto c = make_signal("c");
    store.begin_batch();
    ASSERT_TRUE(store.record_accepted(c, intent_for(c, t0), t0));
  }  // destroyed with the batch open: c is rolled back
  ExecutorStore again(db, t0);
  ASSERT_TRUE(again.find_signal("a").has_value());
  EXPECT_EQ(again.find_signal("a")->status, "ACCEPTED");
  EXPECT_EQ(again.find_signal("b")->status, "REJECTED");
  EXPECT_TRUE(again.find_order("C-a").has_value());
  EXPECT_FALSE(again.find_signal("c").has_value());
  EXPECT_FALSE(again.find_order("C-c").has_value());
}

// Every reconcile pass (each second) asks for the orders a cancel is
// requested for: a walk of a partial index that holds only those, not a
// scan of every order kept.
TEST(ExecutorStore, TheOrdersToCancelAreFoundWithoutReadingEveryOrder) {
  tp::test::TempDir dir;
  const auto db = dir.file("executor.db");
  {
    ExecutorStore store(db, t0);
    store.begin_batch();
    for (int i = 0; i < 50; ++i) {
      const auto s = make_signal("sma.1.1750000000000." + std::to_string(i));
      ASSERT_TRUE(store.record_accepted(s, intent_for(s, t0 + i), t0 + i));
    }
    store.commit_batch();
    store.set_cancel("C-sma.1.1750000000000.7", CancelState::requested, "strategy", t0 + 100);
    const auto wanted = store.cancel_requested();
    ASSERT_EQ(wanted.size(), 1u);
    EXPECT_EQ(wanted[0].client_order_id, "C-sma.1.1750000000000.7");
  }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  std::string plan;
  sqlite3_stmt* st = nullptr;
  // The store's query (ExecutorStore::cancel_requested).
  ASSERT_EQ(sqlite3_prepare_v2(raw,
                               "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE cancel_state = 'REQUESTED' "
                               "ORDER BY created_ns",
                               -1, &st, nullptr),
            SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
  sqlite3_finalize(st);
  sqlite3_close(raw);
  // Walking the partial index (only the requested ones), in its order.
  EXPECT_NE(plan.find("USING INDEX orders_cancel_requested"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

// An order id already taken while its signal's is not (the signal row was
// pruned first): inside a batch, the signal row just written is undone, so
// the pair is all or nothing there too.
TEST(ExecutorStore, ABatchUndoesTheSignalRowOfAnOrderWhoseIdIsTaken) {
  tp::test::TempDir dir;
  ExecutorStore store(dir.file("executor.db"), t0);
  auto a = make_signal("a");
  auto b = make_signal("b");
  store.begin_batch();
  ASSERT_TRUE(store.record_accepted(a, intent_for(a, t0), t0));
  auto clash = intent_for(b, t0);
  clash.client_order_id = "C-a";
  EXPECT_FALSE(store.record_accepted(b, clash, t0));
  EXPECT_FALSE(store.find_signal("b").has_value());
  ASSERT_TRUE(store.record_accepted(b, intent_for(b, t0), t0)) << "nothing of the refused pair is left";
  store.commit_batch();
  EXPECT_EQ(store.find_order("C-a")->signal_id, "a");
  EXPECT_EQ(store.find_order("C-b")->signal_id, "b");
}

// A batch's writes stay in memory: while each signal had a savepoint, its
// statement journal spilled to a temp file once the tables held a few
// thousand rows (batch 62 here), a pwrite(2) per page per signal, a quarter
// of the executor's CPU under a burst.
TEST(ExecutorStore, ABatchWritesNoTempFile) {
  tp::test::TempDir dir;
  ExecutorStore store(dir.file("executor.db"), t0);
  int n = 0;
  for (int batch = 0; batch < 120; ++batch) {
    store.begin_batch();
    for (int i = 0; i < 64; ++i) {
      const auto s = make_signal("sma.1.1750000000000." + std::to_string(++n));
      ASSERT_TRUE(store.record_accepted(s, intent_for(s, t0), t0));
    }
    ASSERT_EQ(open_sqlite_temp_files(), 0)
        << "the statement journal spilled to a temp file in batch " << batch;
    store.commit_batch();
  }
}

TEST(ExecutorStore, OutcomeLettersAreStoredWithTheirOutcomeOnlyAndTheNewestAreKept) {
  tp::test::TempDir dir;
  const auto db = dir.file("executor.db");
  auto a = make_signal("a");
  auto held = make_signal("held");
  {
    ExecutorStore store(db, t0);
    store.begin_batch();
    ASSERT_TRUE(store.record_rejected(a, "risk_rejected: x", t0, letter_for(a, t0)));
    // A duplicate writes neither its row nor its letter.
    EXPECT_FALSE(store.record_rejected(a, "risk_rejected: x", t0 + 1, letter_for(a, t0 + 1)));
    ASSERT_TRUE(store.record_accepted(held, intent_for(held, t0), t0));
    store.commit_batch();

    // An outcome with its letter, outside a batch: both or neither.
    tp::proto::OrderReply given_up;
    given_up.client_order_id = "C-held";
    given_up.status = tp::proto::OrderStatus::rejected;
    given_up.reason = "expired: held";
    OutcomeLetter l{"expired", "held order C-held not sent", "o", "held", t0 + 2};
    store.record_outcome("C-held", given_up, t0 + 2, &l);
    // A rejected batch leaves no letter behind.
    auto b = make_signal("b");
    store.begin_batch();
    ASSERT_TRUE(store.record_rejected(b, "risk_rejected: x", t0 + 3, letter_for(b, t0 + 3)));
    store.abort_batch();
  }
  ExecutorStore store(db, t0);
  const auto letters = store.recent_letters(10);
  ASSERT_EQ(letters.size(), 2u);
  EXPECT_EQ(letters[0].key, "a");
  EXPECT_EQ(letters[0].reason, "risk_rejected");
  EXPECT_EQ(letters[0].detail, "signal a: too big");
  EXPECT_EQ(letters[0].original, std::string("\x93\x00\x01", 3));  // bytes, NUL included
  EXPECT_EQ(letters[0].ts_ns, t0);
  EXPECT_EQ(letters[1].key, "held");
  EXPECT_EQ(letters[1].ts_ns, t0 + 2);
  EXPECT_EQ(store.find_order("C-held")->status, tp::proto::OrderStatus::rejected);
  ASSERT_EQ(store.recent_letters(1).size(), 1u);
  EXPECT_EQ(store.recent_letters(1)[0].key, "held");  // the newest

  // Beyond letters_kept the oldest go.
  store.begin_batch();
  const int n = static_cast<int>(ExecutorStore::letters_kept) * 2;
  for (int i = 0; i < n; ++i) {
    auto s = make_signal("s" + std::to_string(i));
    ASSERT_TRUE(store.record_rejected(s, "risk_rejected: x", t0 + 10 + i, letter_for(s, t0 + 10 + i)));
  }
  store.commit_batch();
  const auto all = store.recent_letters(static_cast<std::size_t>(n) * 2);
  EXPECT_LE(all.size(),
            static_cast<std::size_t>(ExecutorStore::letters_kept + ExecutorStore::letters_kept / 8));
  EXPECT_GE(all.size(), static_cast<std::size_t>(ExecutorStore::letters_kept));
  EXPECT_EQ(all.back().key, "s" + std::to_string(n - 1));
}
