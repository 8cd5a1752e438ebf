// OrderClient's and OrderPipeline's Lazy Pirate behaviour against a test
// server on ipc://. The server is a ROUTER playing REP, as dll_gateway does,
// so that it can leave a request unanswered and still serve the next one.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/zmq_util.hpp"
#include "executor/order_client.hpp"
#include "executor/order_pipeline.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

tp::proto::OrderRequest make_request(const std::string& id = "C-sma.0.1.7") {
  tp::proto::OrderRequest r;
  r.client_order_id = id;
  r.signal_id = "sma.0.1.7";
  r.instrument = "EURUSD";
  r.quantity = 1000;
  r.price_hint = 1.08;
  return r;
}

// Serves `plan.size()` requests: for each, plan[i] says whether to answer and
// with which client order id ("" = ignore the request). Records the ids seen.
struct TestBroker {
  zmq::socket_t router;
  std::vector<std::string> seen;

  std::vector<std::string> peers;  // the routing id each request came from
  std::vector<zmq::message_t> frames;

  void serve(const std::vector<std::string>& plan) {
    for (const auto& answer_id : plan) {
      if (!read()) return;
      if (!answer_id.empty()) answer(answer_id);  // else drop it: the client must time out
    }
  }
  // The next request, within 5 s.
  bool read() {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) == 0) return false;
    std::size_t total = 0;
    if (!tp::recv_message(router, frames, 3, total) || total != 3) return false;
    tp::proto::Decoder dec;
    auto req = dec.decode_order_request(tp::bytes_of(frames[2]));
    seen.push_back(req ? req->client_order_id : "<bad>");
    peers.emplace_back(static_cast<const char*>(frames[0].data()), frames[0].size());
    return true;
  }
  // Answers the request read `back` requests ago, filled, under `id`.
  void answer(const std::string& id, std::size_t back = 0) {
    tp::proto::OrderReply reply;
    reply.client_order_id = id;
    reply.order_id = "B-" + id;
    reply.status = tp::proto::OrderStatus::filled;
    reply.filled_quantity = 1000;
    reply.fill_price = 1.0805;
    tp::proto::Encoder enc;
    auto payload = enc.encode(reply);
    const auto& peer = peers[peers.size() - 1 - back];
    router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    router.send(zmq::message_t(), zmq::send_flags::sndmore);
    router.send(zmq::const_buffer(payload.data(), payload.size()));
  }
};

// A test's ipc endpoint, the context its sockets share and the fake
// dll_gateway, bound there unless the test binds it later.
struct OrderSocket {
  explicit OrderSocket(bool bound = true) {
    if (bound) tp::bind(broker.router, ep);
  }
  tp::test::TempDir dir;
  zmq::context_t ctx{1};
  std::string ep = dir.ipc("orders");
  TestBroker broker{tp::make_socket(ctx, zmq::socket_type::router), {}};
};

// Waits until nothing is in flight; the settled orders by slot.
std::vector<OrderPipeline::Settled> wait_all(OrderPipeline& p) {
  std::vector<OrderPipeline::Settled> settled;
  while (p.in_flight() > 0) p.wait(settled);
  std::sort(settled.begin(), settled.end(), [](const auto& a, const auto& b) { return a.slot < b.slot; });
  return settled;
}

}  // namespace

TEST(OrderClient, RetriesWithTheSameIdAfterADroppedRequest) {
  OrderSocket s;
  std::thread server([&] { s.broker.serve({"", "C-sma.0.1.7"}); });

  OrderClient client(s.ctx, s.ep, {.timeout_ms = 200, .retries = 3});
  auto reply = client.request(make_request());
  server.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(reply->status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(reply->filled_quantity, 1000);
  ASSERT_EQ(s.broker.seen.size(), 2u);
  EXPECT_EQ(s.broker.seen[0], "C-sma.0.1.7");
  EXPECT_EQ(s.broker.seen[1], "C-sma.0.1.7");
  EXPECT_EQ(client.retries(), 1u);
}

TEST(OrderClient, RefusesAReplyForAnotherOrderAndRetries) {
  OrderSocket s;
  std::thread server([&] { s.broker.serve({"C-someone-else", "C-sma.0.1.7"}); });

  OrderClient client(s.ctx, s.ep, {.timeout_ms = 500, .retries = 2});
  auto reply = client.request(make_request());
  server.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(client.bad_replies(), 1u);
  EXPECT_EQ(s.broker.seen.size(), 2u);
}

TEST(OrderClient, GivesUpAfterTheConfiguredRetries) {
  OrderSocket s;
  std::thread server([&] { s.broker.serve({"", "", ""}); });

  OrderClient client(s.ctx, s.ep, {.timeout_ms = 100, .retries = 2, .backoff_ms = 5});
  const auto start = tp::monotonic_ns();
  auto reply = client.request(make_request());
  const auto took_ms = (tp::monotonic_ns() - start) / tp::ns_per_ms;
  server.join();

  EXPECT_FALSE(reply.has_value());
  EXPECT_EQ(client.retries(), 2u);
  EXPECT_EQ(s.broker.seen.size(), 3u);  // every attempt carried the same id
  for (const auto& id : s.broker.seen) EXPECT_EQ(id, "C-sma.0.1.7");
  EXPECT_GE(took_ms, 300);
  EXPECT_LT(took_ms, 3000);
}

TEST(OrderPipeline, RetriesWithTheSameIdAfterADroppedRequest) {
  OrderSocket s;
  std::thread server([&] { s.broker.serve({"", "C-sma.0.1.7"}); });

  OrderPipeline pipeline(s.ctx, s.ep, {.timeout_ms = 200, .retries = 3}, 4);
  // start() returns once the first attempt is out; wait() waits and retries.
  const auto slot = pipeline.start(make_request());
  EXPECT_EQ(pipeline.retries(), 0u) << "start() makes one attempt and does not wait";
  const auto settled = wait_all(pipeline);
  server.join();

  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].slot, slot);
  ASSERT_TRUE(settled[0].reply.has_value());
  EXPECT_EQ(settled[0].reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(s.broker.seen, (std::vector<std::string>{"C-sma.0.1.7", "C-sma.0.1.7"}));
  EXPECT_EQ(pipeline.retries(), 1u);
  EXPECT_TRUE(pipeline.slot_free());
}

TEST(OrderPipeline, OrdersInFlightOnOneConnectionEachGetTheirOwnAnswerInAnyOrder) {
  OrderSocket s;
  const std::vector<std::string> ids{"C-a", "C-b", "C-c"};
  std::thread server([&] {
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (!s.broker.read()) return;
    for (std::size_t back = 0; back < ids.size(); ++back)
      s.broker.answer(s.broker.seen[ids.size() - 1 - back], back);
  });

  OrderPipeline pipeline(s.ctx, s.ep, {.timeout_ms = 2000, .retries = 0}, 3);
  for (const auto& id : ids) pipeline.start(make_request(id));
  EXPECT_FALSE(pipeline.slot_free());
  const auto settled = wait_all(pipeline);
  server.join();

  ASSERT_EQ(settled.size(), 3u);
  for (std::size_t slot = 0; slot < 3; ++slot) {
    ASSERT_TRUE(settled[slot].reply.has_value()) << slot;
    EXPECT_EQ(settled[slot].reply->client_order_id, ids[slot]);
    EXPECT_EQ(settled[slot].reply->order_id, "B-" + ids[slot]);
  }
  ASSERT_EQ(s.broker.peers.size(), 3u);
  EXPECT_EQ(s.broker.peers[0], s.broker.peers[1]);
  EXPECT_EQ(s.broker.peers[1], s.broker.peers[2]) << "one connection for every order";
  EXPECT_EQ(pipeline.retries(), 0u);
}

TEST(OrderPipeline, AnEarlierAttemptsLateAnswerIsTheOrdersAndOneForNoOrderIsDropped) {
  OrderSocket s;
  std::thread server([&] {
    // The first attempt is answered only after the client sent the second:
    // that answer settles the order; the second copy's, sent after it, then
    // finds no order in flight.
    if (!s.broker.read() || !s.broker.read()) return;
    s.broker.answer("C-gone");  // an order given up long ago
    s.broker.answer("C-sma.0.1.7", 1);
    s.broker.answer("C-sma.0.1.7");
  });

  OrderPipeline pipeline(s.ctx, s.ep, {.timeout_ms = 150, .retries = 3, .backoff_ms = 1}, 2);
  pipeline.start(make_request());
  const auto settled = wait_all(pipeline);
  server.join();

  ASSERT_EQ(settled.size(), 1u);
  ASSERT_TRUE(settled[0].reply.has_value());
  EXPECT_EQ(settled[0].reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(pipeline.retries(), 1u);
  // The third answer arrives after the order settled: read by the next
  // wait, it is counted, never handed out.
  pipeline.start(make_request("C-next"));
  std::vector<OrderPipeline::Settled> none;
  const auto until = tp::monotonic_ns() + 2'000 * tp::ns_per_ms;
  while (pipeline.late_replies() < 2 && tp::monotonic_ns() < until) {
    pipeline.wait(none);  // C-next is never answered: it settles empty after its attempts
    if (pipeline.in_flight() == 0) break;
  }
  EXPECT_EQ(pipeline.late_replies(), 2u) << "C-gone and the second copy's answer";
  for (const auto& given_up : none) EXPECT_FALSE(given_up.reply.has_value());
}

TEST(OrderPipeline, NothingIsQueuedWhileDllGatewayIsAway) {
  OrderSocket s{/*bound=*/false};
  // Nobody listens: the attempt cannot be sent, and the order is given up.
  // (An attempt waits 700 ms for the connection: the redial after refused
  // dials comes within 500 ms plus jitter.)
  OrderPipeline pipeline(s.ctx, s.ep, {.timeout_ms = 700, .retries = 0}, 2);
  pipeline.start(make_request("C-given-up"));
  auto settled = wait_all(pipeline);
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_FALSE(settled[0].reply.has_value());

  // dll_gateway comes: it gets the next order only, never a queued copy of
  // the given-up one (which a HALT may have decided must not be sent).
  tp::bind(s.broker.router, s.ep);
  std::thread server([&] { s.broker.serve({"C-next"}); });
  pipeline.start(make_request("C-next"));
  settled = wait_all(pipeline);
  server.join();
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_TRUE(settled[0].reply.has_value());
  EXPECT_EQ(s.broker.seen, std::vector<std::string>{"C-next"});
}

TEST(OrderPipeline, AHoldGivesTheOrderUpInsteadOfSendingItAgain) {
  OrderSocket s;
  // Drops the first request; would answer a resend, were one made.
  std::thread server([&] { s.broker.serve({"", "C-sma.0.1.7"}); });

  bool halted = false;
  OrderPipeline pipeline(s.ctx, s.ep,
                         {.timeout_ms = 200, .retries = 3, .hold_retries = [&] { return halted; }}, 2);
  pipeline.start(make_request());
  halted = true;  // a HALT while the first attempt waits
  const auto settled = wait_all(pipeline);
  // The server still waits for a second request: a query for the same id
  // (what reconciliation does next) would be answered; here it is ended.
  OrderClient other(s.ctx, s.ep, {.timeout_ms = 200, .retries = 0});
  (void)other.request(make_request("C-unblock"));
  server.join();

  ASSERT_EQ(settled.size(), 1u);
  EXPECT_FALSE(settled[0].reply.has_value()) << "given up unanswered, to be reconciled by query";
  EXPECT_EQ(pipeline.retries(), 0u);
  EXPECT_EQ(s.broker.seen, (std::vector<std::string>{"C-sma.0.1.7", "C-unblock"}))
      << "the held order was not sent again";
}

TEST(OrderPipeline, AWaitAlsoReturnsWhenTheOtherSocketIsReadableWithNothingSettled) {
  OrderSocket s;
  auto signals_in = tp::make_socket(s.ctx, zmq::socket_type::pull);
  tp::bind(signals_in, s.dir.ipc("signals"));
  auto signals_out = tp::make_socket(s.ctx, zmq::socket_type::push);
  tp::connect(signals_out, s.dir.ipc("signals"));

  OrderPipeline pipeline(s.ctx, s.ep, {.timeout_ms = 5000, .retries = 0}, 2);
  pipeline.start(make_request());
  // The fake dll_gateway keeps the order unanswered; a signal comes once it
  // has it.
  bool read = false;
  std::thread server([&] {
    read = s.broker.read();
    signals_out.send(zmq::str_buffer("a signal"));
  });
  std::vector<OrderPipeline::Settled> settled;
  pipeline.wait(settled, &signals_in);
  server.join();
  ASSERT_TRUE(read);
  EXPECT_TRUE(settled.empty());
  EXPECT_EQ(pipeline.in_flight(), 1u) << "still out, its answer awaited";

  s.broker.answer("C-sma.0.1.7");
  settled = wait_all(pipeline);
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_TRUE(settled[0].reply.has_value());
}
