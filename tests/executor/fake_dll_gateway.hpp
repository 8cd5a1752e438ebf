// The test's side of an ExecutorNode under test, shared by the node's socket
// tests: its config, dll_gateway as a REP on endpoints.orders that answers
// what the fake broker has nothing of (ReportQuery, OpenOrdersQuery: no
// report stored, no order open) and hands every other request to the test,
// and the signals a strategy would send.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/zmq_util.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"
#include "test_support/temp_dir.hpp"

namespace tp::test {

inline constexpr std::chrono::milliseconds node_wait_limit{5000};

inline bool readable(zmq::socket_t& s, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, timeout) > 0;
}

// A node's config over ipc:// endpoints in `dir`, its run dir inside, orders
// timing out after 300 ms with two retries, stats every `stats_ms`.
inline Config node_config(const TempDir& dir, int stats_ms) {
  Config c;
  c.run.dir = dir.file("run");
  c.run.stats_interval_ms = stats_ms;
  c.endpoints.signals = dir.ipc("signals");
  c.endpoints.order_events = dir.ipc("events");
  c.endpoints.orders = dir.ipc("orders");
  c.endpoints.dead_letters = dir.ipc("dead");
  c.executor.order_timeout_ms = 300;
  c.executor.order_retries = 2;
  return c;
}

// A signal of strategy "sma" instance 1, living a minute.
inline proto::TradingSignal make_signal(const std::string& id, const std::string& instrument = "EURUSD",
                                        proto::Side side = proto::Side::buy, double quantity = 1000) {
  proto::TradingSignal s;
  s.signal_id = id;
  s.strategy = "sma";
  s.instance = 1;
  s.instrument = instrument;
  s.action = side;
  s.quantity = quantity;
  s.trigger_price = instrument == "USDJPY" ? 151.2 : 1.085;
  s.confidence = 0.5;
  s.created_ts_ns = wall_ns();
  s.expires_ts_ns = s.created_ts_ns + 60'000 * ns_per_ms;
  s.causation_ts_ns = s.created_ts_ns - 1000;
  return s;
}

class FakeDllGateway {
 public:
  FakeDllGateway(zmq::context_t& ctx, const std::string& endpoint)
      : socket(make_socket(ctx, zmq::socket_type::rep)) {
    bind(socket, endpoint);
  }

  // Whether a request the test must answer came within `limit` (it stays
  // for next()).
  bool ready(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pending_) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (!readable(socket, std::max(left, std::chrono::milliseconds(0)))) return false;
      zmq::message_t m;
      if (!socket.recv(m, zmq::recv_flags::dontwait)) continue;
      auto type = decoder_.peek_type(bytes_of(m));
      if (type && (type.value() == proto::MsgType::report_query ||
                   type.value() == proto::MsgType::open_orders_query)) {
        ++report_queries;
        proto::ReportBatch none;
        none.stream = "test-stream";
        none.complete = true;
        send(none);
        continue;
      }
      pending_ = std::move(m);
    }
    return true;
  }
  // The next such request, taken (nullopt: none within `limit`).
  std::optional<zmq::message_t> next(std::chrono::milliseconds limit = node_wait_limit) {
    if (!ready(limit)) return std::nullopt;
    return std::exchange(pending_, std::nullopt);
  }

  template <class Message>
  void send(const Message& m) {
    socket.send(zmq::buffer(proto::encode_to_string(m)));
  }

  // Answers a start-up position query with `positions` (0 for the rest);
  // false when `m` is not one.
  bool answer_position(const zmq::message_t& m) {
    auto q = decoder_.decode_position_query(bytes_of(m));
    if (!q) return false;
    proto::PositionReply reply;
    reply.instrument = q->instrument;
    reply.known = true;
    reply.quantity = positions.contains(q->instrument) ? positions[q->instrument] : 0;
    send(reply);
    return true;
  }
  // At start the node asks for each of its `instruments`' positions.
  void answer_position_check(std::size_t instruments) {
    for (std::size_t i = 0; i < instruments; ++i) {
      auto m = next();
      ASSERT_TRUE(m.has_value()) << "position query " << i;
      ASSERT_TRUE(answer_position(*m)) << "not a position query";
    }
  }

  // Answers the next OrderRequest FILLED at `price`; the request.
  std::optional<proto::OrderRequest> fill_next(double price) {
    auto m = next();
    if (!m) return std::nullopt;
    auto req = decoder_.decode_order_request(bytes_of(*m));
    proto::OrderReply reply;
    reply.client_order_id = req ? req->client_order_id : "bad";
    reply.order_id = "B-" + reply.client_order_id;
    reply.status = proto::OrderStatus::filled;
    reply.filled_quantity = req ? req->quantity : 0;
    reply.fill_price = price;
    send(reply);
    if (!req) return std::nullopt;
    return std::move(req).value();
  }
  // Answers the next request, an order or a cancel, with `status` for its
  // order; the request.
  std::optional<zmq::message_t> answer_next(proto::OrderStatus status, double filled = 0, double price = 0) {
    auto m = next();
    if (!m) return std::nullopt;
    std::string id = "bad";
    if (auto req = decoder_.decode_order_request(bytes_of(*m))) {
      id = req->client_order_id;
    } else if (auto c = decoder_.decode_order_cancel(bytes_of(*m))) {
      id = c->client_order_id;
    }
    proto::OrderReply reply;
    reply.client_order_id = id;
    reply.order_id = "B-" + id;
    reply.status = status;
    reply.filled_quantity = filled;
    reply.fill_price = price;
    send(reply);
    return m;
  }

  zmq::socket_t socket;
  std::map<std::string, double> positions;  // the broker's, for the start-up check
  int report_queries = 0;                   // ReportQuery and OpenOrdersQuery answered

 private:
  std::optional<zmq::message_t> pending_;  // read by ready(), not yet taken
  proto::Decoder decoder_;
};

}  // namespace tp::test
