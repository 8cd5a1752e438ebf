// The real dll_gateway binary over ipc:// sockets in a temp dir: the test is
// the tick feed (PUB), the executor (REQ) and the dead-letter sink (PULL).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "dll_gateway_run.hpp"
#include "proto/codec.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"

using namespace std::chrono_literals;
using tp::test::Child;
using tp::test::count_lines_with;
using tp::test::json_number;
using tp::test::read_text;

namespace {

class DllGatewayProcess : public tp::dll_gateway::test::DllGatewayRun {};

}  // namespace

TEST_F(DllGatewayProcess, FillsDedupesDeadLettersGarbageAndSurvivesRestart) {
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind(ep("ticks"));
  zmq::socket_t dead(ctx, zmq::socket_type::pull);
  dead.set(zmq::sockopt::linger, 0);
  dead.bind(ep("dead_letters"));

  Child gw(args(), {.stderr_path = dir.file("stderr1.txt")});
  ASSERT_TRUE(gw.started());

  ASSERT_TRUE(feed_quote(pub)) << read_text(dir.file("stderr1.txt"));

  auto first = order("C-1", tp::proto::Side::buy);
  EXPECT_EQ(first.client_order_id, "C-1");
  EXPECT_EQ(first.status, tp::proto::OrderStatus::filled) << first.reason;
  EXPECT_DOUBLE_EQ(first.fill_price, 1.0852);
  EXPECT_DOUBLE_EQ(first.filled_quantity, 1000);
  EXPECT_FALSE(first.duplicate);

  auto again = order("C-1", tp::proto::Side::buy);
  EXPECT_TRUE(again.duplicate);
  again.duplicate = false;
  EXPECT_EQ(again, first);

  // Garbage: still answered (REP must reply), and dead-lettered.
  const std::string garbage = "\xc1 this is not msgpack";
  auto raw = call(garbage);
  ASSERT_TRUE(raw) << "garbage got no reply";
  auto refused = decoder.decode_order_reply(tp::proto::as_bytes(*raw));
  ASSERT_TRUE(refused.ok()) << refused.error().message();
  EXPECT_EQ(refused->status, tp::proto::OrderStatus::rejected);
  EXPECT_EQ(refused->client_order_id, "-");
  EXPECT_NE(refused->reason.find("malformed"), std::string::npos) << refused->reason;

  zmq::pollitem_t item{dead.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq::poll(&item, 1, 5000ms), 1) << "no dead letter";
  zmq::message_t m;
  ASSERT_TRUE(dead.recv(m));
  auto letter =
      decoder.decode_dead_letter(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
  ASSERT_TRUE(letter.ok()) << letter.error().message();
  EXPECT_EQ(letter->source, "dll_gateway");
  EXPECT_EQ(letter->reason, "malformed");
  EXPECT_EQ(letter->original, garbage);

  auto second = order("C-2", tp::proto::Side::sell);
  EXPECT_EQ(second.status, tp::proto::OrderStatus::filled) << second.reason;
  EXPECT_DOUBLE_EQ(second.fill_price, 1.0850);

  // The broker's position, as the executor asks for it at start: 1000 bought, 1000 sold.
  auto pos_raw =
      call(tp::proto::encode_to_string(tp::proto::PositionQuery{.instrument = "EURUSD", .sent_ts_ns = 1}));
  ASSERT_TRUE(pos_raw) << "no reply to a position query";
  auto pos = decoder.decode_position_reply(tp::proto::as_bytes(*pos_raw));
  ASSERT_TRUE(pos.ok()) << pos.error().message();
  EXPECT_TRUE(pos->known);
  EXPECT_EQ(pos->instrument, "EURUSD");
  EXPECT_DOUBLE_EQ(pos->quantity, 0);

  // An order past its deadline is refused before the broker sees it.
  const auto late = tp::test::an_order("C-late").signal_id("late").price_hint(1.085).expires_ns(1).build();
  auto late_raw = call(tp::proto::encode_to_string(late));
  ASSERT_TRUE(late_raw);
  auto late_reply = decoder.decode_order_reply(tp::proto::as_bytes(*late_raw));
  ASSERT_TRUE(late_reply.ok());
  EXPECT_TRUE(tp::proto::is_expiry_refusal(late_reply.value())) << late_reply->reason;

  gw.terminate();
  ASSERT_EQ(gw.wait_exit(5000ms), std::optional<int>(0));
  auto stats = this->stats();
  EXPECT_EQ(json_number(stats, "orders_received"), 4) << stats;
  EXPECT_EQ(json_number(stats, "expired"), 1) << stats;
  EXPECT_EQ(json_number(stats, "position_queries"), 1) << stats;
  EXPECT_EQ(json_number(stats, "duplicates"), 1) << stats;
  EXPECT_EQ(json_number(stats, "fills"), 2) << stats;
  EXPECT_EQ(json_number(stats, "dead_letters"), 1) << stats;
  EXPECT_EQ(tp::test::json_string(stats, "plugin"), SIM_BROKER_PATH) << stats;

  // Restarted with the same run dir: C-1 is still a duplicate, and the
  // broker saw each id exactly once.
  Child gw2(args(), {.stderr_path = dir.file("stderr2.txt")});
  ASSERT_TRUE(gw2.started());
  auto after = order("C-1", tp::proto::Side::buy);
  EXPECT_TRUE(after.duplicate);
  EXPECT_EQ(after.order_id, first.order_id);
  gw2.terminate();
  EXPECT_EQ(gw2.wait_exit(5000ms), std::optional<int>(0));

  auto journal = read_text(dir.file("sim.journal"));
  EXPECT_EQ(count_lines_with(journal, " C-1 "), 1) << journal;
  EXPECT_EQ(count_lines_with(journal, " C-2 "), 1) << journal;
}

// Several executors' order clients at once: each REQ peer's request waits at
// the ROUTER with the others (answered as one group: one PENDING commit,
// one DONE commit), and each peer gets the answer to its own request, also
// when two of them carry the same id (a retry that caught up with its first
// copy: one broker order, the second answered as a duplicate).
TEST_F(DllGatewayProcess, SeveralReqPeersAtOnceEachGetTheirOwnAnswer) {
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind(ep("ticks"));
  Child gw(args(), {.stderr_path = dir.file("stderr.txt")});
  ASSERT_TRUE(gw.started());
  ASSERT_TRUE(feed_quote(pub)) << read_text(dir.file("stderr.txt"));

  constexpr int peers = 24;
  std::vector<zmq::socket_t> reqs;
  std::vector<std::string> ids;
  for (int i = 0; i < peers; ++i) {
    reqs.emplace_back(ctx, zmq::socket_type::req);
    reqs.back().set(zmq::sockopt::linger, 0);
    reqs.back().connect(ep("orders"));
    // Peers 0 and 1 send the same id; every other peer its own.
    ids.push_back(i == 1 ? "P-0" : "P-" + std::to_string(i));
  }
  // Every peer connected first (a query each), so that the orders below
  // arrive together.
  for (auto& r : reqs) {
    r.send(zmq::buffer(tp::proto::encode_to_string(tp::proto::OrderQuery{"none", 1})));
    zmq::pollitem_t item{r.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 5000ms), 1);
    zmq::message_t m;
    ASSERT_TRUE(r.recv(m));
  }
  for (int i = 0; i < peers; ++i) {
    const auto side = i % 2 == 0 ? tp::proto::Side::buy : tp::proto::Side::sell;
    reqs[i].send(zmq::buffer(
        tp::proto::encode_to_string(tp::test::an_order(ids[i]).side(side).price_hint(1.085).build())));
  }
  int duplicates = 0;
  for (int i = 0; i < peers; ++i) {
    zmq::pollitem_t item{reqs[i].handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 5000ms), 1) << "peer " << i << " got no answer";
    zmq::message_t m;
    ASSERT_TRUE(reqs[i].recv(m));
    EXPECT_FALSE(m.more()) << "one frame per answer";
    auto reply =
        decoder.decode_order_reply(tp::proto::Bytes(static_cast<const std::byte*>(m.data()), m.size()));
    ASSERT_TRUE(reply.ok()) << reply.error().message();
    EXPECT_EQ(reply->client_order_id, ids[i]) << "peer " << i << " got another peer's answer";
    EXPECT_EQ(reply->status, tp::proto::OrderStatus::filled) << reply->reason;
    EXPECT_DOUBLE_EQ(reply->fill_price, i % 2 == 0 || i == 1 ? 1.0852 : 1.0850) << "peer " << i;
    duplicates += reply->duplicate ? 1 : 0;
  }
  EXPECT_EQ(duplicates, 1) << "the second copy of P-0 is a duplicate";

  gw.terminate();
  ASSERT_EQ(gw.wait_exit(5000ms), std::optional<int>(0));
  auto journal = read_text(dir.file("sim.journal"));
  for (int i = 0; i < peers; ++i) {
    if (i == 1) continue;
    EXPECT_EQ(count_lines_with(journal, " " + ids[i] + " "), 1) << ids[i] << "\n" << journal;
  }
  auto stats = this->stats();
  EXPECT_EQ(json_number(stats, "submitted"), peers - 1) << stats;
  EXPECT_EQ(json_number(stats, "reports"), peers - 1) << stats;
}

TEST_F(DllGatewayProcess, BadPluginStopsStartWithOneClearLineAndExitCode1) {
  auto a = args();
  a[4] = FAKE_ABI999_PATH;  // --plugin value
  Child gw(a, {.stderr_path = dir.file("stderr.txt")});
  ASSERT_TRUE(gw.started());
  EXPECT_EQ(gw.wait_exit(10000ms), std::optional<int>(1));
  auto err = read_text(dir.file("stderr.txt"));
  EXPECT_EQ(count_lines_with(
                err, std::string(FAKE_ABI999_PATH) + ": ABI version 999, this dll_gateway takes 1 to 3"),
            1)
      << err;

  a[4] = dir.file("missing.so");
  Child missing(a, {.stderr_path = dir.file("stderr_missing.txt")});
  EXPECT_EQ(missing.wait_exit(10000ms), std::optional<int>(1));
  err = read_text(dir.file("stderr_missing.txt"));
  EXPECT_EQ(count_lines_with(err, "broker plugin " + dir.file("missing.so") + ": cannot load"), 1) << err;
}

TEST_F(DllGatewayProcess, HelpWorksWithoutConfig) {
  Child gw({DLL_GATEWAY_BIN, "--help"}, {.stderr_path = dir.file("stderr.txt")});
  ASSERT_TRUE(gw.started());
  EXPECT_EQ(gw.wait_exit(10000ms), std::optional<int>(0));
}
