// OrderStore and OrderDesk without sockets: at most one submit per client
// order id, across reopen and after a crash between PENDING and DONE.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "common/clock.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "test_support/builders.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::dll_gateway;
using tp::test::TempDir;

namespace {

// Counts calls and fills everything at 1.5, unless told to fail.
class CountingBroker final : public Broker {
 public:
  BrokerAnswer submit(const tp::proto::OrderRequest& o) override {
    ++submits[o.client_order_id];
    if (on_submit) on_submit();
    BrokerAnswer a;
    a.reply.client_order_id = o.client_order_id;
    if (fail_next) {
      fail_next = false;
      a.reply.reason = "broker submit failed (code 1): connection lost";
      return a;
    }
    a.ok = true;
    a.reply.order_id = "B-" + std::to_string(++placed);
    a.reply.status = o.quantity > 1e6 ? tp::proto::OrderStatus::rejected : tp::proto::OrderStatus::filled;
    a.reply.filled_quantity = a.reply.status == tp::proto::OrderStatus::filled ? o.quantity : 0;
    a.reply.fill_price = a.reply.status == tp::proto::OrderStatus::filled ? 1.5 : 0;
    a.reply.reason = a.reply.status == tp::proto::OrderStatus::rejected ? "too big" : "";
    a.reply.broker_ts_ns = 42;
    known[o.client_order_id] = a.reply;
    return a;
  }
  BrokerAnswer query(const std::string& id) override {
    ++queries;
    BrokerAnswer a;
    a.ok = true;
    a.reply.client_order_id = id;
    if (auto it = known.find(id); it != known.end())
      a.reply = it->second;
    else
      a.reply.status = tp::proto::OrderStatus::unknown;
    return a;
  }
  std::map<std::string, int> submits;
  std::map<std::string, tp::proto::OrderReply> known;
  int queries = 0;
  int placed = 0;
  bool fail_next = false;
  std::function<void()> on_submit;  // runs inside each submit, before the answer
};

tp::proto::OrderRequest order(const std::string& id, double qty = 100) {
  return tp::test::an_order(id).signal_id("s").quantity(qty);
}

tp::proto::OrderQuery query(const std::string& id) {
  tp::proto::OrderQuery q;
  q.client_order_id = id;
  return q;
}

}  // namespace

TEST(OrderStore, PendingAndDoneRowsPersistAcrossReopen) {
  TempDir dir;
  tp::proto::OrderReply done;
  done.client_order_id = "C-2";
  done.order_id = "B-9";
  done.status = tp::proto::OrderStatus::partially_filled;
  done.filled_quantity = 12.5;
  done.fill_price = 1.25;
  done.reason = "ioc";
  done.broker_ts_ns = 77;
  {
    OrderStore store(dir.file("dg.db"));
    EXPECT_FALSE(store.find("C-1").has_value());
    store.insert_pending(order("C-1"), 1);
    store.insert_pending(order("C-2"), 1);
    store.store_done(done, 2);
    EXPECT_THROW(store.insert_pending(order("C-1"), 3), StoreError) << "the id is the primary key";
  }
  OrderStore reopened(dir.file("dg.db"));
  auto p = reopened.find("C-1");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->state, OrderState::pending);
  auto d = reopened.find("C-2");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->state, OrderState::done);
  EXPECT_EQ(d->reply, done);
}

TEST(OrderStore, OpenFailureNamesThePath) {
  try {
    OrderStore store("/nonexistent-dir/x/dg.db");
    FAIL() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x/dg.db"), std::string::npos) << e.what();
  }
}

TEST(OrderDesk, DoneRowIsWrittenByFlushAfterTheAnswerAndACrashBeforeItIsSettledByQuery) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  tp::proto::OrderReply first;
  {
    OrderDesk desk(store, broker, clock);
    first = desk.handle(order("C-1"));
    EXPECT_EQ(store.find("C-1")->state, OrderState::pending) << "the answer goes out before its DONE row";
    desk.flush();
    EXPECT_EQ(store.find("C-1")->state, OrderState::done);
    EXPECT_EQ(store.find("C-1")->reply, first);

    desk.handle(order("C-2"));
    EXPECT_EQ(store.find("C-2")->state, OrderState::pending);
    desk.handle(order("C-3"));  // each call first writes what the previous one left
    EXPECT_EQ(store.find("C-2")->state, OrderState::done);
  }
  // A crash between an answer and its flush: the row stays PENDING, and a
  // retry under the same id is answered from the broker, not submitted again.
  store.insert_pending(order("C-4"), 1);
  broker.submit(order("C-4"));
  OrderDesk desk(store, broker, clock);
  auto retry = desk.handle(order("C-4"));
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(broker.submits["C-4"], 1);
  EXPECT_EQ(store.find("C-4")->state, OrderState::done);
}

TEST(OrderDesk, DuplicateIdGetsStoredReplyAndBrokerIsCalledOnce) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  tp::proto::OrderReply first;
  {
    OrderStore store(dir.file("dg.db"));
    OrderDesk desk(store, broker, clock);
    first = desk.handle(order("C-1"));
    EXPECT_EQ(first.status, tp::proto::OrderStatus::filled);
    EXPECT_FALSE(first.duplicate);
    auto again = desk.handle(order("C-1"));
    EXPECT_TRUE(again.duplicate);
    again.duplicate = false;
    EXPECT_EQ(again, first);
    EXPECT_EQ(desk.counters().orders_received, 2u);
    EXPECT_EQ(desk.counters().duplicates, 1u);
    EXPECT_EQ(desk.counters().fills, 1u);
  }
  // A restarted gateway still knows it.
  OrderStore store(dir.file("dg.db"));
  OrderDesk desk(store, broker, clock);
  auto after_restart = desk.handle(order("C-1"));
  EXPECT_TRUE(after_restart.duplicate);
  EXPECT_EQ(after_restart.order_id, first.order_id);
  EXPECT_EQ(broker.submits["C-1"], 1);
  EXPECT_EQ(broker.queries, 0) << "a final stored outcome needs no broker call";

  auto rejected = desk.handle(order("C-big", 2e6));
  EXPECT_EQ(rejected.status, tp::proto::OrderStatus::rejected);
  EXPECT_TRUE(desk.handle(order("C-big", 2e6)).duplicate);
  EXPECT_EQ(broker.submits["C-big"], 1);
  EXPECT_EQ(desk.counters().rejects, 1u);
}

TEST(OrderDesk, PendingRowKnownToBrokerIsAnsweredNotResubmitted) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  // A previous run recorded C-1, the broker placed it, then we crashed.
  store.insert_pending(order("C-1"), 1);
  broker.submit(order("C-1"));
  ASSERT_EQ(broker.submits["C-1"], 1);

  OrderDesk desk(store, broker, clock);
  auto r = desk.handle(order("C-1"));
  EXPECT_EQ(r.status, tp::proto::OrderStatus::filled);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(broker.submits["C-1"], 1);
  auto stored = store.find("C-1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->state, OrderState::done) << "the broker's answer is now stored";
}

TEST(OrderDesk, PendingRowUnknownToBrokerIsSubmittedOnce) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  store.insert_pending(order("C-1"), 1);  // crashed before the broker saw it

  OrderDesk desk(store, broker, clock);
  auto r = desk.handle(order("C-1"));
  EXPECT_EQ(r.status, tp::proto::OrderStatus::filled);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(broker.submits["C-1"], 1);
  EXPECT_TRUE(desk.handle(order("C-1")).duplicate);
  EXPECT_EQ(broker.submits["C-1"], 1);
}

TEST(OrderDesk, FailedSubmitIsUnknownAndTheRetryReconcilesThroughQuery) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  OrderDesk desk(store, broker, clock);

  broker.fail_next = true;
  auto r = desk.handle(order("C-1"));
  EXPECT_EQ(r.status, tp::proto::OrderStatus::unknown);
  EXPECT_NE(r.reason.find("connection lost"), std::string::npos) << r.reason;
  EXPECT_EQ(desk.counters().broker_errors, 1u);
  EXPECT_EQ(store.find("C-1")->state, OrderState::pending);

  // The broker never got it (our fake failed before recording): the retry
  // asks first, then submits.
  auto retry = desk.handle(order("C-1"));
  EXPECT_EQ(retry.status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(broker.queries, 1);
  EXPECT_EQ(broker.submits["C-1"], 2);  // the failed attempt and the real one
}

TEST(OrderDesk, QueryAnswersStoredOutcomeThenBrokerThenUnknown) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  OrderDesk desk(store, broker, clock);

  auto placed = desk.handle(order("C-1"));
  auto q = desk.handle(query("C-1"));
  EXPECT_EQ(q, placed);
  EXPECT_EQ(broker.queries, 0);

  broker.submit(order("C-elsewhere"));  // known to the broker, not to our store
  auto b = desk.handle(query("C-elsewhere"));
  EXPECT_EQ(b.status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(broker.queries, 1);
  EXPECT_EQ(store.find("C-elsewhere")->state, OrderState::done);

  auto u = desk.handle(query("C-never"));
  EXPECT_EQ(u.status, tp::proto::OrderStatus::unknown);
  EXPECT_EQ(u.client_order_id, "C-never");
  EXPECT_FALSE(store.find("C-never").has_value());
  EXPECT_EQ(desk.counters().queries, 3u);
}

TEST(OrderDesk, SimBrokerJournalSeesEachIdOnceAcrossRestarts) {
  TempDir dir;
  tp::FakeClock clock;
  std::map<std::string, std::string> settings{{"journal_path", dir.file("sim.journal")}};
  tp::proto::OrderReply first;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, settings);
    OrderStore store(dir.file("dg.db"));
    OrderDesk desk(store, sim, clock);
    sim.on_quote("EURUSD", 1.1, 1.2, tp::wall_ns());
    first = desk.handle(order("C-1"));
    EXPECT_EQ(first.status, tp::proto::OrderStatus::filled);
    EXPECT_DOUBLE_EQ(first.fill_price, 1.2);
    EXPECT_TRUE(desk.handle(order("C-1")).duplicate);
    store.insert_pending(order("C-crash"), 2);  // recorded, never sent: a crash
  }
  {
    BrokerPlugin sim(SIM_BROKER_PATH, settings);
    OrderStore store(dir.file("dg.db"));
    OrderDesk desk(store, sim, clock);
    sim.on_quote("EURUSD", 1.1, 1.2, tp::wall_ns());
    auto again = desk.handle(order("C-1"));
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.order_id, first.order_id);
    EXPECT_EQ(desk.handle(order("C-crash")).status, tp::proto::OrderStatus::filled);
    EXPECT_TRUE(desk.handle(order("C-crash")).duplicate);
  }
  auto journal = tp::test::read_text(dir.file("sim.journal"));
  EXPECT_EQ(tp::test::count_lines_with(journal, " C-1 "), 1) << journal;
  EXPECT_EQ(tp::test::count_lines_with(journal, " C-crash "), 1) << journal;
}

TEST(OrderDesk, ARequestPastItsDeadlineNeverReachesTheBrokerAndEveryLaterCopyGetsTheSameRefusal) {
  TempDir dir;
  OrderStore store(dir.file("orders.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000'000'000);
  OrderDesk desk(store, broker, clock);

  auto late = order("C-late");
  late.expires_ts_ns = 1'000'000'000;  // now == deadline: too late
  auto r = desk.handle(late);
  EXPECT_EQ(r.status, tp::proto::OrderStatus::rejected);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(r)) << r.reason;
  EXPECT_EQ(broker.submits.count("C-late"), 0u);
  EXPECT_EQ(desk.counters().expired, 1u);

  // A retry, or a stale copy that arrives later: the stored answer, no submit.
  desk.flush();
  auto again = desk.handle(late);
  EXPECT_TRUE(again.duplicate);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(again)) << again.reason;
  auto q = desk.handle(query("C-late"));
  EXPECT_TRUE(tp::proto::is_expiry_refusal(q)) << q.reason;
  EXPECT_EQ(broker.submits.count("C-late"), 0u);

  // One nanosecond before its deadline an order goes through.
  auto in_time = order("C-in-time");
  in_time.expires_ts_ns = 1'000'000'001;
  EXPECT_EQ(desk.handle(in_time).status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(broker.submits["C-in-time"], 1);
}

TEST(OrderDesk, APendingOrderTheBrokerNeverSawIsRefusedPastItsDeadline) {
  // A crash after PENDING, then the executor's resend comes after the
  // deadline: the broker is asked (it never saw it) and nothing is submitted.
  TempDir dir;
  OrderStore store(dir.file("orders.db"));
  CountingBroker broker;
  tp::FakeClock clock(5'000);
  auto o = order("C-p");
  o.expires_ts_ns = 4'000;
  store.insert_pending(o, 1'000);
  OrderDesk desk(store, broker, clock);
  auto r = desk.handle(o);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(r)) << r.reason;
  EXPECT_EQ(broker.queries, 1);
  EXPECT_EQ(broker.submits.count("C-p"), 0u);
}

// A group read together: every new order's PENDING row is committed before
// the first of them reaches the broker; their DONE rows and reports are
// written by one flush; an id already answered, and a second copy of an id
// in the same group, are answered from the store without a second submit.
TEST(OrderDesk, AGroupsPendingRowsAreAllCommittedBeforeItsFirstBrokerCall) {
  TempDir dir;
  tp::FakeClock clock;
  CountingBroker broker;
  OrderStore store(dir.file("dg.db"));
  OrderDesk desk(store, broker, clock);
  EXPECT_EQ(desk.handle(order("C-old")).status, tp::proto::OrderStatus::filled);

  const std::vector<tp::proto::OrderRequest> group{order("C-1"), order("C-2"), order("C-old"), order("C-3"),
                                                   order("C-2")};
  std::vector<const tp::proto::OrderRequest*> pointers;
  for (const auto& o : group) pointers.push_back(&o);
  std::vector<std::string> missing_at_submit;
  broker.on_submit = [&] {
    for (const auto* id : {"C-1", "C-2", "C-3"}) {
      auto row = store.find(id);
      if (!row) missing_at_submit.emplace_back(id);
    }
  };
  desk.prepare(pointers);
  EXPECT_EQ(store.find("C-old")->state, OrderState::done) << "the earlier answer was flushed first";
  std::vector<tp::proto::OrderReply> answers;
  for (const auto& o : group) answers.push_back(desk.handle(o));
  EXPECT_TRUE(missing_at_submit.empty()) << "a broker call before its group's PENDING rows";
  for (std::size_t i = 0; i < group.size(); ++i) {
    EXPECT_EQ(answers[i].client_order_id, group[i].client_order_id);
    EXPECT_EQ(answers[i].status, tp::proto::OrderStatus::filled) << answers[i].reason;
  }
  EXPECT_FALSE(answers[0].duplicate);
  EXPECT_TRUE(answers[2].duplicate) << "C-old was answered before";
  EXPECT_TRUE(answers[4].duplicate) << "the second copy of C-2";
  EXPECT_EQ(answers[4].order_id, answers[1].order_id);
  for (const auto* id : {"C-1", "C-2", "C-3", "C-old"}) EXPECT_EQ(broker.submits[id], 1) << id;

  desk.flush();
  for (const auto* id : {"C-1", "C-2", "C-3"}) {
    auto row = store.find(id);
    ASSERT_TRUE(row) << id;
    EXPECT_EQ(row->state, OrderState::done) << id;
  }
  // One report per order, numbered in the order the answers were given.
  auto reports = desk.take_reports();
  std::vector<std::string> reported;
  for (const auto& r : reports) reported.push_back(r.client_order_id);
  EXPECT_EQ(reported, (std::vector<std::string>{"C-old", "C-1", "C-2", "C-3"}));
  for (std::size_t i = 1; i < reports.size(); ++i) EXPECT_EQ(reports[i].seq, reports[i - 1].seq + 1);
}

// A group's deadlines are checked one by one, right before each broker
// call, not when the group's PENDING rows are written: an order whose
// deadline passes while an earlier order of its group is at the broker is
// refused, never submitted, and its refusal stored like any answer.
TEST(OrderDesk, AnOrderWhoseDeadlinePassesWhileItsGroupIsAtTheBrokerIsNeverSubmitted) {
  TempDir dir;
  OrderStore store(dir.file("orders.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000'000'000);
  OrderDesk desk(store, broker, clock);
  auto first = order("C-first");
  auto late = order("C-late");
  late.expires_ts_ns = 1'000'000'500;                   // in time when the group is read
  broker.on_submit = [&] { clock.advance_ns(1'000); };  // a slow broker call
  const std::vector<const tp::proto::OrderRequest*> group{&first, &late};
  desk.prepare(group);
  EXPECT_EQ(desk.handle(first).status, tp::proto::OrderStatus::filled);
  auto r = desk.handle(late);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(r)) << r.reason;
  EXPECT_EQ(broker.submits.count("C-late"), 0u);
  desk.flush();
  auto again = desk.handle(late);
  EXPECT_TRUE(again.duplicate);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(again)) << again.reason;
  EXPECT_EQ(broker.submits.count("C-late"), 0u);
}
