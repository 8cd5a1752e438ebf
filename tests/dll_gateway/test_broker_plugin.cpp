// BrokerPlugin: the loader's refusals, its adaptation of a revision-2
// plugin, and the simulated broker's market orders, settings and journal
// through the real dlopen path (its limit orders: test_sim_broker_orders.cpp).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "test_support/builders.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

using tp::dll_gateway::BrokerAnswer;
using tp::dll_gateway::BrokerPlugin;
using tp::test::TempDir;
using Settings = std::map<std::string, std::string>;

namespace {

// The message a failed load throws, or "" when it loaded.
std::string load_error(const std::string& path, const Settings& settings = {}) {
  try {
    BrokerPlugin p(path, settings);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

tp::proto::OrderRequest order(const std::string& id, tp::proto::Side side, double qty = 1000,
                              const std::string& instrument = "EURUSD") {
  return tp::test::an_order(id).side(side).quantity(qty).instrument(instrument).price_hint(1.08).sent_ns(1);
}

}  // namespace

TEST(BrokerPluginSettings, RunDirIsExpandedInEveryValue) {
  using tp::dll_gateway::expand_settings;
  auto s = expand_settings(
      {{"journal_path", "${run.dir}/sim.journal"}, {"seed", "7"}, {"twice", "${run.dir}:${run.dir}"}},
      "/var/tp");
  EXPECT_EQ(s.at("journal_path"), "/var/tp/sim.journal");
  EXPECT_EQ(s.at("seed"), "7");
  EXPECT_EQ(s.at("twice"), "/var/tp:/var/tp");
  // A run dir that itself contains the token is not expanded again.
  EXPECT_EQ(expand_settings({{"p", "${run.dir}/x"}}, "/a/${run.dir}").at("p"), "/a/${run.dir}/x");
}

TEST(BrokerPluginLoad, MissingFileNamesPathAndProblem) {
  auto msg = load_error("/nonexistent/dir/libnothing.so");
  EXPECT_NE(msg.find("broker plugin /nonexistent/dir/libnothing.so"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot load"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
}

TEST(BrokerPluginLoad, WrongAbiVersionIsRefused) {
  auto msg = load_error(FAKE_ABI999_PATH);
  EXPECT_NE(msg.find(FAKE_ABI999_PATH), std::string::npos) << msg;
  EXPECT_NE(msg.find("ABI version 999, this dll_gateway takes 1 to 3"), std::string::npos) << msg;
}

TEST(BrokerPluginLoad, FailingCreateReportsThePluginsMessage) {
  auto msg = load_error(FAKE_CREATE_FAILS_PATH);
  EXPECT_NE(msg.find(FAKE_CREATE_FAILS_PATH), std::string::npos) << msg;
  EXPECT_NE(msg.find("create failed: cannot reach broker at fake://nowhere"), std::string::npos) << msg;
}

TEST(BrokerPluginLoad, LibraryWithoutTheAbiIsRefused) {
  auto msg = load_error("libm.so.6");
  EXPECT_NE(msg.find("broker plugin libm.so.6: missing symbol tp_broker_abi_version"), std::string::npos)
      << msg;
}

TEST(SimBrokerSettings, UnknownKeyAndBadNumbersNameTheKey) {
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"colour", "blue"}}).find("unknown setting 'colour'"),
            std::string::npos);
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"reject_rate", "lots"}}).find("setting reject_rate: 'lots'"),
            std::string::npos);
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"partial_fill_rate", "1.5"}}).find("setting partial_fill_rate"),
            std::string::npos);
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"latency_ms", "-3"}}).find("setting latency_ms"),
            std::string::npos);
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"seed", "7x"}}).find("setting seed"), std::string::npos);
  EXPECT_EQ(load_error(SIM_BROKER_PATH, {{"latency_ms", "0"}, {"reject_rate", "0.25"}, {"seed", "9"}}), "");
}

TEST(SimBrokerSettings, RecentOrdersMustBeAPositiveInteger) {
  for (const char* bad : {"0", "x", "-1", ""}) {
    auto msg = load_error(SIM_BROKER_PATH, {{"recent_orders", bad}});
    EXPECT_NE(msg.find("setting recent_orders: '" + std::string(bad) + "' is not an integer >= 1"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
  EXPECT_NE(load_error(SIM_BROKER_PATH, {{"colour", "blue"}})
                .find("recent_orders, max_quote_age_ms, max_open_orders)"),
            std::string::npos)
      << "listed among the known settings";
  EXPECT_EQ(load_error(SIM_BROKER_PATH, {{"recent_orders", "1"}}), "");
}

TEST(SimBroker, RejectsWithoutQuoteThenFillsAtAskAndBid) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  ASSERT_TRUE(sim.wants_quotes());

  auto none = sim.submit(order("A", tp::proto::Side::buy));
  ASSERT_TRUE(none.ok);
  EXPECT_EQ(none.reply.status, tp::proto::OrderStatus::rejected);
  EXPECT_EQ(none.reply.reason, "no market data");
  EXPECT_EQ(none.reply.client_order_id, "A");

  sim.on_quote("EURUSD", 1.0850, 1.0852, tp::wall_ns());
  auto buy = sim.submit(order("B", tp::proto::Side::buy, 1000));
  ASSERT_TRUE(buy.ok);
  EXPECT_EQ(buy.reply.status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(buy.reply.fill_price, 1.0852);
  EXPECT_DOUBLE_EQ(buy.reply.filled_quantity, 1000);
  EXPECT_FALSE(buy.reply.order_id.empty());

  auto sell = sim.submit(order("C", tp::proto::Side::sell, 400));
  ASSERT_TRUE(sell.ok);
  EXPECT_EQ(sell.reply.status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(sell.reply.fill_price, 1.0850);
  EXPECT_NE(sell.reply.order_id, buy.reply.order_id);

  auto other = sim.submit(order("D", tp::proto::Side::buy, 1, "GBPUSD"));
  EXPECT_EQ(other.reply.status, tp::proto::OrderStatus::rejected) << "quotes are per instrument";

  EXPECT_EQ(sim.position("EURUSD"), 600.0);
  auto q = sim.query("B");
  ASSERT_TRUE(q.ok);
  EXPECT_EQ(q.reply.status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(q.reply.order_id, buy.reply.order_id);
  auto unknown = sim.query("never-sent");
  ASSERT_TRUE(unknown.ok);
  EXPECT_EQ(unknown.reply.status, tp::proto::OrderStatus::unknown);
}

TEST(SimBroker, SeededRejectsAndPartialFillsAreReproducibleAndBounded) {
  Settings s{{"reject_rate", "0.3"}, {"partial_fill_rate", "0.4"}, {"seed", "1234"}};
  BrokerPlugin a(SIM_BROKER_PATH, s);
  BrokerPlugin b(SIM_BROKER_PATH, s);
  a.on_quote("EURUSD", 1.0, 1.1, tp::wall_ns());
  b.on_quote("EURUSD", 1.0, 1.1, tp::wall_ns());
  int rejects = 0, partials = 0, fills = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    auto id = "O-" + std::to_string(i);
    auto ra = a.submit(order(id, tp::proto::Side::buy, 100));
    auto rb = b.submit(order(id, tp::proto::Side::buy, 100));
    ASSERT_TRUE(ra.ok);
    ASSERT_EQ(ra.reply.status, rb.reply.status) << "same seed, same outcome at " << i;
    ASSERT_DOUBLE_EQ(ra.reply.filled_quantity, rb.reply.filled_quantity);
    switch (ra.reply.status) {
      case tp::proto::OrderStatus::rejected:
        ++rejects;
        EXPECT_EQ(ra.reply.reason, "simulated reject");
        EXPECT_EQ(ra.reply.filled_quantity, 0);
        break;
      case tp::proto::OrderStatus::canceled:  // an IOC order's partial fill: the rest canceled
        ++partials;
        EXPECT_EQ(ra.reply.reason, "immediate-or-cancel: remainder canceled");
        EXPECT_GE(ra.reply.filled_quantity, 10.0);
        EXPECT_LE(ra.reply.filled_quantity, 90.0);
        EXPECT_DOUBLE_EQ(ra.reply.fill_price, 1.1);
        break;
      case tp::proto::OrderStatus::filled:
        ++fills;
        EXPECT_DOUBLE_EQ(ra.reply.filled_quantity, 100);
        break;
      default:
        ADD_FAILURE() << "unexpected status " << tp::proto::to_string(ra.reply.status);
    }
  }
  // Expected 120 rejects and 112 partials; the bounds are many sigmas wide.
  EXPECT_GT(rejects, 80);
  EXPECT_LT(rejects, 160);
  EXPECT_GT(partials, 70);
  EXPECT_LT(partials, 155);
  EXPECT_GT(fills, 0);

  BrokerPlugin other_seed(SIM_BROKER_PATH,
                          {{"reject_rate", "0.3"}, {"partial_fill_rate", "0.4"}, {"seed", "99"}});
  other_seed.on_quote("EURUSD", 1.0, 1.1, tp::wall_ns());
  BrokerPlugin again(SIM_BROKER_PATH, s);
  again.on_quote("EURUSD", 1.0, 1.1, tp::wall_ns());
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    auto x = other_seed.submit(order("X" + std::to_string(i), tp::proto::Side::buy, 100));
    auto y = again.submit(order("X" + std::to_string(i), tp::proto::Side::buy, 100));
    if (x.reply.status != y.reply.status || x.reply.filled_quantity != y.reply.filled_quantity) ++differ;
  }
  EXPECT_GT(differ, 0) << "the seed must matter";
}

TEST(SimBroker, JournalIsReloadedSoQueriesKnowEarlierIds) {
  TempDir dir;
  Settings s{{"journal_path", dir.file("sim.journal")}};
  std::string filled_id;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, s);
    sim.on_quote("EURUSD", 1.2, 1.3, tp::wall_ns());
    auto r = sim.submit(order("id with space", tp::proto::Side::sell, 50));
    ASSERT_EQ(r.reply.status, tp::proto::OrderStatus::filled);
    filled_id = r.reply.order_id;
    EXPECT_EQ(sim.submit(order("R-1", tp::proto::Side::buy, 5, "USDJPY")).reply.status,
              tp::proto::OrderStatus::rejected);
  }
  auto journal = tp::test::read_text(dir.file("sim.journal"));
  EXPECT_EQ(
      tp::test::count_lines_with(journal, " ORDER id%20with%20space EURUSD SELL 50 FILLED 50 1.2 MARKET 0 "),
      1)
      << journal;
  EXPECT_EQ(
      tp::test::count_lines_with(journal, " ORDER R-1 USDJPY BUY 5 REJECTED 0 0 MARKET 0 no market data"), 1)
      << journal;

  BrokerPlugin restarted(SIM_BROKER_PATH, s);
  auto q = restarted.query("id with space");
  ASSERT_TRUE(q.ok);
  EXPECT_EQ(q.reply.status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(q.reply.filled_quantity, 50);
  EXPECT_DOUBLE_EQ(q.reply.fill_price, 1.2);
  EXPECT_EQ(q.reply.order_id, filled_id);
  auto rejected = restarted.query("R-1");
  EXPECT_EQ(rejected.reply.status, tp::proto::OrderStatus::rejected);
  EXPECT_EQ(rejected.reply.reason, "no market data");
  EXPECT_EQ(restarted.query("R-2").reply.status, tp::proto::OrderStatus::unknown);
  EXPECT_EQ(restarted.position("EURUSD"), -50.0);

  // New orders after the restart get fresh broker ids.
  restarted.on_quote("EURUSD", 1.2, 1.3, tp::wall_ns());
  auto next = restarted.submit(order("N-1", tp::proto::Side::buy, 1));
  EXPECT_NE(next.reply.order_id, filled_id);
}

// The day book of a revision-2 sim broker (one line per order, no kind or
// terms) is still read: its orders were market IOC.
TEST(SimBroker, TornLastJournalLineIsDroppedNotFatal) {
  TempDir dir;
  {
    std::ofstream j(dir.file("sim.journal"));
    j << "100 K-1 EURUSD BUY 10 FILLED 10 1.5 \n"
      << "150 K-0 EURUSD SELL 4 PARTIALLY_FILLED 3 1.4 immediate-or-cancel: remainder canceled\n"
      << "200 K-2 EUR";  // crash mid-line
  }
  Settings s{{"journal_path", dir.file("sim.journal")}};
  {
    BrokerPlugin sim(SIM_BROKER_PATH, s);
    EXPECT_EQ(sim.query("K-1").reply.status, tp::proto::OrderStatus::filled);
    EXPECT_EQ(sim.query("K-2").reply.status, tp::proto::OrderStatus::unknown);
    auto partial = sim.query("K-0");
    EXPECT_EQ(partial.reply.status, tp::proto::OrderStatus::canceled) << "final, as it was then";
    EXPECT_EQ(partial.reply.reason, "immediate-or-cancel: remainder canceled");
    EXPECT_EQ(sim.open_orders()->size(), 0u);
    EXPECT_EQ(sim.position("EURUSD"), 7.0);
    sim.on_quote("EURUSD", 1.0, 1.0, tp::wall_ns());
    sim.submit(order("K-3", tp::proto::Side::buy, 1));
  }
  BrokerPlugin again(SIM_BROKER_PATH, s);  // would throw on a corrupt line
  EXPECT_EQ(again.query("K-3").reply.status, tp::proto::OrderStatus::filled);
}

namespace {

// Five orders through a broker that keeps two in memory: a partial fill
// (CANCELED with the fill), a reject with a reason, another partial fill,
// then "D" placed twice (the second placement
// is the one a query must report).
std::vector<BrokerAnswer> five_orders(BrokerPlugin& sim) {
  sim.on_quote("EURUSD", 1.2, 1.3, tp::wall_ns());
  std::vector<BrokerAnswer> answers;
  answers.push_back(sim.submit(order("first one", tp::proto::Side::buy, 10)));
  answers.push_back(sim.submit(order("R", tp::proto::Side::buy, 5, "USDJPY")));
  answers.push_back(sim.submit(order("P", tp::proto::Side::sell, 4)));
  answers.push_back(sim.submit(order("D", tp::proto::Side::buy, 1)));
  answers.push_back(sim.submit(order("D", tp::proto::Side::buy, 2, "GBPUSD")));
  return answers;
}

void expect_same_answer(BrokerPlugin& sim, const std::string& id, const BrokerAnswer& original) {
  auto q = sim.query(id);
  ASSERT_TRUE(q.ok) << id << ": " << q.reply.reason;
  EXPECT_EQ(q.reply.status, original.reply.status) << id;
  EXPECT_DOUBLE_EQ(q.reply.filled_quantity, original.reply.filled_quantity) << id;
  EXPECT_DOUBLE_EQ(q.reply.fill_price, original.reply.fill_price) << id;
  EXPECT_EQ(q.reply.order_id, original.reply.order_id) << id;
  EXPECT_EQ(q.reply.reason, original.reply.reason) << id;
  EXPECT_EQ(q.reply.broker_ts_ns, original.reply.broker_ts_ns) << id;
}

// With the journal moved away only memory can answer: the last two orders
// still are, the first one no longer is (the query fails, naming the journal).
void expect_only_recent_in_memory(BrokerPlugin& sim, const std::string& journal, const BrokerAnswer& last) {
  std::filesystem::rename(journal, journal + ".away");
  expect_same_answer(sim, "D", last);
  auto first = sim.query("first one");
  EXPECT_FALSE(first.ok);
  EXPECT_NE(first.reply.reason.find("journal_path: cannot read"), std::string::npos) << first.reply.reason;
  std::filesystem::rename(journal + ".away", journal);
}

}  // namespace

TEST(SimBroker, OrdersOutsideTheMemoryWindowAreFoundInTheJournal) {
  TempDir dir;
  const std::string journal = dir.file("sim.journal");
  Settings s{{"journal_path", journal}, {"recent_orders", "2"}, {"partial_fill_rate", "1"}};
  std::vector<BrokerAnswer> sent;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, s);
    sent = five_orders(sim);
    ASSERT_EQ(sent[0].reply.status, tp::proto::OrderStatus::canceled);
    ASSERT_GT(sent[0].reply.filled_quantity, 0);
    ASSERT_FALSE(sent[0].reply.order_id.empty());
    ASSERT_EQ(sent[1].reply.status, tp::proto::OrderStatus::rejected);
    ASSERT_EQ(sent[4].reply.status, tp::proto::OrderStatus::rejected) << "no GBPUSD quote";

    expect_same_answer(sim, "first one", sent[0]);  // from the journal
    expect_same_answer(sim, "R", sent[1]);
    expect_same_answer(sim, "D", sent[4]);  // from memory, the later placement
    EXPECT_EQ(sim.query("never sent").reply.status, tp::proto::OrderStatus::unknown);
    expect_only_recent_in_memory(sim, journal, sent[4]);
  }

  BrokerPlugin reopened(SIM_BROKER_PATH, s);
  expect_same_answer(reopened, "first one", sent[0]);
  expect_same_answer(reopened, "P", sent[2]);
  expect_same_answer(reopened, "D", sent[4]);
  EXPECT_EQ(reopened.query("never sent").reply.status, tp::proto::OrderStatus::unknown);
  expect_only_recent_in_memory(reopened, journal, sent[4]);
  // Positions still come from every line of the journal.
  double bought = sent[0].reply.filled_quantity + sent[3].reply.filled_quantity;
  EXPECT_DOUBLE_EQ(*reopened.position("EURUSD"), bought - sent[2].reply.filled_quantity);

  // Numbering goes on after the last line, not after the window.
  reopened.on_quote("EURUSD", 1.2, 1.3, tp::wall_ns());
  auto next = reopened.submit(order("N", tp::proto::Side::buy, 1));
  EXPECT_EQ(next.reply.order_id, "SIM-6");
}

TEST(SimBroker, WithoutAJournalEveryOrderIsRemembered) {
  BrokerPlugin sim(SIM_BROKER_PATH, {{"recent_orders", "2"}, {"partial_fill_rate", "1"}});
  auto sent = five_orders(sim);
  expect_same_answer(sim, "first one", sent[0]);
  expect_same_answer(sim, "D", sent[4]);
  EXPECT_EQ(sim.query("never sent").reply.status, tp::proto::OrderStatus::unknown);
}

TEST(SimBroker, RefusesAnOrderThatArrivesAtOrAfterItsGoodTillTime) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  sim.on_quote("EURUSD", 1.0850, 1.0852, tp::wall_ns());
  auto late = order("L", tp::proto::Side::buy);
  late.expires_ts_ns = tp::wall_ns() - 1;
  auto r = sim.submit(late);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.reply.status, tp::proto::OrderStatus::rejected);
  EXPECT_TRUE(tp::proto::is_expiry_refusal(r.reply)) << r.reply.reason;
  EXPECT_EQ(sim.position("EURUSD"), 0.0);

  auto in_time = order("T", tp::proto::Side::buy);
  in_time.expires_ts_ns = tp::wall_ns() + 60'000'000'000;
  EXPECT_EQ(sim.submit(in_time).reply.status, tp::proto::OrderStatus::filled);
}

TEST(BrokerPluginRevision2, IsAdaptedMarketIocOnlyAndItsPartialFillIsCanceledWithTheFill) {
  BrokerPlugin v2(FAKE_ABI2_PATH, {});
  EXPECT_EQ(v2.abi_version(), 2);
  EXPECT_FALSE(v2.supports_resting_orders());
  ASSERT_TRUE(v2.wants_quotes());
  tp::proto::TickEvent tick = tp::test::a_tick("EURUSD", 3).bid_ask(1.25, 1.26).stamped(tp::wall_ns());
  v2.on_tick(tick);  // through its tp_broker_on_quote

  auto limit = order("L-1", tp::proto::Side::sell, 10);
  limit.set_terms({tp::proto::OrderType::limit, 1.3, tp::proto::TimeInForce::gtc, 0});
  auto refused = v2.submit(limit);
  ASSERT_TRUE(refused.ok);
  EXPECT_EQ(refused.reply.status, tp::proto::OrderStatus::rejected);
  EXPECT_EQ(refused.reply.reason, "the broker plugin (ABI revision 2) takes market IOC orders only");
  EXPECT_EQ(v2.query("L-1").reply.status, tp::proto::OrderStatus::unknown) << "it never saw the order";

  auto r = v2.submit(order("M-1", tp::proto::Side::sell, 10));
  ASSERT_TRUE(r.ok) << r.reply.reason;
  EXPECT_EQ(r.reply.status, tp::proto::OrderStatus::canceled);
  EXPECT_DOUBLE_EQ(r.reply.filled_quantity, 5);
  EXPECT_DOUBLE_EQ(r.reply.fill_price, 1.25);
  EXPECT_EQ(r.reply.reason, "immediate-or-cancel: remainder canceled");
  EXPECT_EQ(v2.query("M-1").reply.status, tp::proto::OrderStatus::canceled);

  auto c = v2.cancel("M-1");
  ASSERT_TRUE(c.ok);
  EXPECT_EQ(c.reply.status, tp::proto::OrderStatus::canceled);
  EXPECT_EQ(c.reply.reason, "cannot cancel: the order is CANCELED");
  EXPECT_EQ(v2.cancel("never").reply.status, tp::proto::OrderStatus::unknown);
  std::vector<tp::dll_gateway::BrokerReport> reports;
  v2.poll_reports(reports, 100);
  EXPECT_TRUE(reports.empty());
  auto open = v2.open_orders();
  ASSERT_TRUE(open.has_value());
  EXPECT_TRUE(open->empty());
}

TEST(SimBroker, IsRevision3AndRestsOrders) {
  BrokerPlugin sim(SIM_BROKER_PATH, {});
  EXPECT_EQ(sim.abi_version(), 3);
  EXPECT_TRUE(sim.supports_resting_orders());
  EXPECT_TRUE(sim.wants_quotes());
}

TEST(BrokerPluginRevision3, WithoutARequiredFunctionIsRefused) {
  auto msg = load_error(FAKE_ABI3_NO_CANCEL_PATH);
  EXPECT_NE(msg.find("missing symbol tp_broker_cancel (required by ABI revision 3, which it declares)"),
            std::string::npos)
      << msg;
}

TEST(BrokerPluginRevision3, PassesTermsAndTicksAndTakesEveryReportAndOpenOrderInBatches) {
  BrokerPlugin p(FAKE_ABI3_PATH, {});
  EXPECT_EQ(p.abi_version(), 3);
  EXPECT_TRUE(p.supports_resting_orders());
  auto o = order("T-1", tp::proto::Side::buy);
  o.set_terms({tp::proto::OrderType::limit, 1.5, tp::proto::TimeInForce::gtd, 77});
  EXPECT_EQ(p.submit(o).reply.reason, "type=1 limit=1.5 tif=2 till=77");

  tp::proto::TickEvent tick = tp::test::a_tick("EURUSD", 42).bid_ask(1.25, 1.26).gateway_ns(9);
  tick.bid_volume = 300;
  tick.ask_volume = 400;
  p.on_tick(tick);
  EXPECT_EQ(p.query("any").reply.reason, "EURUSD 1.25/1.26 sizes 300/400 ts 9 seq 42");
  p.on_quote("GBPUSD", 1.5, 1.6, 11);
  EXPECT_EQ(p.query("any").reply.reason, "GBPUSD 1.5/1.6 sizes 0/0 ts 11 seq 0");
  EXPECT_EQ(p.cancel("T-1").reply.status, tp::proto::OrderStatus::canceled);

  std::vector<tp::dll_gateway::BrokerReport> reports;
  p.poll_reports(reports, 100);  // more than one batch
  EXPECT_EQ(reports.size(), 98u) << "two of the first 100 are filled in wrongly";
  EXPECT_EQ(p.invalid_reports(), 2u);
  p.poll_reports(reports, 1000);
  ASSERT_EQ(reports.size(), 147u);
  EXPECT_EQ(p.invalid_reports(), 3u);
  EXPECT_EQ(reports[0].client_order_id, "R-0");
  EXPECT_EQ(reports[0].order_id, "F-0");
  EXPECT_EQ(reports[0].status, tp::proto::OrderStatus::partially_filled);
  EXPECT_DOUBLE_EQ(reports[0].last_price, 1.5);
  EXPECT_EQ(reports[49].client_order_id, "R-50") << "R-49 was left out";
  EXPECT_EQ(reports[49].quote_seq, 50u);

  auto open = p.open_orders();
  ASSERT_TRUE(open.has_value());
  ASSERT_EQ(open->size(), 100u) << "asked again with room for all";
  EXPECT_EQ(open->back().client_order_id, "R-99");
}
