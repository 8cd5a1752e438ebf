// OrderDesk and OrderStore on a filesystem that fills up (a small tmpfs, so
// root is needed; skipped otherwise): an order whose PENDING row cannot be
// committed is answered UNKNOWN and never reaches the broker; a DONE row that
// cannot be written leaves the row PENDING; the same SQLite connection works
// again once space returns (SQLite rolls the failed transaction back after
// SQLITE_FULL, also in WAL with locking_mode=EXCLUSIVE), and the same id is
// then submitted exactly once.
#include <gtest/gtest.h>

#include <cerrno>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "test_support/builders.hpp"
#include "test_support/small_tmpfs.hpp"

using namespace tp::dll_gateway;

namespace {

// Fills every order at once, except one whose id starts "R-": it rests
// (ACCEPTED) until canceled.
class CountingBroker final : public Broker {
 public:
  BrokerAnswer submit(const tp::proto::OrderRequest& o) override {
    ++submits[o.client_order_id];
    BrokerAnswer a;
    a.ok = true;
    a.reply.client_order_id = o.client_order_id;
    a.reply.order_id = "B-" + o.client_order_id;
    if (o.client_order_id.starts_with("R-")) {
      a.reply.status = tp::proto::OrderStatus::accepted;
    } else {
      a.reply.status = tp::proto::OrderStatus::filled;
      a.reply.filled_quantity = o.quantity;
      a.reply.fill_price = 1.5;
    }
    known[o.client_order_id] = a.reply;
    return a;
  }
  bool supports_resting_orders() const override { return true; }
  BrokerAnswer cancel(const std::string& id) override {
    ++cancels[id];
    if (on_cancel) on_cancel();
    BrokerAnswer a;
    a.ok = true;
    auto& order = known[id];
    if (order.status == tp::proto::OrderStatus::accepted) order.status = tp::proto::OrderStatus::canceled;
    a.reply = order;
    return a;
  }
  std::map<std::string, int> cancels;
  std::function<void()> on_cancel;  // runs inside the broker call
  BrokerAnswer query(const std::string& id) override {
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
};

tp::proto::OrderRequest order(const std::string& id) {
  return tp::test::an_order(id).signal_id("s-" + id).quantity(100);
}

struct Heard {
  std::vector<std::string> failures;  // error texts
  std::vector<int> errnos;
  int successes = 0;
};

StoreListener listen(Heard& h) {
  return [&h](const StoreError* e, std::string_view) {
    if (e) {
      h.failures.emplace_back(e->what());
      h.errnos.push_back(e->sys_errno());
    } else {
      ++h.successes;
    }
  };
}

}  // namespace

TEST(OrderDeskFullDisk, PendingThatCannotBeWrittenIsUnknownAndUnsentThenSentOnceWhenSpaceReturns) {
  tp::test::SmallTmpfs fs(512 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  OrderStore store(fs.file("dll_gateway.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000);
  Heard heard;
  OrderDesk desk(store, broker, clock, listen(heard));

  EXPECT_EQ(desk.handle(order("C-0")).status, tp::proto::OrderStatus::filled);
  desk.flush();
  fs.fill();

  for (int attempt = 0; attempt < 3; ++attempt) {
    auto r = desk.handle(order("C-1"));
    EXPECT_EQ(r.status, tp::proto::OrderStatus::unknown) << r.reason;
    EXPECT_NE(r.reason.find("retry the same client order id"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("dll_gateway.db"), std::string::npos) << "names the file: " << r.reason;
  }
  EXPECT_EQ(broker.submits.count("C-1"), 0u) << "never submitted without its PENDING row";
  EXPECT_EQ(desk.counters().store_unknown, 3u);
  EXPECT_EQ(desk.counters().rejects, 0u) << "a full disk is not a final refusal";
  ASSERT_EQ(heard.failures.size(), 3u);
  EXPECT_EQ(heard.errnos[0], ENOSPC) << heard.failures[0];
  EXPECT_FALSE(store.find("C-1").has_value());

  fs.free();
  const int ok_before = heard.successes;
  auto r = desk.handle(order("C-1"));
  EXPECT_EQ(r.status, tp::proto::OrderStatus::filled) << "the same connection works again: " << r.reason;
  desk.flush();
  EXPECT_EQ(broker.submits["C-1"], 1);
  EXPECT_GT(heard.successes, ok_before);
  ASSERT_TRUE(store.find("C-1").has_value());
  EXPECT_EQ(store.find("C-1")->state, OrderState::done);
  EXPECT_TRUE(desk.handle(order("C-1")).duplicate);
  EXPECT_EQ(broker.submits["C-1"], 1);
}

TEST(OrderDeskFullDisk, DoneRowThatCannotBeWrittenStaysPendingAndIsSettledByAskingTheBroker) {
  tp::test::SmallTmpfs fs(512 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  OrderStore store(fs.file("dll_gateway.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000);
  Heard heard;
  OrderDesk desk(store, broker, clock, listen(heard));

  auto first = desk.handle(order("C-1"));  // PENDING committed, submitted, answered
  EXPECT_EQ(first.status, tp::proto::OrderStatus::filled);
  fs.fill();
  desk.flush();  // the DONE row: refused
  ASSERT_EQ(heard.failures.size(), 1u);
  EXPECT_EQ(heard.errnos[0], ENOSPC);
  EXPECT_EQ(store.find("C-1")->state, OrderState::pending);

  // A retry while still full: the broker knows it, nothing is sent again.
  auto again = desk.handle(order("C-1"));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.order_id, first.order_id);
  EXPECT_EQ(broker.submits["C-1"], 1);

  fs.free();
  auto settled = desk.handle(order("C-1"));
  EXPECT_TRUE(settled.duplicate);
  EXPECT_EQ(broker.submits["C-1"], 1);
  EXPECT_EQ(store.find("C-1")->state, OrderState::done);
}

TEST(OrderDeskFullDisk, AnAnswerWhoseDoneRowFailedIsWrittenByALaterFlushAndHoldsBackNewSubmits) {
  tp::test::SmallTmpfs fs(512 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  OrderStore store(fs.file("dll_gateway.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000);
  Heard heard;
  OrderDesk desk(store, broker, clock, listen(heard));
  store.insert_pending(order("C-0"), 500);  // a previous run's row, never sent

  // The executor has this answer and will not ask again: only dll_gateway
  // itself can settle its row.
  EXPECT_EQ(desk.handle(order("C-1")).status, tp::proto::OrderStatus::filled);
  fs.fill();
  desk.flush();
  EXPECT_EQ(store.find("C-1")->state, OrderState::pending);
  const auto seq = store.last_seq();

  // While it is unwritten nothing more is sent, not even an order the
  // broker never saw (its row would take the unwritten answer's place).
  auto held = desk.handle(order("C-0"));
  EXPECT_EQ(held.status, tp::proto::OrderStatus::unknown) << held.reason;
  EXPECT_EQ(broker.submits.count("C-0"), 0u);

  fs.free();
  desk.poll();  // any flush: a poll, a request
  ASSERT_EQ(store.find("C-1")->state, OrderState::done);
  EXPECT_EQ(store.find("C-1")->reply.filled_quantity, 100);
  EXPECT_EQ(store.last_seq(), seq + 1) << "the answer's report is stored with it";
  EXPECT_EQ(desk.handle(order("C-0")).status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(broker.submits["C-0"], 1);
  EXPECT_EQ(broker.submits["C-1"], 1);
}

TEST(OrderDeskFullDisk, ACancelWhoseAnswerCannotBeWrittenIsAnsweredUnknownAndSettledByItsRetry) {
  tp::test::SmallTmpfs fs(512 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  OrderStore store(fs.file("dll_gateway.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000);
  Heard heard;
  OrderDesk desk(store, broker, clock, listen(heard));
  EXPECT_EQ(desk.handle(order("R-1")).status, tp::proto::OrderStatus::accepted);
  desk.flush();

  // The disk fills while the broker cancels: its answer cannot be stored.
  // Handed out, the executor would take it as final and never ask again.
  broker.on_cancel = [&] { fs.fill(); };
  auto first = desk.handle(tp::proto::OrderCancel{"R-1", "test", 2'000});
  EXPECT_EQ(first.status, tp::proto::OrderStatus::unknown) << first.reason;
  EXPECT_EQ(broker.cancels["R-1"], 1);
  EXPECT_EQ(store.find("R-1")->reply.status, tp::proto::OrderStatus::accepted);

  fs.free();
  auto settled = desk.handle(tp::proto::OrderCancel{"R-1", "test", 3'000});
  EXPECT_EQ(settled.status, tp::proto::OrderStatus::canceled) << settled.reason;
  EXPECT_EQ(broker.cancels["R-1"], 1) << "the retry asks the broker, never cancels twice";
  EXPECT_EQ(store.find("R-1")->reply.status, tp::proto::OrderStatus::canceled) << "the order's row follows";
  EXPECT_EQ(store.find_cancel("R-1")->state, OrderState::done);
}

// A group whose PENDING commit fails: none of its orders reaches the broker,
// each is answered UNKNOWN ("not sent"), and none leaves a row; once space
// returns, the same ids (the executor's retries) are each submitted once.
TEST(OrderDeskFullDisk, AGroupWhosePendingCommitFailsSendsNoneOfItsOrders) {
  tp::test::SmallTmpfs fs(512 << 10);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  OrderStore store(fs.file("dll_gateway.db"));
  CountingBroker broker;
  tp::FakeClock clock(1'000);
  Heard heard;
  OrderDesk desk(store, broker, clock, listen(heard));
  EXPECT_EQ(desk.handle(order("C-0")).status, tp::proto::OrderStatus::filled);
  desk.flush();

  std::vector<tp::proto::OrderRequest> group;
  for (int i = 1; i <= 6; ++i) group.push_back(order("C-" + std::to_string(i)));
  std::vector<const tp::proto::OrderRequest*> pointers;
  for (const auto& o : group) pointers.push_back(&o);

  fs.fill();
  desk.prepare(pointers);
  for (const auto& o : group) {
    auto r = desk.handle(o);
    EXPECT_EQ(r.status, tp::proto::OrderStatus::unknown) << o.client_order_id << ": " << r.reason;
    EXPECT_NE(r.reason.find("not sent"), std::string::npos) << r.reason;
    EXPECT_EQ(broker.submits.count(o.client_order_id), 0u)
        << o.client_order_id << " sent without its PENDING row";
    EXPECT_FALSE(store.find(o.client_order_id).has_value()) << o.client_order_id;
  }
  desk.flush();
  ASSERT_FALSE(heard.failures.empty());
  EXPECT_EQ(heard.errnos[0], ENOSPC) << heard.failures[0];
  EXPECT_EQ(desk.counters().store_unknown, group.size());
  EXPECT_EQ(desk.counters().rejects, 0u) << "a full disk is not a final refusal";

  fs.free();
  desk.prepare(pointers);
  for (const auto& o : group)
    EXPECT_EQ(desk.handle(o).status, tp::proto::OrderStatus::filled) << o.client_order_id;
  desk.flush();
  for (const auto& o : group) {
    EXPECT_EQ(broker.submits[o.client_order_id], 1) << o.client_order_id;
    EXPECT_EQ(store.find(o.client_order_id)->state, OrderState::done) << o.client_order_id;
  }
}
