// OrderDesk with a broker whose orders rest: every change of an order is a
// numbered report stored before it is handed out, broker reports go through
// the order state machine, one cancel per order reaches the broker, report
// and open-order queries, and the settling of open orders at start. No
// sockets: a fake broker that rests every LIMIT order.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "proto/codec.hpp"
#include "test_support/builders.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::dll_gateway;
using tp::proto::OrderStatus;
using tp::test::TempDir;

namespace {

// Fills MARKET orders at 1.5 at once; rests LIMIT orders (ACCEPTED) until
// the test fills, expires or cancels them through its own methods, which
// queue the reports a poll hands out.
class RestingBroker final : public Broker {
 public:
  bool supports_resting_orders() const override { return true; }

  BrokerAnswer submit(const tp::proto::OrderRequest& o) override {
    ++submits[o.client_order_id];
    auto& r = book[o.client_order_id];
    r.client_order_id = o.client_order_id;
    r.order_id = "B-" + o.client_order_id;
    quantity[o.client_order_id] = o.quantity;
    if (o.order_type == tp::proto::OrderType::market) {
      r.status = OrderStatus::filled;
      r.filled_quantity = o.quantity;
      r.fill_price = 1.5;
    } else {
      r.status = OrderStatus::accepted;
    }
    return {true, r};
  }
  BrokerAnswer query(const std::string& id) override {
    ++queries;
    BrokerAnswer a{true, {}};
    a.reply.client_order_id = id;
    if (auto it = book.find(id); it != book.end())
      a.reply = it->second;
    else
      a.reply.status = OrderStatus::unknown;
    return a;
  }
  BrokerAnswer cancel(const std::string& id) override {
    ++cancels[id];
    auto it = book.find(id);
    if (it == book.end()) return {true, {id, "", OrderStatus::unknown}};
    if (!tp::proto::is_final(it->second.status)) it->second.status = OrderStatus::canceled;
    return {true, it->second};
  }
  void poll_reports(std::vector<BrokerReport>& out, std::size_t max) override {
    while (!queued.empty() && out.size() < max) {
      out.push_back(queued.front());
      queued.erase(queued.begin());
    }
  }
  std::optional<std::vector<BrokerReport>> open_orders() override {
    std::vector<BrokerReport> open;
    for (const auto& [id, r] : book) {
      if (tp::proto::is_final(r.status)) continue;
      BrokerReport b;
      b.client_order_id = id;
      b.status = r.status;
      b.filled_quantity = r.filled_quantity;
      b.avg_price = r.fill_price;
      open.push_back(b);
    }
    return open;
  }

  // A fill of `qty` at `price` on tick `seq` (a report for the next poll).
  void fill(const std::string& id, double qty, double price, std::uint64_t seq) {
    auto& r = book.at(id);
    const double before = r.filled_quantity;
    r.filled_quantity += qty;
    r.fill_price = (before * r.fill_price + qty * price) / r.filled_quantity;
    r.status = r.filled_quantity >= quantity.at(id) ? OrderStatus::filled : OrderStatus::partially_filled;
    queued.push_back(report_of(r, qty, price, seq));
  }
  BrokerReport report_of(const tp::proto::OrderReply& r, double last_qty, double last_price,
                         std::uint64_t seq) {
    BrokerReport b;
    b.client_order_id = r.client_order_id;
    b.order_id = r.order_id;
    b.status = r.status;
    b.last_quantity = last_qty;
    b.last_price = last_price;
    b.filled_quantity = r.filled_quantity;
    b.avg_price = r.fill_price;
    b.quote_seq = seq;
    b.quote_ts_ns = 1000 + static_cast<std::int64_t>(seq);
    return b;
  }

  std::map<std::string, tp::proto::OrderReply> book;
  std::map<std::string, double> quantity;
  std::map<std::string, int> submits, cancels;
  std::vector<BrokerReport> queued;
  int queries = 0;
};

tp::proto::OrderRequest limit_order(const std::string& id, double qty = 100) {
  tp::proto::OrderRequest o = tp::test::an_order(id).signal_id("s").quantity(qty);
  o.order_type = tp::proto::OrderType::limit;
  o.limit_price = 1.4;
  o.time_in_force = tp::proto::TimeInForce::gtc;
  return o;
}

tp::proto::OrderCancel cancel_of(const std::string& id) { return {id, "test", 0}; }

struct Fixture {
  TempDir dir;
  tp::FakeClock clock;
  RestingBroker broker;
  OrderStore store{dir.file("dg.db")};
  OrderDesk desk{store, broker, clock};

  std::vector<tp::proto::ExecutionReport> reports() {
    desk.flush();
    return desk.take_reports();
  }
};

}  // namespace

TEST(OrderDeskLife, EveryChangeIsANumberedReportStoredBeforeItIsHandedOut) {
  Fixture f;
  EXPECT_EQ(f.desk.handle(tp::test::an_order("C-m").signal_id("s").quantity(10).build()).status,
            OrderStatus::filled);
  EXPECT_EQ(f.desk.handle(limit_order("C-l")).status, OrderStatus::accepted);
  auto r = f.reports();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].seq, 1u);
  EXPECT_EQ(r[0].client_order_id, "C-m");
  EXPECT_EQ(r[0].last_quantity, 10);
  EXPECT_EQ(r[0].last_price, 1.5);
  EXPECT_EQ(r[0].instrument, "EURUSD");
  EXPECT_EQ(r[1].seq, 2u);
  EXPECT_EQ(r[1].status, OrderStatus::accepted);
  EXPECT_EQ(r[1].last_quantity, 0);
  EXPECT_EQ(r[0].stream, f.store.stream());

  // Later fills come from the poll, each a report naming its tick.
  f.broker.fill("C-l", 40, 1.39, 7);
  f.broker.fill("C-l", 60, 1.38, 9);
  EXPECT_EQ(f.desk.poll(), 2u);
  r = f.desk.take_reports();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].seq, 3u);
  EXPECT_EQ(r[0].status, OrderStatus::partially_filled);
  EXPECT_EQ(r[0].last_quantity, 40);
  EXPECT_EQ(r[0].last_price, 1.39);
  EXPECT_EQ(r[0].quote_seq, 7u);
  EXPECT_EQ(r[1].status, OrderStatus::filled);
  EXPECT_EQ(r[1].filled_quantity, 100);
  EXPECT_EQ(r[1].last_price, 1.38);
  EXPECT_EQ(f.store.find("C-l")->reply.status, OrderStatus::filled);

  // Stored: the query from seq 2 gives them back, in order.
  auto batch = f.desk.handle(tp::proto::ReportQuery{2, 2, 0});
  EXPECT_EQ(batch.last_seq, 4u);
  EXPECT_EQ(batch.count, 2u);
  EXPECT_FALSE(batch.complete);
  auto unpacked = tp::proto::unpack_reports(batch);
  ASSERT_TRUE(unpacked.ok()) << unpacked.error().message();
  EXPECT_EQ(unpacked.value()[0].seq, 2u);
  EXPECT_EQ(unpacked.value()[1].seq, 3u);
  EXPECT_TRUE(f.desk.handle(tp::proto::ReportQuery{4, 100, 0}).complete);
}

TEST(OrderDeskLife, NumbersContinueAcrossARestartAndTheStreamKeepsItsName) {
  TempDir dir;
  tp::FakeClock clock;
  RestingBroker broker;
  std::string stream;
  {
    OrderStore store(dir.file("dg.db"));
    OrderDesk desk(store, broker, clock);
    desk.handle(limit_order("C-1"));
    desk.flush();
    stream = store.stream();
    EXPECT_EQ(store.last_seq(), 1u);
  }
  OrderStore store(dir.file("dg.db"));
  EXPECT_EQ(store.stream(), stream);
  EXPECT_EQ(store.last_seq(), 1u);
  OrderDesk desk(store, broker, clock);
  desk.handle(limit_order("C-2"));
  desk.flush();
  EXPECT_EQ(desk.take_reports().at(0).seq, 2u);
  // Another file is another stream: a reader cannot mistake its seq 1 for this one's.
  OrderStore other(dir.file("other.db"));
  EXPECT_NE(other.stream(), stream);
}

TEST(OrderDeskLife, BrokerReportsGoThroughTheStateMachine) {
  Fixture f;
  f.desk.handle(limit_order("C-l"));
  f.reports();
  f.broker.fill("C-l", 40, 1.39, 7);
  // The same report twice, then one that contradicts what is known.
  f.broker.queued.push_back(f.broker.queued.front());
  auto bogus = f.broker.queued.front();
  bogus.status = OrderStatus::accepted;
  bogus.filled_quantity = 0;
  f.broker.queued.push_back(bogus);  // an older view: stale
  EXPECT_EQ(f.desk.poll(), 1u);
  EXPECT_EQ(f.desk.counters().reports_stale, 2u);
  f.broker.fill("C-l", 60, 1.38, 9);  // FILLED
  f.desk.poll();
  auto impossible = f.broker.report_of(f.broker.book["C-l"], 0, 0, 10);
  impossible.status = OrderStatus::canceled;  // FILLED -> CANCELED
  f.broker.queued.push_back(impossible);
  EXPECT_EQ(f.desk.poll(), 0u);
  EXPECT_EQ(f.desk.counters().invalid_transitions, 1u);
  EXPECT_EQ(f.store.find("C-l")->reply.status, OrderStatus::filled);
  EXPECT_EQ(f.store.last_seq(), 3u) << "accepted, partial, filled: nothing else stored";
  // A report for an id dll_gateway never sent is not stored.
  auto stranger = impossible;
  stranger.client_order_id = "C-stranger";
  f.broker.queued.push_back(stranger);
  EXPECT_EQ(f.desk.poll(), 0u);
  EXPECT_EQ(f.desk.counters().reports_unknown_order, 1u);
}

TEST(OrderDeskLife, OneCancelPerOrderReachesTheBrokerAndARepeatGetsTheSameAnswer) {
  Fixture f;
  f.desk.handle(limit_order("C-l"));
  f.broker.fill("C-l", 30, 1.39, 3);
  f.desk.poll();
  f.reports();

  auto first = f.desk.handle(cancel_of("C-l"));
  EXPECT_EQ(first.status, OrderStatus::canceled);
  EXPECT_EQ(first.filled_quantity, 30) << "a cancel keeps what filled";
  EXPECT_FALSE(first.duplicate);
  auto r = f.desk.take_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, OrderStatus::canceled);
  EXPECT_EQ(r[0].last_quantity, 0);

  auto again = f.desk.handle(cancel_of("C-l"));
  EXPECT_TRUE(again.duplicate);
  again.duplicate = false;
  EXPECT_EQ(again, first);
  EXPECT_EQ(f.broker.cancels["C-l"], 1);
  EXPECT_TRUE(f.desk.take_reports().empty());
  EXPECT_EQ(f.desk.counters().cancel_duplicates, 1u);

  // A final order: answered from the row, the broker not asked.
  f.desk.handle(tp::test::an_order("C-m").signal_id("s").quantity(10).build());
  f.reports();
  auto late = f.desk.handle(cancel_of("C-m"));
  EXPECT_EQ(late.status, OrderStatus::filled);
  EXPECT_EQ(late.reason, "cannot cancel: the order is FILLED");
  EXPECT_EQ(f.broker.cancels.count("C-m"), 0u);
  EXPECT_EQ(f.desk.counters().cancels_too_late, 1u);

  // An id never seen: UNKNOWN, nothing stored (the order may yet come).
  EXPECT_EQ(f.desk.handle(cancel_of("C-none")).status, OrderStatus::unknown);
  EXPECT_FALSE(f.store.find_cancel("C-none"));
}

TEST(OrderDeskLife, ACancelRecordedBeforeACrashIsAskedAboutNeverSentTwice) {
  Fixture f;
  f.desk.handle(limit_order("C-l"));
  f.reports();
  // As if the last run had died between the cancel's PENDING row and the call.
  f.store.insert_cancel_pending("C-l", 1);
  auto answer = f.desk.handle(cancel_of("C-l"));
  EXPECT_EQ(f.broker.cancels.count("C-l"), 0u) << "asked, not canceled again";
  EXPECT_GE(f.broker.queries, 1);
  EXPECT_EQ(answer.status, OrderStatus::accepted);
  EXPECT_NE(answer.reason.find("not canceled twice"), std::string::npos) << answer.reason;
  EXPECT_EQ(f.store.find_cancel("C-l")->state, OrderState::done);
}

TEST(OrderDeskLife, OpenOrdersAreListedAndSettledAtStart) {
  Fixture f;
  f.desk.handle(limit_order("C-a"));
  f.desk.handle(limit_order("C-b"));
  f.reports();
  auto open = f.desk.handle(tp::proto::OpenOrdersQuery{0, 0});
  EXPECT_TRUE(open.complete);
  auto listed = tp::proto::unpack_reports(open);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed.value().size(), 2u);
  EXPECT_EQ(listed.value()[0].seq, 0u) << "a snapshot, not a stored change";
  EXPECT_EQ(listed.value()[0].instrument, "EURUSD");

  // While dll_gateway was down: C-a filled (its report lost with the
  // process), and an order it never sent appeared at the broker.
  f.broker.fill("C-a", 100, 1.39, 5);
  f.broker.queued.clear();
  f.broker.book["C-stranger"] = {"C-stranger", "B-x", OrderStatus::accepted};
  OrderDesk restarted(f.store, f.broker, f.clock);
  restarted.settle();
  auto r = restarted.take_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].client_order_id, "C-a");
  EXPECT_EQ(r[0].status, OrderStatus::filled);
  EXPECT_EQ(r[0].last_quantity, 100);
  EXPECT_EQ(restarted.counters().unknown_open_orders, 1u);
  EXPECT_EQ(f.store.find("C-a")->reply.status, OrderStatus::filled);
}

TEST(OrderDeskLife, APendingRowWhoseAnswerWasLostIsSettledAtStart) {
  Fixture f;
  // As if the last run had died after the broker's answer and before its
  // DONE row: PENDING here, FILLED at the broker.
  auto lost = tp::test::an_order("C-lost").signal_id("s").quantity(10).build();
  f.store.insert_pending(lost, 1);
  f.broker.submit(lost);
  // And one the broker never saw: it stays PENDING for its retry.
  f.store.insert_pending(tp::test::an_order("C-never").signal_id("s").build(), 1);
  f.desk.settle();
  auto r = f.desk.take_reports();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].client_order_id, "C-lost");
  EXPECT_EQ(r[0].status, OrderStatus::filled);
  EXPECT_EQ(r[0].last_quantity, 10);
  EXPECT_EQ(f.store.find("C-lost")->state, OrderState::done);
  EXPECT_EQ(f.store.find("C-never")->state, OrderState::pending);
  EXPECT_EQ(f.broker.submits["C-lost"], 1) << "asked, never sent again";
}
