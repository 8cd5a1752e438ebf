// ExecutionDesk without sockets: a real store in a temporary directory, a
// FakeClock, and the Outbox read back as the node would publish it.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "executor/execution_desk.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

// What the outbox holds, one word per item: "ack:<status>", "event:<status>",
// "dead:<reason>", "pos:<group>:<instrument>=<quantity>".
std::vector<std::string> kinds(const Outbox& out) {
  std::vector<std::string> k;
  for (const auto& item : out.items) {
    if (const auto* a = std::get_if<Outbox::Ack>(&item)) {
      k.push_back("ack:" + std::string(tp::proto::to_string(a->ack.status)));
    } else if (const auto* e = std::get_if<tp::proto::OrderEvent>(&item)) {
      k.push_back("event:" + std::string(tp::proto::to_string(e->status)));
    } else if (const auto* p = std::get_if<tp::proto::StrategyPosition>(&item)) {
      k.push_back(fmt::format("pos:{}:{}={}", p->strategy, p->instrument, p->quantity));
    } else {
      k.push_back("dead:" + std::get<Outbox::DeadLetter>(item).reason);
    }
  }
  return k;
}

struct DeskTest : ::testing::Test {
  DeskTest() : store(dir.file("executor.db"), clock.now_ns()) {}

  tp::proto::TradingSignal signal(const std::string& id, tp::proto::Side side = tp::proto::Side::buy,
                                  const std::string& instrument = "EURUSD") {
    tp::proto::TradingSignal s;
    s.signal_id = id;
    s.strategy = "sma";
    s.instance = 1;
    s.instrument = instrument;
    s.action = side;
    s.quantity = 1000;
    s.trigger_price = 1.085;
    s.created_ts_ns = clock.now_ns();
    s.expires_ts_ns = clock.now_ns() + 5'000 * tp::ns_per_ms;
    s.causation_ts_ns = clock.now_ns() - 1000;
    return s;
  }

  // One batch of signals, decided, committed and published.
  std::span<DecidedSignal> batch(ExecutionDesk& desk, const std::vector<tp::proto::TradingSignal>& signals,
                                 bool broker_closed = true) {
    for (const auto& s : signals) {
      desk.next_signal() = s;
      desk.decide(tp::proto::encode_to_string(s), broker_closed);
    }
    desk.commit();
    return desk.publish(out);
  }

  tp::proto::OrderReply filled(const OrderRecord& order, double quantity, double price,
                               tp::proto::OrderStatus status = tp::proto::OrderStatus::filled) {
    tp::proto::OrderReply r;
    r.client_order_id = order.client_order_id;
    r.order_id = "B-1";
    r.status = status;
    r.filled_quantity = quantity;
    r.fill_price = price;
    return r;
  }

  tp::test::TempDir dir;
  tp::FakeClock clock;
  tp::Config config;
  ExecutorStore store;
  Outbox out;
};

}  // namespace

TEST_F(DeskTest, ABatchIsAcceptedRejectedAndDeduplicatedThenPublishedInArrivalOrder) {
  ExecutionDesk desk(store, config, clock);
  const auto a = signal("sma.1.1");
  const auto unknown = signal("sma.1.2", tp::proto::Side::buy, "XAUUSD");
  auto decided = batch(desk, {a, a, unknown});

  ASSERT_EQ(decided.size(), 3u);
  EXPECT_EQ(decided[0].verdict, Verdict::accept);
  EXPECT_EQ(decided[0].order.client_order_id, "C-sma.1.1");
  EXPECT_EQ(decided[0].order.state, OrderState::intent);
  EXPECT_EQ(decided[1].verdict, Verdict::duplicate) << "the same id earlier in the batch";
  EXPECT_EQ(decided[2].verdict, Verdict::reject);
  EXPECT_EQ(decided[2].reason, "unknown_instrument");
  EXPECT_EQ(kinds(out),
            (std::vector<std::string>{"ack:ACCEPTED", "event:NEW", "ack:DUPLICATE", "dead:unknown_instrument",
                                      "event:REJECTED", "ack:REJECTED"}));
  const auto& dead = std::get<Outbox::DeadLetter>(out.items[3]);
  EXPECT_EQ(dead.original, tp::proto::encode_to_string(unknown));
  EXPECT_EQ(dead.detail, "signal sma.1.2: instrument 'XAUUSD' is not configured")
      << "the id, for when the sink keeps the line without the original";
  // Stored with the REJECTED row, to be sent again after a crash; its key
  // (the signal id) lets the sink write it once.
  EXPECT_EQ(dead.key, "sma.1.2");
  EXPECT_GT(dead.ts_ns, 0);
  EXPECT_EQ(store.recent_letters(10), std::vector<OutcomeLetter>{dead});
  EXPECT_EQ(std::get<Outbox::Ack>(out.items[0]).topic, "ACK.sma.1");

  EXPECT_EQ(desk.counters().signals_accepted, 1u);
  EXPECT_EQ(desk.counters().duplicates, 1u);
  EXPECT_EQ(desk.counters().rejected.at("unknown_instrument"), 1u);
  // Committed: the rows are there, the accepted one with its intent.
  EXPECT_EQ(store.find_signal("sma.1.1")->status, "ACCEPTED");
  EXPECT_EQ(store.find_signal("sma.1.2")->status, "REJECTED");
  EXPECT_EQ(store.open_orders().size(), 1u);
}

TEST_F(DeskTest, ARecordedIdIsADuplicateEvenWhenItWouldNowBeRefused) {
  ExecutionDesk desk(store, config, clock);
  const auto a = signal("sma.1.1");
  batch(desk, {a});
  out.items.clear();
  clock.advance_ms(10'000);  // a has expired meanwhile
  auto decided = batch(desk, {a});
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].verdict, Verdict::duplicate);
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"ack:DUPLICATE"}));
  EXPECT_EQ(desk.counters().rejected.count("expired"), 0u);
}

// The node drains signals in batches until its queue is empty: after a full
// batch the next drain may find nothing (or only unreadable frames). That
// drain must publish nothing: the last batch's expired signals were once
// dead-lettered twice, and its accepted orders sent again from their INTENT
// copies (the chaos test's "no signal dead-lettered twice").
TEST_F(DeskTest, ABatchIsPublishedOnceEvenWhenTheNextDrainDecidesNothing) {
  ExecutionDesk desk(store, config, clock);
  auto late = signal("sma.1.1");
  late.expires_ts_ns = clock.now_ns() - 1;
  const auto a = signal("sma.1.2");
  const auto decided = batch(desk, {late, a});
  ASSERT_EQ(decided.size(), 2u);
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"dead:expired", "event:REJECTED", "ack:REJECTED",
                                                  "ack:ACCEPTED", "event:NEW"}));

  // A drain that took no signal: nothing decided, nothing committed.
  Outbox again;
  EXPECT_FALSE(desk.commit());
  EXPECT_TRUE(desk.batch().empty());
  EXPECT_TRUE(desk.publish(again).empty()) << "the accepted order would be sent a second time";
  EXPECT_TRUE(kinds(again).empty());
  EXPECT_EQ(desk.counters().rejected.at("expired"), 1u);
  EXPECT_EQ(desk.counters().signals_accepted, 1u);

  // The next batch is published in full, and only it.
  const auto b = signal("sma.1.3");
  const auto next = batch(desk, {b});
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].signal.signal_id, "sma.1.3");
}

TEST_F(DeskTest, RiskInABatchCountsTheWorstTheUnsentOrdersCouldLeave) {
  config.risk.max_position = 2500;  // two orders of 1000 fit, a third does not
  ExecutionDesk desk(store, config, clock);
  auto decided = batch(desk, {signal("b1"), signal("b2"), signal("b3"), signal("s1", tp::proto::Side::sell)});
  EXPECT_EQ(decided[0].verdict, Verdict::accept);
  EXPECT_EQ(decided[1].verdict, Verdict::accept);
  EXPECT_EQ(decided[2].verdict, Verdict::reject);
  EXPECT_EQ(decided[2].reason, "risk_rejected");
  // A sell is checked against the low side (the buys unfilled): 0 - 1000 fits.
  EXPECT_EQ(decided[3].verdict, Verdict::accept);
}

TEST_F(DeskTest, OrdersAreHeldWhileTheBreakerIsOpenAndAfterwardsBehindOlderHeldOnes) {
  ExecutionDesk desk(store, config, clock);
  auto first = batch(desk, {signal("h1")}, /*broker_closed=*/false);
  EXPECT_TRUE(first[0].held);
  EXPECT_EQ(first[0].order.state, OrderState::held);
  EXPECT_EQ(desk.held_count(), 1u);
  auto second = batch(desk, {signal("h2")}, /*broker_closed=*/true);
  EXPECT_TRUE(second[0].held) << "an older order is still held: arrival order is kept";
  EXPECT_EQ(desk.held_count(), 2u);
  EXPECT_EQ(desk.counters().orders_held, 2u);

  auto held = desk.held_orders();
  ASSERT_EQ(held.size(), 2u);
  ASSERT_TRUE(desk.release(held[0]));
  EXPECT_EQ(held[0].state, OrderState::intent);
  EXPECT_EQ(desk.held_count(), 1u);
  EXPECT_EQ(store.count_in_state(OrderState::held), 1u);

  // The count is read from the store once, when a desk is made.
  ExecutionDesk again(store, config, clock);
  EXPECT_EQ(again.held_count(), 1u);
}

TEST_F(DeskTest, AnOrderOfTheBatchHeldAtSendTimeIsRecordedHeld) {
  ExecutionDesk desk(store, config, clock);
  auto decided = batch(desk, {signal("a")});
  EXPECT_FALSE(desk.must_hold(true));
  EXPECT_TRUE(desk.must_hold(false));
  ASSERT_TRUE(desk.hold(decided[0].order));
  EXPECT_EQ(desk.held_count(), 1u);
  EXPECT_EQ(store.held_orders().size(), 1u);
}

TEST_F(DeskTest, AnAbortedBatchLeavesNothingAndTheHeldCountAsItWas) {
  ExecutionDesk desk(store, config, clock);
  desk.next_signal() = signal("x");
  desk.decide("bytes", /*broker_closed=*/false);
  EXPECT_EQ(desk.held_count(), 1u);
  desk.abort();
  EXPECT_EQ(desk.held_count(), 0u);
  EXPECT_FALSE(store.find_signal("x").has_value());
  // The same id is decided afresh in the next batch.
  auto decided = batch(desk, {signal("x")});
  EXPECT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].verdict, Verdict::accept);
}

TEST_F(DeskTest, AReplyMovesTheBookByWhatIsNewAndSaysWhetherTheOrderIsStillOpen) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("p")})[0].order;
  out.items.clear();

  // The broker is working it and has filled 400 so far.
  const auto working = filled(order, 400, 1.10, tp::proto::OrderStatus::partially_filled);
  EXPECT_TRUE(desk.apply_reply(order, working, clock.now_ns(), ReplySource::reconciliation, out));
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 400);
  EXPECT_EQ(desk.tick_to_fill().count(), 0u) << "a reconciliation does not measure latency";

  order = *store.find_order(order.client_order_id);
  EXPECT_EQ(order.state, OrderState::sent);
  EXPECT_TRUE(desk.apply_reply(order, working, clock.now_ns(), ReplySource::reconciliation, out))
      << "nothing new: still open";
  // Filled in full at an average of 1.16: the new 600 came at 1.20.
  EXPECT_FALSE(
      desk.apply_reply(order, filled(order, 1000, 1.16), clock.now_ns(), ReplySource::round_trip, out));
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 1000);
  EXPECT_NEAR(desk.positions().find("EURUSD")->avg_price, 1.16, 1e-12);
  EXPECT_NEAR(desk.positions().find("EURUSD")->last_price, 1.20, 1e-12);
  EXPECT_EQ(desk.tick_to_fill().count(), 1u);
  EXPECT_EQ(desk.counters().fills, 1u);
  // Each fill's event is followed by the group's position, which includes it.
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"event:PARTIALLY_FILLED", "pos:sma:EURUSD=400",
                                                  "event:FILLED", "pos:sma:EURUSD=1000"}));
  EXPECT_EQ(store.find_order(order.client_order_id)->state, OrderState::done);
}

TEST_F(DeskTest, AnExpiryRefusalIsCountedExpiredAndDeadLetteredWithTheRequest) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("e")})[0].order;
  out.items.clear();
  tp::proto::OrderReply refusal;
  refusal.client_order_id = order.client_order_id;
  refusal.status = tp::proto::OrderStatus::rejected;
  refusal.reason = "expired: deadline passed before the broker call; never sent";
  EXPECT_FALSE(desk.apply_reply(order, refusal, clock.now_ns(), ReplySource::round_trip, out));
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"dead:expired", "event:REJECTED"}));
  EXPECT_EQ(desk.counters().rejected.at("expired"), 1u);
  EXPECT_EQ(desk.counters().broker_rejects, 1u);
  tp::proto::Decoder dec;
  auto req =
      dec.decode_order_request(tp::proto::as_bytes(std::get<Outbox::DeadLetter>(out.items[0]).original));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->client_order_id, order.client_order_id);
  const auto& dead = std::get<Outbox::DeadLetter>(out.items[0]);
  EXPECT_EQ(dead.key, "e");
  EXPECT_EQ(store.recent_letters(10), std::vector<OutcomeLetter>{dead}) << "stored with the outcome";
}

TEST_F(DeskTest, AHeldOrderWhoseSignalExpiredIsGivenUpNeverSent) {
  ExecutionDesk desk(store, config, clock);
  batch(desk, {signal("g")}, /*broker_closed=*/false);
  out.items.clear();
  clock.advance_ms(6'000);
  auto held = desk.held_orders();
  ASSERT_EQ(held.size(), 1u);
  ASSERT_TRUE(desk.give_up(held[0], out));
  EXPECT_EQ(desk.held_count(), 0u);
  EXPECT_EQ(desk.counters().held_expired, 1u);
  EXPECT_EQ(desk.counters().rejected.at("expired"), 1u);
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"dead:expired", "event:REJECTED"}));
  const auto row = store.find_order(held[0].client_order_id);
  EXPECT_EQ(row->state, OrderState::done);
  EXPECT_EQ(row->status, tp::proto::OrderStatus::rejected);
}

TEST_F(DeskTest, APositionMismatchHaltsNewSignalsUnlessTheBrokersFiguresAreAdopted) {
  {
    ExecutionDesk desk(store, config, clock);
    const auto instruments = desk.instruments_to_check();
    EXPECT_EQ(instruments.size(), config.instruments.size());
    std::map<std::string, double, std::less<>> broker;
    for (const auto& sym : instruments) broker[sym] = 0;
    broker["EURUSD"] = 500;
    desk.compare_positions(broker);
    EXPECT_EQ(desk.position_check(), PositionCheck::pending) << "confirmed by a second comparison";
    desk.compare_positions(broker);
    EXPECT_EQ(desk.position_check(), PositionCheck::mismatch);
    EXPECT_DOUBLE_EQ(desk.position_mismatches().at("EURUSD").broker, 500);
    auto decided = batch(desk, {signal("m")});
    EXPECT_EQ(decided[0].verdict, Verdict::reject);
    EXPECT_EQ(decided[0].reason, "position_mismatch");
    // The mismatch halted trading, durably.
    EXPECT_EQ(desk.trading().state, tp::proto::TradingState::halted);
    EXPECT_TRUE(
        desk.trading().cause.starts_with("position mismatch at start: EURUSD executor 0 vs broker 500"))
        << desk.trading().cause;
  }
  config.executor.adopt_broker_positions = true;
  ExecutionDesk desk(store, config, clock);
  desk.compare_positions({{"EURUSD", -300}});
  desk.compare_positions({{"EURUSD", -300}});
  EXPECT_EQ(desk.position_check(), PositionCheck::adopted);
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), -300);
  // The halt outlives the restart: an operator lifts it.
  auto refused = batch(desk, {signal("n")});
  EXPECT_EQ(refused[0].reason, "trading_halted");
  tp::proto::ControlRequest resume;
  resume.command = tp::proto::ControlCommand::resume;
  resume.sent_by = "test";
  EXPECT_TRUE(desk.command(resume).ok);
  EXPECT_EQ(batch(desk, {signal("o")})[0].verdict, Verdict::accept);
}

// ------------------------------------------------------- strategy groups

namespace {

tp::proto::TradingSignal from(tp::proto::TradingSignal s, const std::string& group) {
  s.strategy = group;
  return s;
}

void two_groups(tp::Config& config) {
  config.strategy.groups = {
      tp::StrategyGroup{.name = "trend", .kind = "sma_crossover", .instruments = {"EURUSD", "GBPUSD"}},
      tp::StrategyGroup{.name = "revert", .kind = "rsi_reversion", .instruments = {"EURUSD"}}};
}

}  // namespace

TEST_F(DeskTest, EachGroupHasItsOwnPositionsPnlAndCountsBesideTheInstruments) {
  two_groups(config);
  ExecutionDesk desk(store, config, clock);
  auto decided =
      batch(desk, {from(signal("t1"), "trend"), from(signal("r1", tp::proto::Side::sell), "revert"),
                   from(signal("x1", tp::proto::Side::buy, "USDJPY"), "adhoc")});
  ASSERT_EQ(decided.size(), 3u);
  EXPECT_EQ(decided[0].order.strategy, "trend");
  out.items.clear();
  desk.apply_reply(decided[0].order, filled(decided[0].order, 1000, 1.10), clock.now_ns(),
                   ReplySource::round_trip, out);
  desk.apply_reply(decided[1].order, filled(decided[1].order, 1000, 1.12), clock.now_ns(),
                   ReplySource::round_trip, out);
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"event:FILLED", "pos:trend:EURUSD=1000", "event:FILLED",
                                                  "pos:revert:EURUSD=-1000"}));
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 0) << "the instrument nets both groups";
  EXPECT_DOUBLE_EQ(desk.positions().find("EURUSD")->realized_pnl, 1000 * (1.12 - 1.10));
  EXPECT_DOUBLE_EQ(desk.group_positions().at("trend").position("EURUSD"), 1000);
  EXPECT_DOUBLE_EQ(desk.group_positions().at("revert").position("EURUSD"), -1000);
  EXPECT_DOUBLE_EQ(desk.group_positions().at("trend").find("EURUSD")->realized_pnl, 0) << "each its own";

  // trend closes at 1.15: 50 pips on 1000, its own PnL alone.
  out.items.clear();
  auto close = batch(desk, {from(signal("t2", tp::proto::Side::sell), "trend")})[0].order;
  desk.apply_reply(close, filled(close, 1000, 1.15), clock.now_ns(), ReplySource::round_trip, out);
  EXPECT_NEAR(desk.group_positions().at("trend").find("EURUSD")->realized_pnl, 50, 1e-9);
  EXPECT_DOUBLE_EQ(desk.group_positions().at("revert").find("EURUSD")->realized_pnl, 0);

  const auto& groups = desk.counters().groups;
  EXPECT_EQ(groups.at("trend").signals, 2u);
  EXPECT_EQ(groups.at("trend").fills, 2u);
  EXPECT_EQ(groups.at("revert").signals, 1u);
  EXPECT_EQ(groups.at("revert").fills, 1u);
  EXPECT_EQ(groups.at("adhoc").fills, 0u);

  // Reported: each configured group x its instruments, and the group seen
  // only on a signal, with its instrument; in group then instrument order.
  std::vector<std::string> reports;
  for (const auto& p : desk.position_reports()) {
    reports.push_back(fmt::format("{}:{}={}", p.strategy, p.instrument, p.quantity));
    EXPECT_EQ(p.ts_ns, clock.now_ns());
  }
  EXPECT_EQ(reports, (std::vector<std::string>{"adhoc:USDJPY=0", "revert:EURUSD=-1000", "trend:EURUSD=0",
                                               "trend:GBPUSD=0"}));
}

TEST_F(DeskTest, AGroupsOwnLimitRefusesItsSignalsOnlyCountingItsUnsentOrders) {
  two_groups(config);
  config.strategy.groups[0].max_position = 1500;  // trend: one order of 1000 fits, two do not
  ExecutionDesk desk(store, config, clock);
  auto decided =
      batch(desk, {from(signal("t1"), "trend"), from(signal("r1"), "revert"), from(signal("t2"), "trend"),
                   from(signal("t3", tp::proto::Side::sell), "trend")});
  EXPECT_EQ(decided[0].verdict, Verdict::accept);
  EXPECT_EQ(decided[1].verdict, Verdict::accept) << "revert's order is not trend's";
  EXPECT_EQ(decided[2].verdict, Verdict::reject);
  EXPECT_EQ(decided[2].reason, "group_position_limit");
  EXPECT_EQ(decided[3].verdict, Verdict::accept) << "a sell is checked against the low side";
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"ack:ACCEPTED", "event:NEW", "ack:ACCEPTED", "event:NEW",
                                                  "dead:group_position_limit", "event:REJECTED",
                                                  "ack:REJECTED", "ack:ACCEPTED", "event:NEW"}));
  EXPECT_EQ(std::get<Outbox::Ack>(out.items[6]).ack.reason, "group_position_limit");
  EXPECT_EQ(std::get<Outbox::Ack>(out.items[6]).topic, "ACK.trend.1");
  EXPECT_EQ(desk.counters().rejected.at("group_position_limit"), 1u);
  EXPECT_EQ(desk.counters().groups.at("trend").rejected, 1u);
  EXPECT_EQ(store.find_signal("t2")->status, "REJECTED");
}

TEST_F(DeskTest, GroupPositionsAreRebuiltFromTheStoreAndKeepTheirLimit) {
  two_groups(config);
  config.strategy.groups[0].max_position = 1500;
  {
    ExecutionDesk desk(store, config, clock);
    auto order = batch(desk, {from(signal("t1"), "trend")})[0].order;
    desk.apply_reply(order, filled(order, 1000, 1.10), clock.now_ns(), ReplySource::round_trip, out);
  }
  ExecutionDesk desk(store, config, clock);  // a restart on the same database
  EXPECT_DOUBLE_EQ(desk.group_positions().at("trend").position("EURUSD"), 1000);
  EXPECT_EQ(desk.position_reports().at(1).quantity, 1000);
  out.items.clear();
  auto decided = batch(desk, {from(signal("t2"), "trend"), from(signal("r2"), "revert")});
  EXPECT_EQ(decided[0].reason, "group_position_limit");
  EXPECT_EQ(decided[1].verdict, Verdict::accept);
}

namespace {

tp::proto::ExecutionReport report_of(const OrderRecord& order, std::uint64_t seq,
                                     tp::proto::OrderStatus status, double filled, double avg,
                                     double last_qty = 0) {
  tp::proto::ExecutionReport r;
  r.stream = "dg-1";
  r.seq = seq;
  r.client_order_id = order.client_order_id;
  r.order_id = "B-1";
  r.instrument = order.instrument;
  r.side = order.side;
  r.status = status;
  r.quantity = order.quantity;
  r.filled_quantity = filled;
  r.avg_price = avg;
  r.last_quantity = last_qty;
  r.last_price = last_qty > 0 ? avg : 0;
  return r;
}

tp::proto::CancelRequest cancel_request(const std::string& signal_id, const std::string& group = "sma") {
  tp::proto::CancelRequest c;
  c.signal_id = signal_id;
  c.strategy = group;
  c.instance = 1;
  return c;
}

}  // namespace

TEST_F(DeskTest, AReportAppliesWhatIsNewOnceAndRecordsTheRestInBulk) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("r")})[0].order;
  desk.apply_reply(order, filled(order, 0, 0, tp::proto::OrderStatus::accepted), clock.now_ns(),
                   ReplySource::round_trip, out);
  out.items.clear();
  order = *store.find_order(order.client_order_id);
  ASSERT_TRUE(order.working());

  // The answer's own report (seq 1) says nothing new: not written here.
  EXPECT_EQ(
      desk.apply_report(report_of(order, 1, tp::proto::OrderStatus::accepted, 0, 0), clock.now_ns(), out),
      ReportResult::known);
  store.defer_known(report_of(order, 1, tp::proto::OrderStatus::accepted, 0, 0), clock.now_ns());
  EXPECT_EQ(store.report_cursor().next_seq, 1u) << "deferred, not yet written";
  // A fill while it rested: applied with its row and the cursor, and the
  // deferred report written in the same transaction before it.
  EXPECT_EQ(desk.apply_report(report_of(order, 2, tp::proto::OrderStatus::partially_filled, 400, 1.08, 400),
                              clock.now_ns(), out),
            ReportResult::applied);
  EXPECT_EQ(store.report_cursor().next_seq, 3u);
  EXPECT_EQ(store.deferred_known(), 0u);
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 400);
  EXPECT_EQ(desk.tick_to_fill().count(), 0u) << "a resting order's fill does not measure tick-to-fill";
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"event:PARTIALLY_FILLED", "pos:sma:EURUSD=400"}));

  // The same fill again (a fetch after a crash): nothing moves.
  order = *store.find_order(order.client_order_id);
  EXPECT_EQ(desk.apply_report(report_of(order, 2, tp::proto::OrderStatus::partially_filled, 400, 1.08, 400),
                              clock.now_ns(), out),
            ReportResult::known);
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 400);
  // A contradiction is counted, not applied.
  EXPECT_EQ(
      desk.apply_report(report_of(order, 3, tp::proto::OrderStatus::accepted, 0, 0), clock.now_ns(), out),
      ReportResult::known);
  EXPECT_EQ(desk.counters().stale_updates, 1u);
  EXPECT_EQ(desk.counters().reports_applied, 1u);
}

TEST_F(DeskTest, AReportAboutAnOrderRecordedFinalIsJudgedWithoutReadingTheStore) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("f")})[0].order;
  desk.apply_reply(order, filled(order, 1000, 1.08), clock.now_ns(), ReplySource::round_trip, out);
  out.items.clear();
  // The row changed behind the desk's back (no code path does this): a read
  // of the store would take the report below as a fill of a working order.
  store.record_outcome(order.client_order_id, filled(order, 0, 0, tp::proto::OrderStatus::accepted),
                       clock.now_ns());
  EXPECT_EQ(desk.apply_report(report_of(order, 1, tp::proto::OrderStatus::filled, 1000, 1.08, 1000),
                              clock.now_ns(), out),
            ReportResult::known);
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 1000) << "filled once, by the answer";
  EXPECT_TRUE(out.items.empty());
  // Stale and impossible reports are counted as a read of the store would.
  EXPECT_EQ(desk.apply_report(report_of(order, 2, tp::proto::OrderStatus::partially_filled, 1000, 1.08),
                              clock.now_ns(), out),
            ReportResult::known);
  EXPECT_EQ(desk.counters().stale_updates, 1u);
  EXPECT_EQ(desk.apply_report(report_of(order, 3, tp::proto::OrderStatus::canceled, 1000, 1.08),
                              clock.now_ns(), out),
            ReportResult::known);
  EXPECT_EQ(desk.counters().invalid_transitions, 1u);
  EXPECT_EQ(desk.counters().reports_known, 3u);
}

TEST_F(DeskTest, AFinalAnswerInATransactionStillOpenIsNotTakenAsRecorded) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("g")})[0].order;
  store.begin_batch();
  desk.apply_reply(order, filled(order, 1000, 1.08), clock.now_ns(), ReplySource::round_trip, out);
  store.abort_batch();  // the answer's row is gone: the order is INTENT again
  out.items.clear();
  ASSERT_EQ(store.find_order(order.client_order_id)->state, OrderState::intent);
  // Its report is news, applied from the store's row.
  EXPECT_EQ(desk.apply_report(report_of(order, 1, tp::proto::OrderStatus::filled, 1000, 1.08, 1000),
                              clock.now_ns(), out),
            ReportResult::applied);
  EXPECT_EQ(store.find_order(order.client_order_id)->state, OrderState::done);
}

TEST_F(DeskTest, ACancelIsDurableAckedAsACancelAndOnlyTheOwnerMayAskIt) {
  ExecutionDesk desk(store, config, clock);
  auto order = batch(desk, {signal("c")})[0].order;
  desk.apply_reply(order, filled(order, 0, 0, tp::proto::OrderStatus::accepted), clock.now_ns(),
                   ReplySource::round_trip, out);
  out.items.clear();

  auto d = desk.request_cancel(cancel_request("c", "other"), out);
  EXPECT_EQ(d.ack, tp::proto::AckStatus::rejected);
  EXPECT_EQ(d.reason, "not_owner");
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"dead:cancel_refused", "ack:REJECTED"}));
  EXPECT_EQ(std::get<Outbox::Ack>(out.items[1]).topic, "ACK.other.1");
  EXPECT_TRUE(std::get<Outbox::Ack>(out.items[1]).ack.cancel);
  out.items.clear();

  d = desk.request_cancel(cancel_request("c"), out);
  EXPECT_EQ(d.ack, tp::proto::AckStatus::accepted);
  EXPECT_TRUE(d.send_now) << "it works at the broker";
  EXPECT_EQ(store.find_order(order.client_order_id)->cancel, CancelState::requested)
      << "durable before the ack";
  d = desk.request_cancel(cancel_request("c"), out);
  EXPECT_EQ(d.ack, tp::proto::AckStatus::duplicate);
  EXPECT_FALSE(d.send_now);
  EXPECT_EQ(desk.request_cancel(cancel_request("nope"), out).reason, "unknown_order");
  out.items.clear();

  // dll_gateway's answer: UNKNOWN leaves it REQUESTED (sent again), CANCELED ends it.
  auto requested = *store.find_order(order.client_order_id);
  tp::proto::OrderReply unknown;
  unknown.client_order_id = order.client_order_id;
  unknown.status = tp::proto::OrderStatus::unknown;
  desk.apply_cancel_answer(requested, unknown, out);
  EXPECT_EQ(store.find_order(order.client_order_id)->cancel, CancelState::requested);
  desk.apply_cancel_answer(requested, filled(order, 0, 0, tp::proto::OrderStatus::canceled), out);
  const auto ended = *store.find_order(order.client_order_id);
  EXPECT_EQ(ended.cancel, CancelState::done);
  EXPECT_EQ(ended.status, tp::proto::OrderStatus::canceled);
  EXPECT_EQ(ended.state, OrderState::done);
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"event:CANCELED"}));
  // Too late now.
  EXPECT_EQ(desk.request_cancel(cancel_request("c"), out).ack, tp::proto::AckStatus::duplicate);
  EXPECT_EQ(desk.counters().cancel_requests, 1u);
  EXPECT_EQ(desk.counters().cancels_refused.at("not_owner"), 1u);
}

TEST_F(DeskTest, AHeldOrderIsCanceledWithoutTheBrokerAndAFinalOneCannotBe) {
  ExecutionDesk desk(store, config, clock);
  auto done = batch(desk, {signal("f")})[0].order;
  desk.apply_reply(done, filled(done, 1000, 1.1), clock.now_ns(), ReplySource::round_trip, out);
  auto held = batch(desk, {signal("h")}, /*broker_closed=*/false)[0].order;
  out.items.clear();
  ASSERT_EQ(desk.held_count(), 1u);

  auto d = desk.request_cancel(cancel_request("h"), out);
  EXPECT_EQ(d.ack, tp::proto::AckStatus::accepted);
  EXPECT_FALSE(d.send_now);
  EXPECT_EQ(desk.held_count(), 0u);
  EXPECT_EQ(store.find_order(held.client_order_id)->status, tp::proto::OrderStatus::canceled);
  EXPECT_TRUE(desk.held_orders().empty()) << "never to be sent";
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"ack:ACCEPTED", "event:CANCELED"}));
  out.items.clear();

  EXPECT_EQ(desk.request_cancel(cancel_request("f"), out).reason, "order_final");
  EXPECT_EQ(kinds(out), (std::vector<std::string>{"ack:REJECTED"})) << "a race, not an error: no dead letter";
}

TEST_F(DeskTest, AnOpenOrderUnknownToTheExecutorHaltsNewSignals) {
  ExecutionDesk desk(store, config, clock);
  desk.compare_open_orders({"C-someone-else"});
  EXPECT_EQ(desk.orders_check(), OrdersCheck::mismatch);
  auto decided = batch(desk, {signal("after")});
  EXPECT_EQ(decided[0].verdict, Verdict::reject);
  EXPECT_EQ(decided[0].reason, "open_orders_mismatch");
}

// The answers of several orders in flight are recorded under one commit; a
// commit that fails (a full disk) applies none of them: no position moves,
// no event goes out, every order stays INTENT (reconciled by query), and the
// failure is reported. Once space returns the same answers are applied.
TEST_F(DeskTest, AnswersRecordedTogetherAreAllAppliedOrNoneWhenTheirCommitFails) {
  tp::test::SmallTmpfs fs(1 << 20);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  ExecutorStore small(fs.file("executor.db"), clock.now_ns());
  std::vector<int> errnos;
  ExecutionDesk desk(small, config, clock,
                     [&](std::string_view, const StoreError&, int err) { errnos.push_back(err); });
  std::vector<AnsweredOrder> answers;
  {
    std::vector<tp::proto::TradingSignal> signals;
    for (int i = 0; i < 6; ++i)
      signals.push_back(
          signal("g" + std::to_string(i), i % 3 == 2 ? tp::proto::Side::sell : tp::proto::Side::buy));
    for (const auto& s : signals) {
      desk.next_signal() = s;
      desk.decide(tp::proto::encode_to_string(s), true);
    }
    desk.commit();
    for (const auto& d : desk.publish(out))
      answers.push_back({d.order, filled(d.order, 1000, 1.1), clock.now_ns()});
  }
  out.items.clear();

  const std::string filler = fs.fill();
  desk.apply_replies(answers, ReplySource::round_trip, out);
  ASSERT_FALSE(errnos.empty()) << "the failed commit is reported";
  EXPECT_EQ(errnos.front(), ENOSPC);
  EXPECT_TRUE(out.items.empty()) << "nothing published for answers not recorded";
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 0);
  EXPECT_EQ(desk.counters().fills, 0u);
  for (const auto& a : answers)
    EXPECT_EQ(small.find_order(a.order.client_order_id)->state, OrderState::intent);

  fs.free();
  desk.apply_replies(answers, ReplySource::round_trip, out);
  EXPECT_DOUBLE_EQ(desk.positions().position("EURUSD"), 2000) << "4 bought, 2 sold";
  EXPECT_EQ(desk.counters().fills, answers.size());
  EXPECT_EQ(desk.tick_to_fill().count(), answers.size());
  for (const auto& a : answers) EXPECT_EQ(small.find_order(a.order.client_order_id)->state, OrderState::done);
  std::size_t events = 0;
  for (const auto& k : kinds(out)) events += k == "event:FILLED" ? 1 : 0;
  EXPECT_EQ(events, answers.size());
}
