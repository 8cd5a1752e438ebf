// The simulated broker on a full disk: an order it cannot put in its day
// book is refused, a fill or a cancel it cannot record does not happen (the
// fill waits for a later tick), and the book stays readable.
#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "dll_gateway/broker_plugin.hpp"
#include "test_support/builders.hpp"
#include "test_support/small_tmpfs.hpp"

using tp::dll_gateway::BrokerPlugin;

namespace {

tp::proto::OrderRequest order(const std::string& id, tp::proto::Side side) {
  return tp::test::an_order(id).side(side).price_hint(1.08).sent_ns(1);
}

tp::proto::TickEvent tick(std::uint64_t seq, double bid, double ask) {
  return tp::test::a_tick("EURUSD", seq).bid_ask(bid, ask).stamped(tp::wall_ns());
}

// Market orders until one is refused for want of space; returns how many filled.
int fill_the_last_page(BrokerPlugin& sim, std::string& refused_id) {
  int filled = 0;
  for (int i = 1; i < 1000 && refused_id.empty(); ++i) {
    auto r = sim.submit(order("J-" + std::to_string(i), tp::proto::Side::buy));
    EXPECT_TRUE(r.ok);
    if (r.reply.status == tp::proto::OrderStatus::filled) {
      ++filled;
      continue;
    }
    EXPECT_EQ(r.reply.status, tp::proto::OrderStatus::rejected);
    EXPECT_NE(r.reply.reason.find("No space left on device"), std::string::npos) << r.reply.reason;
    refused_id = "J-" + std::to_string(i);
  }
  return filled;
}

}  // namespace

TEST(SimBroker, AnOrderItCannotJournalIsRefusedAndTheJournalStaysReadable) {
  tp::test::SmallTmpfs fs(256 * 1024);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  const auto journal = fs.file("sim.journal");
  std::string refused_id;
  int filled = 0;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, {{"journal_path", journal}});
    sim.on_quote("EURUSD", 1.0850, 1.0852, tp::wall_ns());
    ASSERT_EQ(sim.submit(order("J-0", tp::proto::Side::buy)).reply.status, tp::proto::OrderStatus::filled);
    ++filled;
    fs.fill();
    // The journal's last page still has room for a few lines: orders go on
    // until a line needs a new block.
    filled += fill_the_last_page(sim, refused_id);
    ASSERT_FALSE(refused_id.empty()) << "no order was refused on a full disk";
    EXPECT_EQ(sim.position("EURUSD"), 1000.0 * filled) << "a refused order moves nothing";
    fs.free();
    ASSERT_EQ(sim.submit(order("J-after", tp::proto::Side::buy)).reply.status,
              tp::proto::OrderStatus::filled);
    ++filled;
  }
  // Reloaded from the journal: every filled order, nothing of the refused
  // one, and no malformed line (a malformed line would refuse the load).
  BrokerPlugin again(SIM_BROKER_PATH, {{"journal_path", journal}});
  EXPECT_EQ(again.position("EURUSD"), 1000.0 * filled);
  EXPECT_EQ(again.query(refused_id).reply.status, tp::proto::OrderStatus::unknown);
  EXPECT_EQ(again.query("J-after").reply.status, tp::proto::OrderStatus::filled);
}

TEST(SimBroker, AFillOrCancelItCannotJournalDoesNotHappenAndTheFillComesOnALaterTick) {
  tp::test::SmallTmpfs fs(256 * 1024);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  const auto journal = fs.file("sim.journal");
  // Its FILL line is longer than the market ORDER line that found the disk full.
  const std::string resting(120, 'L');
  std::string refused_id;
  int filled = 0;
  {
    BrokerPlugin sim(SIM_BROKER_PATH, {{"journal_path", journal}});
    sim.on_tick(tick(1, 1.0858, 1.0860));
    auto buy = order(resting, tp::proto::Side::buy);
    buy.set_terms({tp::proto::OrderType::limit, 1.0855, tp::proto::TimeInForce::gtc, 0});
    ASSERT_EQ(sim.submit(buy).reply.status, tp::proto::OrderStatus::accepted);
    fs.fill();
    filled = fill_the_last_page(sim, refused_id);
    ASSERT_FALSE(refused_id.empty()) << "no order was refused on a full disk";

    sim.on_tick(tick(2, 1.0851, 1.0853));  // would fill the resting buy
    std::vector<tp::dll_gateway::BrokerReport> reports;
    sim.poll_reports(reports, 10);
    EXPECT_TRUE(reports.empty()) << "a fill the day book cannot hold does not happen";
    EXPECT_EQ(sim.position("EURUSD"), 1000.0 * filled);
    auto cancel = sim.cancel(resting);
    ASSERT_TRUE(cancel.ok);
    EXPECT_EQ(cancel.reply.status, tp::proto::OrderStatus::accepted) << "still resting";
    EXPECT_NE(cancel.reply.reason.find("No space left on device"), std::string::npos) << cancel.reply.reason;
    ASSERT_EQ(sim.open_orders()->size(), 1u);

    fs.free();
    sim.on_tick(tick(3, 1.0851, 1.0853));
    sim.poll_reports(reports, 10);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].status, tp::proto::OrderStatus::filled);
    EXPECT_EQ(reports[0].quote_seq, 3u);
    EXPECT_EQ(sim.position("EURUSD"), 1000.0 * (filled + 1));
  }
  BrokerPlugin again(SIM_BROKER_PATH, {{"journal_path", journal}});
  EXPECT_EQ(again.position("EURUSD"), 1000.0 * (filled + 1));
  EXPECT_EQ(again.query(resting).reply.status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(again.query(refused_id).reply.status, tp::proto::OrderStatus::unknown);
  EXPECT_TRUE(again.open_orders()->empty());
}
