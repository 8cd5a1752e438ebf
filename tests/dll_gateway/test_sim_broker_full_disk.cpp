// The simulated broker on a full disk: an order it cannot put in its day
// book is refused, and the book stays readable.
#include <gtest/gtest.h>

#include "dll_gateway/broker_plugin.hpp"
#include "test_support/builders.hpp"
#include "test_support/small_tmpfs.hpp"

using tp::dll_gateway::BrokerPlugin;

namespace {

tp::proto::OrderRequest order(const std::string& id, tp::proto::Side side) {
  return tp::test::an_order(id).side(side).price_hint(1.08).sent_ns(1);
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
    sim.on_quote("EURUSD", 1.0850, 1.0852, 5);
    ASSERT_EQ(sim.submit(order("J-0", tp::proto::Side::buy)).reply.status, tp::proto::OrderStatus::filled);
    ++filled;
    fs.fill();
    // The journal's last page still has room for a few lines: orders go on
    // until a line needs a new block.
    for (int i = 1; i < 1000 && refused_id.empty(); ++i) {
      auto r = sim.submit(order("J-" + std::to_string(i), tp::proto::Side::buy));
      ASSERT_TRUE(r.ok);
      if (r.reply.status == tp::proto::OrderStatus::filled) {
        ++filled;
        continue;
      }
      ASSERT_EQ(r.reply.status, tp::proto::OrderStatus::rejected);
      EXPECT_NE(r.reply.reason.find("No space left on device"), std::string::npos) << r.reply.reason;
      refused_id = "J-" + std::to_string(i);
    }
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
