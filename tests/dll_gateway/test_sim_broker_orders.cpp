// The simulated broker's orders with a life (broker ABI revision 3), through
// the real plugin and BrokerPlugin: limit orders that rest and fill on later
// ticks at the quote (never a stale one), displayed sizes, IOC, GTD expiry,
// cancels, open orders, the journal v2 lines and a restart from them.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "test_support/builders.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

using tp::dll_gateway::BrokerPlugin;
using tp::dll_gateway::BrokerReport;
using tp::proto::OrderStatus;
using tp::proto::OrderType;
using tp::proto::Side;
using tp::proto::TimeInForce;
using tp::test::TempDir;
using Settings = std::map<std::string, std::string>;
using namespace std::chrono_literals;

namespace {

tp::proto::OrderRequest market(const std::string& id, Side side, double qty) {
  return tp::test::an_order(id).side(side).quantity(qty).instrument("EURUSD").price_hint(1.085).sent_ns(1);
}

tp::proto::OrderRequest limit(const std::string& id, Side side, double qty, double price,
                              TimeInForce tif = TimeInForce::gtc, std::int64_t good_till_ns = 0) {
  tp::proto::OrderRequest o = market(id, side, qty);
  o.set_terms({OrderType::limit, price, tif, good_till_ns});
  return o;
}

// A EURUSD tick published now (unless `ts_ns` says otherwise).
tp::proto::TickEvent tick(std::uint64_t seq, double bid, double ask, double bid_volume = 1e6,
                          double ask_volume = 1e6, std::int64_t ts_ns = 0) {
  tp::proto::TickEvent t =
      tp::test::a_tick("EURUSD", seq).bid_ask(bid, ask).stamped(ts_ns ? ts_ns : tp::wall_ns());
  t.bid_volume = bid_volume;
  t.ask_volume = ask_volume;
  return t;
}

std::vector<BrokerReport> poll(BrokerPlugin& sim) {
  std::vector<BrokerReport> out;
  sim.poll_reports(out, 1000);
  return out;
}

std::vector<std::string> open_ids(BrokerPlugin& sim) {
  std::vector<std::string> ids;
  auto open = sim.open_orders();
  EXPECT_TRUE(open.has_value());
  if (open)
    for (const auto& r : *open) ids.push_back(r.client_order_id);
  return ids;
}

void expect_fill(const BrokerReport& r, const std::string& id, OrderStatus status, double last_quantity,
                 double last_price, double filled, const tp::proto::TickEvent& matched) {
  EXPECT_EQ(r.client_order_id, id);
  EXPECT_EQ(r.status, status) << id << ": " << tp::proto::to_string(r.status);
  EXPECT_DOUBLE_EQ(r.last_quantity, last_quantity) << id;
  EXPECT_DOUBLE_EQ(r.last_price, last_price) << id;
  EXPECT_DOUBLE_EQ(r.filled_quantity, filled) << id;
  EXPECT_EQ(r.quote_seq, matched.seq) << id << ": the tick it matched";
  EXPECT_EQ(r.quote_ts_ns, matched.gateway_ts_ns) << id;
  EXPECT_FALSE(r.order_id.empty()) << id;
}

}  // namespace

TEST(SimBrokerOrders, LimitBuyRestsThenFillsAtTheAskOnceTheAskReachesItsLimit) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  auto placed = sim.submit(limit("B-1", Side::buy, 1000, 1.0855));
  ASSERT_TRUE(placed.ok);
  EXPECT_EQ(placed.reply.status, OrderStatus::accepted);
  EXPECT_EQ(placed.reply.filled_quantity, 0);
  EXPECT_FALSE(placed.reply.order_id.empty()) << "a resting order has a broker id";
  EXPECT_EQ(open_ids(sim), std::vector<std::string>{"B-1"});

  sim.on_tick(tick(2, 1.0854, 1.0856));  // ask still above the limit
  EXPECT_TRUE(poll(sim).empty());
  auto reaching = tick(3, 1.0851, 1.0853);  // below it: filled at the ask, better than the limit
  sim.on_tick(reaching);
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 1u);
  expect_fill(reports[0], "B-1", OrderStatus::filled, 1000, 1.0853, 1000, reaching);
  EXPECT_DOUBLE_EQ(reports[0].avg_price, 1.0853);
  EXPECT_EQ(reports[0].order_id, placed.reply.order_id);
  EXPECT_TRUE(poll(sim).empty()) << "a report is polled once";

  auto q = sim.query("B-1");
  EXPECT_EQ(q.reply.status, OrderStatus::filled);
  EXPECT_DOUBLE_EQ(q.reply.fill_price, 1.0853);
  EXPECT_EQ(sim.position("EURUSD"), 1000.0);
  EXPECT_TRUE(open_ids(sim).empty());
}

TEST(SimBrokerOrders, LimitSellFillsAtTheBidAndAMarketableOneAtOnce) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0840, 1.0842));
  EXPECT_EQ(sim.submit(limit("S-1", Side::sell, 500, 1.0850)).reply.status, OrderStatus::accepted);
  sim.on_tick(tick(2, 1.0849, 1.0851));  // bid below the limit
  EXPECT_TRUE(poll(sim).empty());
  auto up = tick(3, 1.0852, 1.0854);
  sim.on_tick(up);
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 1u);
  expect_fill(reports[0], "S-1", OrderStatus::filled, 500, 1.0852, 500, up);

  // Marketable when placed: filled in the answer at the bid, no report.
  auto now = sim.submit(limit("S-2", Side::sell, 100, 1.0800));
  EXPECT_EQ(now.reply.status, OrderStatus::filled);
  EXPECT_DOUBLE_EQ(now.reply.fill_price, 1.0852);
  EXPECT_TRUE(poll(sim).empty());
  EXPECT_EQ(sim.position("EURUSD"), -600.0);
}

TEST(SimBrokerOrders, APartialFillTakesTheDisplayedSizeAndTheRestFillsOnLaterTicks) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
  auto placed = sim.submit(limit("P-1", Side::buy, 1000, 1.0860));
  EXPECT_EQ(placed.reply.status, OrderStatus::partially_filled);
  EXPECT_DOUBLE_EQ(placed.reply.filled_quantity, 300);
  EXPECT_EQ(open_ids(sim), std::vector<std::string>{"P-1"});

  auto second = tick(2, 1.0852, 1.0854, 1e6, 500);
  sim.on_tick(second);
  auto third = tick(3, 1.0854, 1.0856, 1e6, 500);
  sim.on_tick(third);
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 2u);
  expect_fill(reports[0], "P-1", OrderStatus::partially_filled, 500, 1.0854, 800, second);
  expect_fill(reports[1], "P-1", OrderStatus::filled, 200, 1.0856, 1000, third);
  EXPECT_NEAR(reports[1].avg_price, (300 * 1.0852 + 500 * 1.0854 + 200 * 1.0856) / 1000, 1e-12);
  EXPECT_EQ(sim.position("EURUSD"), 1000.0);
}

TEST(SimBrokerOrders, TwoRestingOrdersShareOneTicksDisplayedSizeOldestFirst) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  ASSERT_EQ(sim.submit(limit("OLD", Side::buy, 1000, 1.0855)).reply.status, OrderStatus::accepted);
  ASSERT_EQ(sim.submit(limit("NEW", Side::buy, 1000, 1.0856)).reply.status, OrderStatus::accepted);
  ASSERT_EQ(sim.submit(limit("SELL", Side::sell, 100, 1.0800)).reply.status, OrderStatus::filled)
      << "marketable at once";

  auto thin = tick(2, 1.0850, 1.0852, 40, 1500);
  sim.on_tick(thin);
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 2u);
  expect_fill(reports[0], "OLD", OrderStatus::filled, 1000, 1.0852, 1000, thin);
  expect_fill(reports[1], "NEW", OrderStatus::partially_filled, 500, 1.0852, 500, thin);

  auto next = tick(3, 1.0850, 1.0852, 40, 1500);
  sim.on_tick(next);
  reports = poll(sim);
  ASSERT_EQ(reports.size(), 1u);
  expect_fill(reports[0], "NEW", OrderStatus::filled, 500, 1.0852, 1000, next);
  EXPECT_EQ(sim.position("EURUSD"), 1900.0);
}

TEST(SimBrokerOrders, AMarketOrderTakesAtMostTheDisplayedSizeAndTheRestIsCanceled) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 250, 400));
  auto buy = sim.submit(market("M-1", Side::buy, 1000));
  EXPECT_EQ(buy.reply.status, OrderStatus::canceled);
  EXPECT_DOUBLE_EQ(buy.reply.filled_quantity, 400);
  EXPECT_DOUBLE_EQ(buy.reply.fill_price, 1.0852);
  EXPECT_EQ(buy.reply.reason, "immediate-or-cancel: remainder canceled");
  auto sell = sim.submit(market("M-2", Side::sell, 1000));
  EXPECT_EQ(sell.reply.status, OrderStatus::canceled);
  EXPECT_DOUBLE_EQ(sell.reply.filled_quantity, 250);
  EXPECT_DOUBLE_EQ(sell.reply.fill_price, 1.0850);

  sim.on_tick(tick(2, 1.0850, 1.0852, 0, 0));  // sizes not known: no cap
  EXPECT_EQ(sim.submit(market("M-3", Side::buy, 1000)).reply.status, OrderStatus::filled);
  EXPECT_TRUE(open_ids(sim).empty());
  EXPECT_TRUE(poll(sim).empty());
  EXPECT_EQ(sim.position("EURUSD"), 1150.0);
}

TEST(SimBrokerOrders, AnIocLimitFillsWhatItCanAndNeverRests) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
  auto away = sim.submit(limit("I-1", Side::buy, 1000, 1.0851, TimeInForce::ioc));
  ASSERT_TRUE(away.ok);
  EXPECT_EQ(away.reply.status, OrderStatus::canceled);
  EXPECT_EQ(away.reply.filled_quantity, 0);
  EXPECT_EQ(away.reply.reason, "immediate-or-cancel: not marketable");

  auto some = sim.submit(limit("I-2", Side::buy, 1000, 1.0852, TimeInForce::ioc));
  EXPECT_EQ(some.reply.status, OrderStatus::canceled);
  EXPECT_DOUBLE_EQ(some.reply.filled_quantity, 300);
  EXPECT_EQ(some.reply.reason, "immediate-or-cancel: remainder canceled");

  sim.on_tick(tick(2, 1.0840, 1.0842));  // would have filled I-1 had it rested
  EXPECT_TRUE(poll(sim).empty());
  EXPECT_TRUE(open_ids(sim).empty());
  EXPECT_EQ(sim.position("EURUSD"), 300.0);
}

TEST(SimBrokerOrders, AGtdOrderExpiresAtItsGoodTillTimeKeepingWhatFilled) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
  const std::int64_t till = tp::wall_ns() + 200'000'000;
  auto placed = sim.submit(limit("G-1", Side::buy, 1000, 1.0852, TimeInForce::gtd, till));
  EXPECT_EQ(placed.reply.status, OrderStatus::partially_filled);
  ASSERT_EQ(
      sim.submit(limit("G-2", Side::buy, 10, 1.0800, TimeInForce::gtd, till + 60'000'000'000)).reply.status,
      OrderStatus::accepted);

  std::vector<BrokerReport> reports;
  ASSERT_TRUE(tp::test::wait_until(
      [&] {
        sim.poll_reports(reports, 100);  // the poll itself expires what is due
        return !reports.empty();
      },
      5s));
  EXPECT_GE(tp::wall_ns(), till);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].client_order_id, "G-1");
  EXPECT_EQ(reports[0].status, OrderStatus::expired);
  EXPECT_DOUBLE_EQ(reports[0].filled_quantity, 300);
  EXPECT_EQ(reports[0].last_quantity, 0);
  EXPECT_EQ(reports[0].quote_seq, 0u);
  EXPECT_EQ(sim.query("G-1").reply.status, OrderStatus::expired);
  EXPECT_EQ(open_ids(sim), std::vector<std::string>{"G-2"});

  // A tick after its time does not fill it: it is gone.
  sim.on_tick(tick(2, 1.0840, 1.0842));
  EXPECT_TRUE(poll(sim).empty());
  EXPECT_EQ(sim.position("EURUSD"), 300.0);

  const std::int64_t handed_over = tp::wall_ns();
  auto late = sim.submit(limit("G-3", Side::buy, 10, 1.0852, TimeInForce::gtd, handed_over - 1));
  EXPECT_EQ(late.reply.status, OrderStatus::rejected);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(late.reply)) << late.reply.reason;
  // The refusal says when the order was handed over (the chaos test tells
  // an order given to the broker in time from one given late by it).
  const auto at = late.reply.reason.find("(received at ");
  ASSERT_NE(at, std::string::npos) << late.reply.reason;
  const std::int64_t received = std::stoll(late.reply.reason.substr(at + 13));
  EXPECT_GE(received, handed_over);
  EXPECT_LE(received, late.reply.broker_ts_ns);
}

TEST(SimBrokerOrders, ATickExpiresADueGtdOrderBeforeMatchingIt) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  const std::int64_t till = tp::wall_ns() + 50'000'000;
  ASSERT_EQ(sim.submit(limit("G-1", Side::buy, 1000, 1.0855, TimeInForce::gtd, till)).reply.status,
            OrderStatus::accepted);
  ASSERT_TRUE(tp::test::wait_until([&] { return tp::wall_ns() > till; }, 5s));
  sim.on_tick(tick(2, 1.0840, 1.0842));  // would fill it
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].status, OrderStatus::expired);
  EXPECT_EQ(sim.position("EURUSD"), 0.0);
}

TEST(SimBrokerOrders, CancelEndsARestingOrderAndAnswersAFinishedOrUnknownOneAsItIs) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
  ASSERT_EQ(sim.submit(limit("C-1", Side::buy, 1000, 1.0852)).reply.status, OrderStatus::partially_filled);
  auto c = sim.cancel("C-1");
  ASSERT_TRUE(c.ok);
  EXPECT_EQ(c.reply.status, OrderStatus::canceled);
  EXPECT_DOUBLE_EQ(c.reply.filled_quantity, 300) << "the fill is kept";
  EXPECT_FALSE(c.reply.order_id.empty());
  EXPECT_TRUE(open_ids(sim).empty());
  sim.on_tick(tick(2, 1.0840, 1.0842));
  EXPECT_TRUE(poll(sim).empty()) << "a cancel is not repeated as a report, and nothing fills after it";
  EXPECT_EQ(sim.query("C-1").reply.status, OrderStatus::canceled);

  auto again = sim.cancel("C-1");
  EXPECT_EQ(again.reply.status, OrderStatus::canceled);
  EXPECT_EQ(again.reply.reason, "cannot cancel: the order is CANCELED");

  ASSERT_EQ(sim.submit(market("F-1", Side::buy, 10)).reply.status, OrderStatus::filled);
  auto filled = sim.cancel("F-1");
  ASSERT_TRUE(filled.ok);
  EXPECT_EQ(filled.reply.status, OrderStatus::filled);
  EXPECT_EQ(filled.reply.reason, "cannot cancel: the order is FILLED");
  EXPECT_DOUBLE_EQ(filled.reply.filled_quantity, 10);

  auto unknown = sim.cancel("never-sent");
  ASSERT_TRUE(unknown.ok);
  EXPECT_EQ(unknown.reply.status, OrderStatus::unknown);
  EXPECT_EQ(sim.position("EURUSD"), 310.0);
}

TEST(SimBrokerOrders, OpenOrdersListsEveryRestingOrderOldestFirstWithItsState) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
  sim.submit(limit("A", Side::buy, 1000, 1.0852));               // 300 filled, rests
  sim.submit(limit("B", Side::sell, 5, 1.0900));                 // rests
  sim.submit(market("M", Side::buy, 5));                         // finished
  sim.submit(limit("C", Side::buy, 5, 1.0800, TimeInForce::gtd,  // rests
                   tp::wall_ns() + 60'000'000'000));
  sim.cancel("B");
  auto open = sim.open_orders();
  ASSERT_TRUE(open.has_value());
  ASSERT_EQ(open->size(), 2u);
  EXPECT_EQ((*open)[0].client_order_id, "A");
  EXPECT_EQ((*open)[0].status, OrderStatus::partially_filled);
  EXPECT_DOUBLE_EQ((*open)[0].filled_quantity, 300);
  EXPECT_DOUBLE_EQ((*open)[0].avg_price, 1.0852);
  EXPECT_EQ((*open)[0].order_id, sim.query("A").reply.order_id);
  EXPECT_EQ((*open)[1].client_order_id, "C");
  EXPECT_EQ((*open)[1].status, OrderStatus::accepted);
  EXPECT_EQ((*open)[1].quote_seq, 0u);
}

TEST(SimBrokerOrders, AStaleOrMissingQuoteIsNeverFilledAgainst) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  auto none = sim.submit(market("N-1", Side::buy, 10));
  EXPECT_EQ(none.reply.status, OrderStatus::rejected);
  EXPECT_EQ(none.reply.reason, "no market data");
  EXPECT_EQ(sim.submit(limit("N-2", Side::buy, 10, 1.09)).reply.status, OrderStatus::accepted)
      << "a GTC limit rests without a quote";

  const std::int64_t old = tp::wall_ns() - 5'000'000'000;
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 1e6, old));  // a backlog: matches nothing
  EXPECT_TRUE(poll(sim).empty());
  for (const auto& o : {market("S-1", Side::buy, 10), limit("S-2", Side::sell, 10, 1.08, TimeInForce::ioc)}) {
    auto r = sim.submit(o);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.reply.status, OrderStatus::rejected) << o.client_order_id;
    EXPECT_EQ(r.reply.reason.rfind("stale quote: EURUSD last quote ", 0), 0u) << r.reply.reason;
    EXPECT_NE(r.reply.reason.find(" ms old (max_quote_age_ms 2000)"), std::string::npos) << r.reply.reason;
    const auto ms = std::stoll(r.reply.reason.substr(std::string("stale quote: EURUSD last quote ").size()));
    EXPECT_GE(ms, 5000) << r.reply.reason;
    EXPECT_LT(ms, 60000) << r.reply.reason;
  }
  auto held = sim.submit(limit("H-1", Side::buy, 10, 1.09));
  EXPECT_EQ(held.reply.status, OrderStatus::accepted) << "marketable, but the quote is stale: held";
  EXPECT_EQ(held.reply.filled_quantity, 0);
  EXPECT_EQ(sim.position("EURUSD"), 0.0);

  auto fresh = tick(2, 1.0850, 1.0852);
  sim.on_tick(fresh);
  auto reports = poll(sim);
  ASSERT_EQ(reports.size(), 2u);
  expect_fill(reports[0], "N-2", OrderStatus::filled, 10, 1.0852, 10, fresh);
  expect_fill(reports[1], "H-1", OrderStatus::filled, 10, 1.0852, 10, fresh);
  for (const auto& r : reports) EXPECT_GE(r.quote_ts_ns, tp::wall_ns() - 2'000'000'000) << "a fresh quote";
}

TEST(SimBrokerOrders, MaxQuoteAgeZeroTurnsTheBoundOff) {
  BrokerPlugin sim(SIM_BROKER_PATH, {{"max_quote_age_ms", "0"}});
  sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 1e6, 1));
  EXPECT_EQ(sim.submit(market("M-1", Side::buy, 10)).reply.status, OrderStatus::filled);
}

TEST(SimBrokerOrders, SettingsOfOrdersWithALifeAreChecked) {
  auto error = [](const Settings& s) {
    try {
      BrokerPlugin p(SIM_BROKER_PATH, s);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error({{"max_quote_age_ms", "-1"}}).find("setting max_quote_age_ms: '-1' is not an integer"),
            std::string::npos);
  EXPECT_NE(error({{"max_open_orders", "0"}}).find("setting max_open_orders: '0' is not an integer >= 1"),
            std::string::npos);
  EXPECT_EQ(error({{"max_quote_age_ms", "500"}, {"max_open_orders", "3"}}), "");
}

TEST(SimBrokerOrders, OpenOrdersAreBoundedAndALiveIdIsNotPlacedTwice) {
  TempDir dir;
  BrokerPlugin sim(SIM_BROKER_PATH, {{"max_open_orders", "2"}, {"journal_path", dir.file("sim.journal")}});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  EXPECT_EQ(sim.submit(limit("R-1", Side::buy, 10, 1.08)).reply.status, OrderStatus::accepted);
  auto twice = sim.submit(limit("R-1", Side::buy, 10, 1.08));
  EXPECT_EQ(twice.reply.status, OrderStatus::rejected);
  EXPECT_EQ(twice.reply.reason, "duplicate client order id: R-1 is still resting");
  EXPECT_EQ(sim.submit(limit("R-2", Side::buy, 10, 1.08)).reply.status, OrderStatus::accepted);
  auto third = sim.submit(limit("R-3", Side::buy, 10, 1.08));
  EXPECT_EQ(third.reply.status, OrderStatus::rejected);
  EXPECT_EQ(third.reply.reason, "too many open orders (max_open_orders 2)");
  // A careless broker otherwise: a finished id placed again is a new order.
  EXPECT_EQ(sim.submit(market("M-1", Side::buy, 10)).reply.status, OrderStatus::filled);
  EXPECT_EQ(sim.submit(market("M-1", Side::buy, 10)).reply.status, OrderStatus::filled);
  EXPECT_EQ(sim.position("EURUSD"), 20.0);
  EXPECT_EQ(sim.query("R-1").reply.status, OrderStatus::accepted) << "the resting one, untouched";

  auto journal = tp::test::read_text(dir.file("sim.journal"));
  EXPECT_EQ(tp::test::count_lines_with(journal, " ORDER R-1 "), 2) << "every submit is on the day book";
  EXPECT_EQ(tp::test::count_lines_with(journal, " ORDER M-1 "), 2) << journal;
}

TEST(SimBrokerOrders, JournalHasOneLinePerEvent) {
  TempDir dir;
  const auto path = dir.file("sim.journal");
  BrokerPlugin sim(SIM_BROKER_PATH, {{"journal_path", path}});
  auto first = tick(7, 1.0858, 1.0860, 1e6, 400);
  sim.on_tick(first);
  const std::int64_t till = tp::wall_ns() + 100'000'000;
  sim.submit(limit("B 1", Side::buy, 1000, 1.0855));
  sim.submit(limit("S-1", Side::sell, 5, 1.1));
  sim.submit(limit("G-1", Side::sell, 5, 1.2, TimeInForce::gtd, till));
  sim.submit(market("M-1", Side::buy, 1000));
  auto reaching = tick(8, 1.0851, 1.0853, 1e6, 600);
  sim.on_tick(reaching);
  sim.on_tick(tick(9, 1.0851, 1.0853, 1e6, 600));
  sim.cancel("S-1");
  ASSERT_TRUE(tp::test::wait_until(
      [&] {
        poll(sim);  // the poll expires what is due
        return sim.query("G-1").reply.status == OrderStatus::expired;
      },
      5s));

  const auto text = tp::test::read_text(path);
  EXPECT_EQ(tp::test::count_lines_with(text, " "), 8) << text;
  const std::string g = "LIMIT@1.2/GTD@" + std::to_string(till);
  for (const std::string& line :
       {std::string(" ORDER B%201 EURUSD BUY 1000 ACCEPTED 0 0 LIMIT@1.0855/GTC 0 \n"),
        std::string(" ORDER S-1 EURUSD SELL 5 ACCEPTED 0 0 LIMIT@1.1/GTC 0 \n"),
        " ORDER G-1 EURUSD SELL 5 ACCEPTED 0 0 " + g + " 0 \n",
        std::string(" ORDER M-1 EURUSD BUY 1000 CANCELED 400 1.086 MARKET 7 immediate-or-cancel: remainder "
                    "canceled\n"),
        std::string(" FILL B%201 EURUSD BUY 1000 PARTIALLY_FILLED 600 1.0853 LIMIT@1.0855/GTC 8 \n"),
        std::string(" FILL B%201 EURUSD BUY 1000 FILLED 1000 1.0853 LIMIT@1.0855/GTC 9 \n"),
        std::string(" CANCEL S-1 EURUSD SELL 5 CANCELED 0 0 LIMIT@1.1/GTC 0 canceled on request\n"),
        " EXPIRE G-1 EURUSD SELL 5 EXPIRED 0 0 " + g + " 0 good-till time " + std::to_string(till) +
            " reached\n"}) {
    EXPECT_EQ(tp::test::count_lines_with(text + "\n", line.substr(0, line.size() - 1)), 1) << line << text;
    EXPECT_NE(text.find(line), std::string::npos) << "whole line: " << line << text;
  }
}

TEST(SimBrokerOrders, ARestartKeepsRestingOrdersMatchingAndPositionsFromFills) {
  TempDir dir;
  const Settings s{{"journal_path", dir.file("sim.journal")}};
  std::string order_id;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, s);
    sim.on_tick(tick(1, 1.0850, 1.0852, 1e6, 300));
    auto placed = sim.submit(limit("K-1", Side::buy, 1000, 1.0852));
    ASSERT_EQ(placed.reply.status, OrderStatus::partially_filled);
    order_id = placed.reply.order_id;
    ASSERT_EQ(sim.submit(limit("K-2", Side::sell, 50, 1.0900)).reply.status, OrderStatus::accepted);
    ASSERT_EQ(sim.submit(limit("K-3", Side::sell, 70, 1.0900)).reply.status, OrderStatus::accepted);
    sim.on_tick(tick(2, 1.0850, 1.0852, 1e6, 100));
    ASSERT_EQ(poll(sim).size(), 1u);  // K-1: 400 of 1000
    ASSERT_EQ(sim.submit(market("M-1", Side::sell, 150)).reply.status, OrderStatus::filled);
    ASSERT_EQ(sim.cancel("K-3").reply.status, OrderStatus::canceled);
  }
  {
    BrokerPlugin again(SIM_BROKER_PATH, s);
    EXPECT_EQ(again.position("EURUSD"), 250.0) << "400 bought, 150 sold";
    auto open = again.open_orders();
    ASSERT_TRUE(open.has_value());
    ASSERT_EQ(open->size(), 2u);
    EXPECT_EQ((*open)[0].client_order_id, "K-1");
    EXPECT_EQ((*open)[0].status, OrderStatus::partially_filled);
    EXPECT_DOUBLE_EQ((*open)[0].filled_quantity, 400);
    EXPECT_EQ((*open)[0].order_id, order_id);
    EXPECT_EQ((*open)[1].client_order_id, "K-2");
    EXPECT_EQ(again.query("K-3").reply.status, OrderStatus::canceled);

    auto up = tick(3, 1.0901, 1.0903, 1e6, 1e6);  // the buy's limit is below the ask; the sell fills
    again.on_tick(up);
    auto down = tick(4, 1.0849, 1.0851, 1e6, 1e6);
    again.on_tick(down);
    auto reports = poll(again);
    ASSERT_EQ(reports.size(), 2u);
    expect_fill(reports[0], "K-2", OrderStatus::filled, 50, 1.0901, 50, up);
    expect_fill(reports[1], "K-1", OrderStatus::filled, 600, 1.0851, 1000, down);
    EXPECT_EQ(reports[1].order_id, order_id);
    EXPECT_EQ(again.position("EURUSD"), 800.0);
    EXPECT_EQ(again.cancel("K-1").reply.reason, "cannot cancel: the order is FILLED");
  }

  BrokerPlugin third(SIM_BROKER_PATH, s);
  EXPECT_TRUE(open_ids(third).empty());
  EXPECT_EQ(third.position("EURUSD"), 800.0);
  EXPECT_DOUBLE_EQ(third.query("K-1").reply.filled_quantity, 1000);
}

TEST(SimBrokerOrders, ATickMatchesOnlyItsOwnInstrument) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  ASSERT_EQ(sim.submit(limit("E-1", Side::buy, 10, 1.0855)).reply.status, OrderStatus::accepted);
  tp::proto::TickEvent other = tp::test::a_tick("GBPUSD", 1).bid_ask(1.0, 1.0001).stamped(tp::wall_ns());
  sim.on_tick(other);  // would fill E-1 were it EURUSD
  EXPECT_TRUE(poll(sim).empty());
  EXPECT_EQ(open_ids(sim), std::vector<std::string>{"E-1"});
}

// Reports wait for the poll in a bounded queue (65536): a tick that would
// make more matches only what fits, and the rest fill on a later tick once
// dll_gateway has polled. Nothing is dropped.
TEST(SimBrokerOrders, AFullReportQueueHoldsFurtherFillsUntilPolled) {
  constexpr std::size_t bound = 65536, more = 10;
  BrokerPlugin sim(SIM_BROKER_PATH, {{"max_open_orders", "100000"}});
  sim.on_tick(tick(1, 1.0858, 1.0860));
  for (std::size_t i = 0; i < bound + more; ++i)
    ASSERT_EQ(sim.submit(limit("Q-" + std::to_string(i), Side::buy, 1, 1.0855)).reply.status,
              OrderStatus::accepted);
  sim.on_tick(tick(2, 1.0850, 1.0852, 0, 0));  // sizes not known: every one is marketable
  std::vector<BrokerReport> reports;
  sim.poll_reports(reports, 2 * bound);
  ASSERT_EQ(reports.size(), bound);
  EXPECT_EQ(reports.front().client_order_id, "Q-0") << "oldest first";
  EXPECT_EQ(open_ids(sim).size(), more);
  sim.on_tick(tick(3, 1.0850, 1.0852, 0, 0));
  reports.clear();
  sim.poll_reports(reports, 2 * bound);
  ASSERT_EQ(reports.size(), more);
  EXPECT_EQ(reports.front().client_order_id, "Q-" + std::to_string(bound));
  EXPECT_EQ(reports.front().quote_seq, 3u);
  EXPECT_EQ(sim.position("EURUSD"), static_cast<double>(bound + more));
}
