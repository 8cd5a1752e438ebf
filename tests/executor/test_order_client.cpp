// OrderClient's Lazy Pirate behaviour against a test server on ipc://. The
// server is a ROUTER playing REP, so that it can leave a request unanswered
// and still serve the next one.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/zmq_util.hpp"
#include "executor/order_client.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

tp::proto::OrderRequest make_request() {
  tp::proto::OrderRequest r;
  r.client_order_id = "C-sma.0.1.7";
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

  void serve(const std::vector<std::string>& plan) {
    tp::proto::Decoder dec;
    tp::proto::Encoder enc;
    for (const auto& answer_id : plan) {
      zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) == 0) return;  // bounded
      std::vector<zmq::message_t> frames;
      std::size_t total = 0;
      if (!tp::recv_message(router, frames, 3, total) || total != 3) return;
      auto req = dec.decode_order_request(tp::bytes_of(frames[2]));
      seen.push_back(req ? req->client_order_id : "<bad>");
      if (answer_id.empty()) continue;  // drop it: the client must time out
      tp::proto::OrderReply reply;
      reply.client_order_id = answer_id;
      reply.order_id = "B-1";
      reply.status = tp::proto::OrderStatus::filled;
      reply.filled_quantity = req->quantity;
      reply.fill_price = 1.0805;
      auto payload = enc.encode(reply);
      router.send(frames[0], zmq::send_flags::sndmore);
      router.send(zmq::message_t(), zmq::send_flags::sndmore);
      router.send(zmq::const_buffer(payload.data(), payload.size()));
    }
  }
};

}  // namespace

TEST(OrderClient, RetriesWithTheSameIdAfterADroppedRequest) {
  tp::test::TempDir dir;
  zmq::context_t ctx(1);
  const auto ep = dir.ipc("orders");
  TestBroker broker{tp::make_socket(ctx, zmq::socket_type::router), {}};
  tp::bind(broker.router, ep);
  std::thread server([&] { broker.serve({"", "C-sma.0.1.7"}); });

  OrderClient client(ctx, ep, {.timeout_ms = 200, .retries = 3});
  // start() returns once the first attempt is out; finish() waits and retries.
  client.start(make_request());
  const auto seen_after_start = client.retries();
  auto reply = client.finish();
  server.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(reply->status, tp::proto::OrderStatus::filled);
  EXPECT_DOUBLE_EQ(reply->filled_quantity, 1000);
  ASSERT_EQ(broker.seen.size(), 2u);
  EXPECT_EQ(broker.seen[0], "C-sma.0.1.7");
  EXPECT_EQ(broker.seen[1], "C-sma.0.1.7");
  EXPECT_EQ(client.retries(), 1u);
  EXPECT_EQ(seen_after_start, 0u) << "start() makes one attempt and does not wait";
}

TEST(OrderClient, RefusesAReplyForAnotherOrderAndRetries) {
  tp::test::TempDir dir;
  zmq::context_t ctx(1);
  const auto ep = dir.ipc("orders");
  TestBroker broker{tp::make_socket(ctx, zmq::socket_type::router), {}};
  tp::bind(broker.router, ep);
  std::thread server([&] { broker.serve({"C-someone-else", "C-sma.0.1.7"}); });

  OrderClient client(ctx, ep, {.timeout_ms = 500, .retries = 2});
  auto reply = client.request(make_request());
  server.join();

  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->client_order_id, "C-sma.0.1.7");
  EXPECT_EQ(client.bad_replies(), 1u);
  EXPECT_EQ(broker.seen.size(), 2u);
}

TEST(OrderClient, GivesUpAfterTheConfiguredRetries) {
  tp::test::TempDir dir;
  zmq::context_t ctx(1);
  const auto ep = dir.ipc("orders");
  TestBroker broker{tp::make_socket(ctx, zmq::socket_type::router), {}};
  tp::bind(broker.router, ep);
  std::thread server([&] { broker.serve({"", "", ""}); });

  OrderClient client(ctx, ep, {.timeout_ms = 100, .retries = 2, .backoff_ms = 5});
  const auto start = tp::monotonic_ns();
  auto reply = client.request(make_request());
  const auto took_ms = (tp::monotonic_ns() - start) / tp::ns_per_ms;
  server.join();

  EXPECT_FALSE(reply.has_value());
  EXPECT_EQ(client.retries(), 2u);
  EXPECT_EQ(broker.seen.size(), 3u);  // every attempt carried the same id
  for (const auto& id : broker.seen) EXPECT_EQ(id, "C-sma.0.1.7");
  EXPECT_GE(took_ms, 300);
  EXPECT_LT(took_ms, 3000);
}

TEST(OrderClient, AHoldGivesTheRequestUpInsteadOfSendingItAgain) {
  tp::test::TempDir dir;
  zmq::context_t ctx(1);
  const auto ep = dir.ipc("orders");
  TestBroker broker{tp::make_socket(ctx, zmq::socket_type::router), {}};
  tp::bind(broker.router, ep);
  // Drops the first request; would answer a resend, were one made.
  std::thread server([&] { broker.serve({"", "C-sma.0.1.7"}); });

  bool halted = false;
  OrderClient client(ctx, ep, {.timeout_ms = 200, .retries = 3, .hold_retries = [&] { return halted; }});
  client.start(make_request());
  halted = true;  // a HALT while the first attempt waits
  auto reply = client.finish();
  // The server still waits for a second request: a query for the same id
  // (what reconciliation does next) would be answered; here it is ended.
  tp::proto::OrderRequest unblock = make_request();
  unblock.client_order_id = "C-unblock";
  OrderClient other(ctx, ep, {.timeout_ms = 200, .retries = 0});
  (void)other.request(unblock);
  server.join();

  EXPECT_FALSE(reply.has_value()) << "given up unanswered, to be reconciled by query";
  EXPECT_EQ(client.retries(), 0u);
  ASSERT_EQ(broker.seen.size(), 2u);
  EXPECT_EQ(broker.seen[0], "C-sma.0.1.7");
  EXPECT_EQ(broker.seen[1], "C-unblock") << "the held request was not sent again";
}
