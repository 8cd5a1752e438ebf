// ExecutorNode over real sockets (ipc:// in a temporary directory), with the
// test playing strategy (PUSH, SUB), dll_gateway (REP/ROUTER) and the
// dead-letter sink (PULL). The node runs its loop on a second thread. Its
// timers (reconcile every 1 s, the 5 s liveness probe) run on the injected
// clock's monotonic time: the tests that drive them move a SteppedClock.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/clock.hpp"
#include "common/dead_letter.hpp"
#include "common/zmq_util.hpp"
#include "executor/executor_node.hpp"
#include "fake_dll_gateway.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

using namespace tp::executor;
using namespace std::chrono_literals;
using tp::test::make_signal;
using tp::test::readable;

namespace {

constexpr auto wait_limit = 5000ms;

tp::Config make_config(const tp::test::TempDir& dir) {
  tp::Config c = tp::test::node_config(dir, 100);
  // One order at a time: the fake dll_gateway below is a REP, and these
  // tests read the orders in the order they were sent (several in flight:
  // SeveralOrdersAreInFlightAtOnce...).
  c.executor.orders_in_flight = 1;
  return c;
}

// A clock the test moves while the node's loop thread reads it (FakeClock
// is not meant to be shared between threads). Wall time starts at the real
// time, so that signals stamped with tp::wall_ns() are current.
class SteppedClock final : public tp::Clock {
 public:
  std::int64_t now_ns() const override { return wall_.load(); }
  std::int64_t monotonic_ns() const override { return mono_.load(); }
  void advance_ms(std::int64_t ms) {
    wall_ += ms * tp::ns_per_ms;
    mono_ += ms * tp::ns_per_ms;
  }

 private:
  std::atomic<std::int64_t> wall_{tp::wall_ns()};
  std::atomic<std::int64_t> mono_{1'000'000'000};
};

// The test's side of the pipeline around one node.
struct Harness {
  explicit Harness(const tp::test::TempDir& dir) : config(make_config(dir)) {
    tp::bind(dead, config.endpoints.dead_letters);
  }

  // `answer_positions`: answer the start-up position check at once (it comes
  // first when no order is open).
  void start(bool answer_positions = true) {
    node = std::make_unique<ExecutorNode>(ctx, config, *node_clock);
    tp::connect(push, config.endpoints.signals);
    tp::connect(sub, config.endpoints.order_events);
    sub.set(zmq::sockopt::subscribe, "ORDER.");
    sub.set(zmq::sockopt::subscribe, "ACK.");
    loop = std::thread([this] { node->run(); });
    if (answer_positions) answer_position_check();
  }

  // At start the node asks dll_gateway for each configured instrument's
  // position; the fake broker holds none, like the node's empty book.
  void answer_position_check() { dll.answer_position_check(config.instruments.size()); }

  void stop() {
    if (node) node->stop();
    if (loop.joinable()) loop.join();
  }

  ~Harness() { stop(); }

  void push_bytes(std::string_view bytes) {
    push.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::none);
  }
  void push_signal(const tp::proto::TradingSignal& s) { push_bytes(tp::proto::encode_to_string(s)); }

  // Reads events until `want_ack`/`want_event` says yes or the time is up.
  bool wait_ack(const std::function<bool(const std::string&, const tp::proto::SignalAck&)>& want,
                std::chrono::milliseconds limit = wait_limit) {
    return wait(limit, want, nullptr);
  }
  bool wait_event(const std::function<bool(const std::string&, const tp::proto::OrderEvent&)>& want,
                  std::chrono::milliseconds limit = wait_limit) {
    return wait(limit, nullptr, want);
  }

  bool wait(std::chrono::milliseconds limit,
            const std::function<bool(const std::string&, const tp::proto::SignalAck&)>& want_ack,
            const std::function<bool(const std::string&, const tp::proto::OrderEvent&)>& want_event) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (!readable(sub, std::max(left, 1ms))) continue;
      std::vector<zmq::message_t> frames;
      std::size_t total = 0;
      if (!tp::recv_message(sub, frames, 2, total) || total != 2) continue;
      const std::string topic(tp::view_of(frames[0]));
      if (topic.starts_with("ACK.")) {
        auto ack = decoder.decode_signal_ack(tp::bytes_of(frames[1]));
        if (ack && want_ack && want_ack(topic, ack.value())) return true;
      } else {
        auto ev = decoder.decode_order_event(tp::bytes_of(frames[1]));
        if (ev && want_event && want_event(topic, ev.value())) return true;
      }
    }
    return false;
  }

  // The PUB/SUB subscription travels asynchronously: probe with a signal the
  // node rejects (unknown instrument) until its ack comes back. Every probe
  // after the first is, rightly, a duplicate at the node: tests subtract them.
  bool await_subscription() {
    auto probe = make_signal("probe", "ZZZ");
    for (int i = 0; i < 50; ++i) {
      push_signal(probe);
      probe_duplicates = static_cast<std::uint64_t>(i);
      if (wait_ack([](const std::string&, const tp::proto::SignalAck& a) { return a.signal_id == "probe"; },
                   100ms))
        return true;
    }
    return false;
  }

  // Returns once the loop has finished the iteration in which it handled a
  // signal pushed now: that iteration's timers have run. Two round trips,
  // because the first ack goes out before its iteration's timers run.
  bool sync() {
    for (int i = 0; i < 2; ++i) {
      const auto s = make_signal("sync." + std::to_string(++syncs), "ZZZ");
      push_signal(s);
      if (!wait_ack(
              [&](const std::string&, const tp::proto::SignalAck& a) { return a.signal_id == s.signal_id; }))
        return false;
    }
    return true;
  }

  std::optional<tp::proto::DeadLetter> wait_dead_letter(const std::string& reason) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!readable(dead, 100ms)) continue;
      zmq::message_t m;
      if (!dead.recv(m)) continue;
      auto dl = decoder.decode_dead_letter(tp::bytes_of(m));
      if (dl && dl->reason == reason) return std::move(dl).value();
    }
    return std::nullopt;
  }

  tp::Config config;
  tp::SystemClock clock;
  SteppedClock stepped;
  const tp::Clock* node_clock = &clock;  // &stepped for the timer tests
  int syncs = 0;
  zmq::context_t ctx{1};
  zmq::socket_t dead =
      tp::make_socket(ctx, zmq::socket_type::pull,
                      {.max_msg_size = static_cast<std::int64_t>(tp::proto::max_dead_letter_bytes)});
  tp::test::FakeDllGateway dll{ctx, config.endpoints.orders};
  zmq::socket_t push = tp::make_socket(ctx, zmq::socket_type::push);
  zmq::socket_t sub = tp::make_socket(ctx, zmq::socket_type::sub);
  tp::proto::Decoder decoder{};
  std::unique_ptr<ExecutorNode> node;
  std::thread loop;
  std::uint64_t probe_duplicates = 0;  // see await_subscription()
};

}  // namespace

TEST(ExecutorNode, AcceptsFillsDedupesRejectsAndDeadLetters) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());
  ASSERT_TRUE(h.wait_dead_letter("unknown_instrument").has_value());

  // A valid signal: ACK ACCEPTED, one OrderRequest, an ORDER.EURUSD FILLED event.
  auto s1 = make_signal("sma.1.100.1");
  h.push_signal(s1);
  auto req = h.dll.fill_next(1.0851);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->client_order_id, "C-sma.1.100.1");
  EXPECT_EQ(req->signal_id, s1.signal_id);
  EXPECT_DOUBLE_EQ(req->quantity, 1000);
  EXPECT_DOUBLE_EQ(req->price_hint, 1.085);
  EXPECT_TRUE(h.wait_ack([&](const std::string& topic, const tp::proto::SignalAck& a) {
    return topic == "ACK.sma.1" && a.signal_id == s1.signal_id && a.status == tp::proto::AckStatus::accepted;
  }));
  EXPECT_TRUE(h.wait_event([&](const std::string& topic, const tp::proto::OrderEvent& e) {
    return topic == "ORDER.EURUSD" && e.client_order_id == "C-sma.1.100.1" &&
           e.status == tp::proto::OrderStatus::filled && e.filled_quantity == 1000 &&
           e.fill_price == 1.0851 && e.order_id == "B-C-sma.1.100.1" &&
           e.causation_ts_ns == s1.causation_ts_ns;
  }));

  // The same signal again: DUPLICATE, and nothing reaches the broker.
  h.push_signal(s1);
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == s1.signal_id && a.status == tp::proto::AckStatus::duplicate;
  }));

  // An expired signal: REJECTED with the reason, and dead-lettered.
  auto old = make_signal("sma.1.100.2");
  old.created_ts_ns = tp::wall_ns() - 2000 * tp::ns_per_ms;
  old.expires_ts_ns = old.created_ts_ns + 1000 * tp::ns_per_ms;
  h.push_signal(old);
  EXPECT_TRUE(h.wait_ack([&](const std::string& topic, const tp::proto::SignalAck& a) {
    return topic == "ACK.sma.1" && a.signal_id == old.signal_id &&
           a.status == tp::proto::AckStatus::rejected && a.reason == "expired";
  }));
  auto expired_dl = h.wait_dead_letter("expired");
  ASSERT_TRUE(expired_dl.has_value());
  EXPECT_EQ(expired_dl->source, "executor");
  EXPECT_EQ(expired_dl->original, tp::proto::encode_to_string(old));
  // The node is single-threaded and has answered both: no second request came.
  EXPECT_FALSE(h.dll.ready(0ms));

  // Garbage: a dead letter with the decoder's reason and the bytes verbatim.
  const std::string garbage = "\xc1 not msgpack";
  h.push_bytes(garbage);
  auto dl = h.wait_dead_letter("malformed");
  ASSERT_TRUE(dl.has_value());
  EXPECT_EQ(dl->original, garbage);

  // ...and the node still serves the next valid signal.
  auto s2 = make_signal("sma.1.100.3");
  h.push_signal(s2);
  auto req2 = h.dll.fill_next(1.0861);
  ASSERT_TRUE(req2.has_value());
  EXPECT_EQ(req2->client_order_id, "C-sma.1.100.3");
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == s2.signal_id && a.status == tp::proto::AckStatus::accepted;
  }));

  h.stop();
  const auto& c = h.node->counters();
  EXPECT_EQ(c.signals_accepted, 2u);
  EXPECT_EQ(c.fills, 2u);
  EXPECT_EQ(c.orders_sent, 2u);
  EXPECT_EQ(c.duplicates - h.probe_duplicates, 1u);
  EXPECT_EQ(c.rejected.at("expired"), 1u);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 2000);
  EXPECT_DOUBLE_EQ(h.node->positions().find("EURUSD")->avg_price, (1.0851 + 1.0861) / 2);

  std::ifstream in(h.config.run.dir + "/executor.stats.json");
  std::stringstream stats;
  stats << in.rdbuf();
  for (const char* key :
       {"\"program\":\"executor\"", "\"signals_received\"", "\"duplicates\"", "\"rejected\":{",
        "\"expired\":1", "\"orders_sent\":2", "\"order_retries\"", "\"order_timeouts\":0", "\"fills\":2",
        "\"partial_fills\":0", "\"broker_rejects\":0", "\"positions\":{\"EURUSD\":{",
        "\"latency_tick_to_fill_us\":{", "\"count\":2", "\"dead_letters\"", "\"orders_unknown\":0"}) {
    EXPECT_NE(stats.str().find(key), std::string::npos) << key << " in " << stats.str();
  }

  // A new node on the same database: positions rebuilt, the id still known.
  h.node.reset();
  ExecutorNode again(h.ctx, h.config, h.clock);
  EXPECT_DOUBLE_EQ(again.positions().position("EURUSD"), 2000);
}

TEST(ExecutorNode, ReconcilesAnIntentTheBrokerNeverSaw) {
  tp::test::TempDir dir;
  auto config = make_config(dir);
  const auto db = config.run.dir + "/executor.db";
  auto s = make_signal("sma.1.7.1");
  {
    ExecutorStore store(db, tp::wall_ns());
    OrderRecord o;
    o.client_order_id = "C-sma.1.7.1";
    o.signal_id = s.signal_id;
    o.instrument = "EURUSD";
    o.side = tp::proto::Side::sell;
    o.quantity = 500;
    o.price_hint = 1.08;
    ASSERT_TRUE(store.record_accepted(s, o, tp::wall_ns()));
  }  // as if the process had died right after the intent commit

  zmq::context_t ctx(1);
  tp::test::FakeDllGateway dll(ctx, config.endpoints.orders);
  tp::SystemClock clock;
  ExecutorNode node(ctx, config, clock);
  std::thread loop([&] { node.run(); });

  tp::proto::Decoder dec;
  std::vector<std::string> kinds;
  // 1: the query, answered UNKNOWN; 2: the request under the same id, FILLED.
  for (int i = 0; i < 2; ++i) {
    auto m = dll.next();
    ASSERT_TRUE(m);
    auto type = dec.peek_type(tp::bytes_of(*m));
    ASSERT_TRUE(type.ok());
    tp::proto::OrderReply reply;
    if (type.value() == tp::proto::MsgType::order_query) {
      auto q = dec.decode_order_query(tp::bytes_of(*m));
      kinds.push_back("query:" + q->client_order_id);
      reply.client_order_id = q->client_order_id;
      reply.status = tp::proto::OrderStatus::unknown;
    } else {
      auto r = dec.decode_order_request(tp::bytes_of(*m));
      kinds.push_back("request:" + r->client_order_id);
      reply.client_order_id = r->client_order_id;
      reply.order_id = "B-9";
      reply.status = tp::proto::OrderStatus::filled;
      reply.filled_quantity = r->quantity;
      reply.fill_price = 1.0799;
    }
    dll.send(reply);
  }
  // A stop would abandon an answer still on its way: wait until the loop
  // has recorded the fill (its stats file says so) before stopping.
  const bool filled = tp::test::wait_until(
      [&] {
        const auto stats = tp::test::read_json(config.run.dir + "/executor.stats.json");
        return stats && stats->value("fills", 0) == 1;
      },
      wait_limit);
  node.stop();
  loop.join();

  EXPECT_TRUE(filled);
  EXPECT_EQ(kinds, (std::vector<std::string>{"query:C-sma.1.7.1", "request:C-sma.1.7.1"}));
  EXPECT_DOUBLE_EQ(node.positions().position("EURUSD"), -500);
  EXPECT_EQ(node.counters().fills, 1u);
}

TEST(ExecutorNode, SignalsArrivingTogetherAreAcceptedOnceEachThenSent) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());

  // While the node waits for a's reply, b (twice) and c queue up: they are
  // accepted together on its next wakeup (the duplicate caught inside the batch).
  h.push_signal(make_signal("sma.1.300.1"));
  ASSERT_TRUE(h.dll.ready(wait_limit));
  auto b = make_signal("sma.1.300.2");
  h.push_signal(b);
  h.push_signal(b);
  h.push_signal(make_signal("sma.1.300.3"));
  std::vector<std::string> sent;
  for (int i = 0; i < 3; ++i) {
    auto req = h.dll.fill_next(1.085);
    ASSERT_TRUE(req.has_value()) << i;
    sent.push_back(req->client_order_id);
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"C-sma.1.300.1", "C-sma.1.300.2", "C-sma.1.300.3"}));
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == b.signal_id && a.status == tp::proto::AckStatus::duplicate;
  }));
  h.stop();
  // The counters, read after the loop ended, prove the duplicate sent nothing.
  EXPECT_EQ(h.node->counters().signals_accepted, 3u);
  EXPECT_EQ(h.node->counters().duplicates - h.probe_duplicates, 1u);
  EXPECT_EQ(h.node->counters().orders_sent, 3u);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 3000);
}

// With executor.orders_in_flight = 4, a batch's orders are at dll_gateway
// together: the fake dll_gateway (a ROUTER, as the real one) holds four
// requests before it answers any, answers them in the reverse order, and
// each answer is applied to its own order (its own price); the fifth order
// goes out once a slot is free, and every fill is in the books before the
// next batch is decided.
TEST(ExecutorNode, SeveralOrdersAreInFlightAtOnceAndEachAnswerIsAppliedToItsOwnOrder) {
  tp::test::TempDir dir;
  auto config = make_config(dir);
  config.executor.orders_in_flight = 4;
  config.executor.order_timeout_ms = 10'000;  // no retry while the test holds the answers
  tp::SystemClock clock;
  zmq::context_t ctx{1};
  auto router = tp::make_socket(ctx, zmq::socket_type::router);
  tp::bind(router, config.endpoints.orders);
  auto push = tp::make_socket(ctx, zmq::socket_type::push);
  auto sub = tp::make_socket(ctx, zmq::socket_type::sub);
  ExecutorNode node(ctx, config, clock);
  tp::connect(push, config.endpoints.signals);
  tp::connect(sub, config.endpoints.order_events);
  sub.set(zmq::sockopt::subscribe, "ORDER.");
  std::thread loop([&] { node.run(); });
  tp::proto::Decoder decoder;

  struct Request {
    std::string peer;
    tp::proto::OrderRequest order;
  };
  std::vector<Request> orders;
  std::set<std::string> peers;
  auto answer = [&](const std::string& peer, const std::string& payload) {
    router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    router.send(zmq::const_buffer(), zmq::send_flags::sndmore);
    router.send(zmq::buffer(payload));
  };
  // Serves every request but orders at once; keeps orders until `want` are held.
  auto serve_until = [&](std::size_t want, std::chrono::milliseconds limit = wait_limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (orders.size() < want && std::chrono::steady_clock::now() < deadline) {
      if (!readable(router, 50ms)) continue;
      std::vector<zmq::message_t> frames;
      std::size_t total = 0;
      if (!tp::recv_message(router, frames, 4, total) || total != 3) continue;
      const std::string peer(tp::view_of(frames[0]));
      const auto bytes = tp::bytes_of(frames[2]);
      auto type = decoder.peek_type(bytes);
      if (!type) continue;
      if (type.value() == tp::proto::MsgType::position_query) {
        auto q = decoder.decode_position_query(bytes);
        tp::proto::PositionReply reply;
        reply.instrument = q ? q->instrument : "";
        reply.known = true;
        answer(peer, tp::proto::encode_to_string(reply));
      } else if (type.value() == tp::proto::MsgType::order_request) {
        auto req = decoder.decode_order_request(bytes);
        if (req) orders.push_back({peer, std::move(req).value()});
        peers.insert(peer);
      } else {
        tp::proto::ReportBatch none;  // report and open-orders queries
        none.stream = "test-stream";
        none.complete = true;
        answer(peer, tp::proto::encode_to_string(none));
      }
    }
    return orders.size() >= want;
  };
  auto fill = [&](const Request& r) {
    tp::proto::OrderReply reply;
    reply.client_order_id = r.order.client_order_id;
    reply.order_id = "B-" + r.order.client_order_id;
    reply.status = tp::proto::OrderStatus::filled;
    reply.filled_quantity = r.order.quantity;
    // The signal's number as the price: an answer applied to another order shows.
    reply.fill_price =
        1.0 + std::stod(r.order.client_order_id.substr(r.order.client_order_id.rfind('.') + 1));
    answer(r.peer, tp::proto::encode_to_string(reply));
  };

  for (int i = 1; i <= 5; ++i)
    push.send(zmq::buffer(tp::proto::encode_to_string(make_signal("sma.1.500." + std::to_string(i)))));
  ASSERT_TRUE(serve_until(4)) << "four orders in flight at once";
  EXPECT_EQ(peers.size(), 1u) << "all on the one order socket (a DEALER)";
  EXPECT_FALSE(serve_until(5, 300ms)) << "a fifth while four are unanswered";
  for (int i = 3; i >= 0; --i) fill(orders[static_cast<std::size_t>(i)]);
  ASSERT_TRUE(serve_until(5)) << "the fifth once a slot is free";
  fill(orders[4]);

  std::map<std::string, double> prices;
  const auto deadline = std::chrono::steady_clock::now() + wait_limit;
  while (prices.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    if (!readable(sub, 50ms)) continue;
    std::vector<zmq::message_t> frames;
    std::size_t total = 0;
    if (!tp::recv_message(sub, frames, 2, total) || total != 2) continue;
    auto ev = decoder.decode_order_event(tp::bytes_of(frames[1]));
    if (ev && ev->status == tp::proto::OrderStatus::filled) prices[ev->client_order_id] = ev->fill_price;
  }
  node.stop();
  loop.join();
  ASSERT_EQ(prices.size(), 5u);
  for (int i = 1; i <= 5; ++i) EXPECT_DOUBLE_EQ(prices["C-sma.1.500." + std::to_string(i)], 1.0 + i) << i;
  EXPECT_EQ(node.counters().orders_sent, 5u);
  EXPECT_EQ(node.counters().fills, 5u);
  EXPECT_DOUBLE_EQ(node.positions().position("EURUSD"), 5000);
}

// Signals that come while an order is out are decided at once, not after
// its answer (a burst does not wait a round trip per batch), and their risk
// checks count it at its worst case: with max_position 2000 and one order
// of 1000 unanswered, a second order of 1000 is accepted and a third refused.
TEST(ExecutorNode, SignalsAreDecidedWhileAnOrderIsOutCountingItAtItsWorst) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.risk.max_position = 2000;
  h.config.executor.order_timeout_ms = 10'000;  // no retry while the test holds the answer
  h.start();
  ASSERT_TRUE(h.await_subscription());
  h.push_signal(make_signal("sma.1.600.0"));
  ASSERT_TRUE(h.dll.ready(wait_limit)) << "the first order is out";
  h.push_signal(make_signal("sma.1.600.a"));
  h.push_signal(make_signal("sma.1.600.b"));

  std::map<std::string, tp::proto::SignalAck> acks;
  ASSERT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    if (a.signal_id == "sma.1.600.a" || a.signal_id == "sma.1.600.b") acks[a.signal_id] = a;
    return acks.size() == 2;
  })) << "decided while the first order is unanswered";
  EXPECT_EQ(acks["sma.1.600.a"].status, tp::proto::AckStatus::accepted);
  EXPECT_EQ(acks["sma.1.600.b"].status, tp::proto::AckStatus::rejected);
  const auto refusal = h.wait_dead_letter("risk_rejected");
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->detail.find("exceeds max_position 2000"), std::string::npos) << refusal->detail;

  std::vector<std::string> sent;
  for (int i = 0; i < 2; ++i) {
    auto req = h.dll.fill_next(1.085);
    ASSERT_TRUE(req.has_value()) << i;
    sent.push_back(req->client_order_id);
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"C-sma.1.600.0", "C-sma.1.600.a"}));
  ASSERT_TRUE(h.wait_event([](const std::string&, const tp::proto::OrderEvent& e) {
    return e.client_order_id == "C-sma.1.600.a" && e.status == tp::proto::OrderStatus::filled;
  }));
  h.stop();
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 2000);
}

// The dead-letter queue holds DeadLetterSender::small_queue_letters small
// letters while no sink listens: the refusals past it are owed, not lost,
// and sent once the sink comes (before, they waited for the executor's next
// start or a reconnection after a lost one).
TEST(ExecutorNode, OutcomeLettersTheQueueCouldNotTakeAreSentOnceTheSinkComes) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.dead.close();  // no sink yet
  h.start();
  ASSERT_TRUE(h.await_subscription());
  const int n = tp::DeadLetterSender::small_queue_letters + 100;
  for (int i = 0; i < n; ++i) {
    auto s = make_signal("sma.1.700." + std::to_string(i));
    s.quantity = h.config.risk.max_order_quantity * 2;
    h.push_signal(s);
  }
  const std::string last = "sma.1.700." + std::to_string(n - 1);
  ASSERT_TRUE(
      h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) { return a.signal_id == last; }));
  // The stats tell an operator how many are owed (the queue holds the rest).
  std::uint64_t owed = 0;
  tp::test::wait_until(
      [&] {
        const auto stats = tp::test::read_json(h.config.run.dir + "/executor.stats.json");
        owed = stats ? stats->value("dead_letters_owed", std::uint64_t{0}) : 0;
        return owed >= 100;
      },
      2s, 20ms);
  EXPECT_GE(owed, 100u);

  auto sink = tp::make_socket(h.ctx, zmq::socket_type::pull);
  tp::bind(sink, h.config.endpoints.dead_letters);
  std::set<std::string> keys;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (keys.size() < static_cast<std::size_t>(n) && std::chrono::steady_clock::now() < deadline) {
    if (!readable(sink, 100ms)) continue;
    zmq::message_t m;
    if (!sink.recv(m)) continue;
    auto dl = h.decoder.decode_dead_letter(tp::bytes_of(m));
    if (dl && dl->key.starts_with("sma.1.700.")) keys.insert(dl->key);
  }
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(n)) << "every refusal's letter, the owed ones included";
}

// A full batch, then an empty queue: the drain's next round decides nothing
// and must publish and send nothing (it once took the last batch again: its
// refusals dead-lettered twice, its accepted order sent twice).
TEST(ExecutorNode, AFullBatchFollowedByAnEmptyQueueIsPublishedAndSentOnce) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());
  // A second strategy: one connection's queue refills in steps (its high
  // water mark is the batch size), two hold a whole batch between them.
  zmq::socket_t push2 = tp::make_socket(h.ctx, zmq::socket_type::push);
  tp::connect(push2, h.config.endpoints.signals);

  // While the node waits for the first order's reply, one full batch queues
  // up: refusals (over risk.max_order_quantity) and one order.
  h.push_signal(make_signal("sma.1.500.0"));
  ASSERT_TRUE(h.dll.ready(wait_limit));
  const auto n = ExecutorNode::max_signals_per_batch;
  for (std::size_t i = 1; i < n; ++i) {
    auto s = make_signal("sma.1.500." + std::to_string(i));
    s.quantity = h.config.risk.max_order_quantity * 2;
    const auto bytes = tp::proto::encode_to_string(s);
    (i % 2 ? h.push : push2).send(zmq::buffer(bytes));
  }
  h.push_signal(make_signal("sma.1.500.last"));
  std::vector<std::string> sent;
  for (int i = 0; i < 2; ++i) {
    auto req = h.dll.fill_next(1.085);
    ASSERT_TRUE(req.has_value()) << i;
    sent.push_back(req->client_order_id);
  }
  EXPECT_EQ(sent, (std::vector<std::string>{"C-sma.1.500.0", "C-sma.1.500.last"}));
  // The drain goes on straight after the fill's event, with its queue empty
  // (a signal pushed before the event would be a batch of its own); the
  // signals of sync() are handled after it.
  ASSERT_TRUE(h.wait_event([](const std::string&, const tp::proto::OrderEvent& e) {
    return e.client_order_id == "C-sma.1.500.last" && e.status == tp::proto::OrderStatus::filled;
  }));
  ASSERT_TRUE(h.sync());
  EXPECT_FALSE(h.dll.ready(0ms)) << "an order of the batch was sent again";
  h.stop();
  EXPECT_EQ(h.node->counters().rejected.at("risk_rejected"), n - 1);
  EXPECT_EQ(h.node->counters().orders_sent, 2u);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 2000);
}

TEST(ExecutorNode, RiskInABatchCountsTheOrdersNotYetSent) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.risk.max_position = 2500;  // two orders of 1000 fit, a third does not
  h.start();
  ASSERT_TRUE(h.await_subscription());

  h.push_signal(make_signal("sma.1.400.1"));
  ASSERT_TRUE(h.dll.ready(wait_limit));
  h.push_signal(make_signal("sma.1.400.2"));
  h.push_signal(make_signal("sma.1.400.3"));
  ASSERT_TRUE(h.dll.fill_next(1.085).has_value());
  ASSERT_TRUE(h.dll.fill_next(1.085).has_value());
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == "sma.1.400.3" && a.status == tp::proto::AckStatus::rejected &&
           a.reason == "risk_rejected";
  }));
  h.stop();
  EXPECT_EQ(h.node->counters().orders_sent, 2u) << "the refused third sent nothing";
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 2000);
}

TEST(ExecutorNode, BreakerTakesItsThresholdFromTheConfig) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.executor.breaker_failures = 1;         // the default (3) would still be closed after one failure
  h.config.executor.breaker_cooling_ms = 60'000;  // no probe while the test runs
  h.config.executor.order_timeout_ms = 100;
  h.config.executor.order_retries = 0;
  h.start();
  ASSERT_TRUE(h.await_subscription());

  // a's request is never answered. b is pushed after a's ack, so the node
  // decides it only after a's send has failed: with the breaker open, b is held.
  auto accepted = [](const tp::proto::TradingSignal& s) {
    return [id = s.signal_id](const std::string&, const tp::proto::SignalAck& a) {
      return a.signal_id == id && a.status == tp::proto::AckStatus::accepted;
    };
  };
  auto a = make_signal("sma.1.400.1");
  h.push_signal(a);
  ASSERT_TRUE(h.wait_ack(accepted(a)));
  auto b = make_signal("sma.1.400.2");
  h.push_signal(b);
  ASSERT_TRUE(h.wait_ack(accepted(b)));
  h.stop();
  EXPECT_EQ(h.node->counters().orders_held, 1u);
  const auto stats = h.node->stats_json();
  EXPECT_NE(stats.find("\"breaker\":\"open\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"breaker_opens\":1"), std::string::npos) << stats;
}

TEST(ExecutorNode, ASignalThatFailsValidationIsAckedRejectedWhenItsSenderCanBeNamed) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());

  // A NaN quantity: undecodable as a signal, but its id, strategy and
  // instance read fine, so the strategy is told to stop resending.
  auto bad = make_signal("sma.1.100.7");
  bad.quantity = std::nan("");
  h.push_signal(bad);
  EXPECT_TRUE(h.wait_ack([&](const std::string& topic, const tp::proto::SignalAck& a) {
    return topic == "ACK.sma.1" && a.signal_id == bad.signal_id &&
           a.status == tp::proto::AckStatus::rejected && a.reason == "out_of_range";
  }));
  auto dl = h.wait_dead_letter("out_of_range");
  ASSERT_TRUE(dl.has_value());
  EXPECT_EQ(dl->original, tp::proto::encode_to_string(bad));

  // A signal_id longer than the client order id's room: refused and acked.
  auto long_id = make_signal(std::string(tp::proto::max_id_length - 1, 'x'));
  h.push_signal(long_id);
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == long_id.signal_id && a.status == tp::proto::AckStatus::rejected;
  }));

  // Two frames: `bad_frames`, with both frames kept, joined by '|'.
  h.push.send(zmq::str_buffer("first"), zmq::send_flags::sndmore);
  h.push.send(zmq::str_buffer("second"), zmq::send_flags::none);
  auto frames_dl = h.wait_dead_letter("bad_frames");
  ASSERT_TRUE(frames_dl.has_value());
  EXPECT_EQ(frames_dl->original, "first|second");
  EXPECT_FALSE(h.dll.ready(0ms));
}

TEST(ExecutorNode, OrderRequestCarriesTheSignalsDeadlineAndAnExpiryRefusalIsDeadLettered) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());

  auto s = make_signal("sma.1.100.8");
  h.push_signal(s);
  ASSERT_TRUE(h.dll.ready(wait_limit));
  auto m = h.dll.next();
  ASSERT_TRUE(m);
  auto req = h.decoder.decode_order_request(tp::bytes_of(*m));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->expires_ts_ns, s.expires_ts_ns);

  // dll_gateway refuses it: the deadline passed while it waited.
  tp::proto::OrderReply reply;
  reply.client_order_id = req->client_order_id;
  reply.status = tp::proto::OrderStatus::rejected;
  reply.reason = "expired: deadline passed before the broker call; never sent";
  h.dll.send(reply);

  auto dl = h.wait_dead_letter("expired");
  ASSERT_TRUE(dl.has_value());
  auto original = h.decoder.decode_order_request(tp::proto::as_bytes(dl->original));
  ASSERT_TRUE(original.ok());
  EXPECT_EQ(original->client_order_id, req->client_order_id);
  EXPECT_TRUE(h.wait_event([&](const std::string&, const tp::proto::OrderEvent& e) {
    return e.client_order_id == req->client_order_id && e.status == tp::proto::OrderStatus::rejected;
  }));
  h.stop();
  EXPECT_EQ(h.node->counters().rejected.at("expired"), 1u);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 0);
}

TEST(ExecutorNode, StopDoesNotWaitForAnOrderThatDllGatewayNeverAnswers) {
  tp::test::TempDir dir;
  Harness h(dir);
  // Without the stop check the order would hold the loop for 4 x 10 s.
  h.config.executor.order_timeout_ms = 10'000;
  h.config.executor.order_retries = 3;
  h.start();
  ASSERT_TRUE(h.await_subscription());
  auto s = make_signal("sma.1.100.9");
  h.push_signal(s);
  ASSERT_TRUE(h.dll.ready(wait_limit));  // in flight; never answered
  const auto t0 = std::chrono::steady_clock::now();
  h.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s) << "stop took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";
  // Left for reconciliation at the next start (never given up, never sent twice).
  EXPECT_EQ(h.node->counters().orders_sent, 1u);
}

TEST(ExecutorNode, APositionThatDiffersFromTheBrokersHaltsNewSignals) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.dll.positions["EURUSD"] = 500;  // e.g. a store restored from an old copy
  h.start();
  h.answer_position_check();  // the next pass confirms the difference
  ASSERT_TRUE(h.await_subscription());
  auto s = make_signal("sma.1.500.1");
  h.push_signal(s);
  EXPECT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
    return a.signal_id == s.signal_id && a.status == tp::proto::AckStatus::rejected &&
           a.reason == "position_mismatch";
  }));
  ASSERT_TRUE(h.wait_dead_letter("position_mismatch").has_value());
  h.stop();
  EXPECT_EQ(h.node->counters().orders_sent, 0u);
  EXPECT_EQ(h.node->position_check(), ExecutorNode::PositionCheck::mismatch);
  std::ifstream in(h.config.run.dir + "/executor.stats.json");
  std::stringstream stats;
  stats << in.rdbuf();
  for (const char* key : {"\"position_check\":\"mismatch\"", "\"trading_halted\":true",
                          "\"position_mismatches\":{\"EURUSD\":{\"executor\":0,\"broker\":500}}"}) {
    EXPECT_NE(stats.str().find(key), std::string::npos) << key << " in " << stats.str();
  }
}

TEST(ExecutorNode, WithAdoptBrokerPositionsTheBrokersFiguresAreTakenAndTradingGoesOn) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.executor.adopt_broker_positions = true;
  h.dll.positions["EURUSD"] = -300;
  h.start();
  // A difference counts once the next pass's comparison finds it too.
  h.answer_position_check();
  ASSERT_TRUE(h.await_subscription());
  auto s = make_signal("sma.1.501.1");
  h.push_signal(s);
  ASSERT_TRUE(h.dll.fill_next(1.09).has_value());
  h.stop();
  EXPECT_EQ(h.node->counters().orders_sent, 1u);
  EXPECT_EQ(h.node->position_check(), ExecutorNode::PositionCheck::adopted);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), -300 + 1000);
}

TEST(ExecutorNode, ItsHeartbeatGoesOnWhileAnOrderWaitsOnAFrozenDllGateway) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.executor.order_timeout_ms = 5'000;  // one attempt outlasts the test's wait
  h.config.executor.order_retries = 0;
  h.start();
  ASSERT_TRUE(h.await_subscription());
  h.push_signal(make_signal("sma.1.600.1"));
  ASSERT_TRUE(h.dll.ready(wait_limit));  // in flight, never answered
  // The stats file (the supervisor's heartbeat) is rewritten during the wait:
  // three different stamps within 2 s, while the single attempt lasts 5 s.
  std::set<std::int64_t> stamps;
  tp::test::wait_until(
      [&] {
        if (const auto stats = tp::test::read_json(h.config.run.dir + "/executor.stats.json")) {
          stamps.insert(stats->value("ts_ns", std::int64_t{0}));
        }
        return stamps.size() >= 3;
      },
      2s, 20ms);
  EXPECT_GE(stamps.size(), 3u);
  h.stop();
}

// The store's write-ahead log is checkpointed once the signals stop, not in
// the commit of a batch: after ~4 MiB of refusals (their rows and letters,
// ~10,000 signals), the stats count a checkpoint made while none waited.
TEST(ExecutorNode, ItsStoreIsCheckpointedOnceTheSignalsStop) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());
  int n = 0;
  auto checkpoints = [&] {
    const auto stats = tp::test::read_json(h.config.run.dir + "/executor.stats.json");
    return stats ? stats->value("store_checkpoints", std::uint64_t{0}) : 0;
  };
  while (checkpoints() == 0 && n < 40'000) {
    for (int i = 0; i < 2'000; ++i) {
      h.push_signal(make_signal("sma.1.700." + std::to_string(++n), "ZZZ"));
    }
    const auto last = "sma.1.700." + std::to_string(n);
    ASSERT_TRUE(h.wait_ack([&](const std::string&, const tp::proto::SignalAck& a) {
      return a.signal_id == last;
    })) << n;
    tp::test::wait_until([&] { return checkpoints() > 0; }, 300ms, 20ms);
  }
  EXPECT_GT(checkpoints(), 0u) << "no checkpoint after " << n << " refused signals";
  EXPECT_LT(n, 40'000);
  h.stop();
}

// The reconcile timer (1 s) on the injected clock: a working order is asked
// about again exactly when a second of the node's time has passed.
TEST(ExecutorNode, AWorkingOrderIsAskedAboutAgainWhenOneSecondOfItsClockHasPassed) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.node_clock = &h.stepped;
  auto s = make_signal("sma.1.700.1");
  {
    ExecutorStore store(h.config.run.dir + "/executor.db", tp::wall_ns());
    ASSERT_TRUE(store.record_accepted(s, intent_for(s, tp::wall_ns()), tp::wall_ns()));
  }  // as if the process had died after the intent commit
  h.start(/*answer_positions=*/false);

  // The start-up pass asks; the broker is working the order (nothing filled).
  auto answer_query = [&](tp::proto::OrderStatus status, double filled) {
    ASSERT_TRUE(h.dll.ready(wait_limit));
    auto m = h.dll.next();
    ASSERT_TRUE(m);
    auto q = h.decoder.decode_order_query(tp::bytes_of(*m));
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->client_order_id, "C-sma.1.700.1");
    tp::proto::OrderReply reply;
    reply.client_order_id = q->client_order_id;
    reply.order_id = "B-7";
    reply.status = status;
    reply.filled_quantity = filled;
    reply.fill_price = filled > 0 ? 1.08 : 0;
    h.dll.send(reply);
  };
  answer_query(tp::proto::OrderStatus::accepted, 0);
  ASSERT_TRUE(h.await_subscription());

  h.stepped.advance_ms(999);
  ASSERT_TRUE(h.sync());
  EXPECT_FALSE(h.dll.ready(0ms)) << "asked again before its second was up";

  h.stepped.advance_ms(1);
  answer_query(tp::proto::OrderStatus::filled, 1000);
  // Nothing open any more: the pass goes on to the position check.
  h.dll.positions["EURUSD"] = 1000;
  h.answer_position_check();
  ASSERT_TRUE(h.sync());
  h.stop();
  EXPECT_EQ(h.node->counters().fills, 1u);
  EXPECT_EQ(h.node->counters().liveness_probes, 0u);
  EXPECT_EQ(h.node->position_check(), ExecutorNode::PositionCheck::matched);
  EXPECT_DOUBLE_EQ(h.node->positions().position("EURUSD"), 1000);
}

// The liveness probe (5 s idle) on the injected clock: none before five
// seconds of the node's time without an exchange, exactly one at five. The
// probe is a ReportQuery from the next expected report (it also brings any
// report the socket dropped).
TEST(ExecutorNode, AnIdleDllGatewayIsProbedAfterFiveSecondsOfItsClock) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.node_clock = &h.stepped;
  h.start();  // the position check is the last exchange
  ASSERT_TRUE(h.await_subscription());
  const int at_start = h.dll.report_queries;  // the start-up catch-up and open-orders check

  h.stepped.advance_ms(4'000);  // a reconcile pass runs: idle 4 s, no probe
  ASSERT_TRUE(h.sync());
  h.stepped.advance_ms(999);  // no pass is due yet
  ASSERT_TRUE(h.sync());
  EXPECT_FALSE(h.dll.ready(0ms));
  EXPECT_EQ(h.dll.report_queries, at_start);

  h.stepped.advance_ms(1);           // the next pass, 5 s after the last exchange
  EXPECT_FALSE(h.dll.ready(500ms));  // answers the probe; nothing else is asked
  EXPECT_EQ(h.dll.report_queries, at_start + 1);
  ASSERT_TRUE(h.sync());
  h.stop();
  EXPECT_EQ(h.node->counters().liveness_probes, 1u);
  EXPECT_EQ(h.node->counters().orders_sent, 0u);
  const auto stats = h.node->stats_json();
  EXPECT_NE(stats.find("\"broker_alive\":true"), std::string::npos) << stats;
}

TEST(ExecutorNode, EachGroupsPositionIsPublishedAfterTheFillsEventAndItsOwnLimitRefuses) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.strategy.groups = {
      tp::StrategyGroup{
          .name = "trend", .kind = "sma_crossover", .instruments = {"EURUSD"}, .max_position = 1500},
      tp::StrategyGroup{.name = "revert", .kind = "rsi_reversion", .instruments = {"EURUSD"}}};
  h.start();
  h.sub.set(zmq::sockopt::subscribe, "POS.");
  ASSERT_TRUE(h.await_subscription());

  // Reads the order-events socket until `done` says so, in arrival order.
  auto read_until = [&](const std::function<bool(const std::string&, std::string_view)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!readable(h.sub, 100ms)) continue;
      std::vector<zmq::message_t> frames;
      std::size_t total = 0;
      if (!tp::recv_message(h.sub, frames, 2, total) || total != 2) continue;
      if (done(std::string(tp::view_of(frames[0])), tp::view_of(frames[1]))) return true;
    }
    return false;
  };
  auto position = [&](std::string_view payload) {
    auto p = h.decoder.decode_strategy_position(tp::proto::as_bytes(payload));
    EXPECT_TRUE(p.ok()) << p.error().message();
    return p.ok() ? p.value() : tp::proto::StrategyPosition{};
  };
  // Every stats interval, each configured group's instruments, flat.
  EXPECT_TRUE(read_until([&](const std::string& topic, std::string_view payload) {
    return topic == "POS.revert" && position(payload).instrument == "EURUSD" &&
           position(payload).quantity == 0;
  }));

  auto s = make_signal("trend.0.800.1");
  s.strategy = "trend";
  s.instance = 0;
  h.push_signal(s);
  ASSERT_TRUE(h.dll.fill_next(1.0851).has_value());
  bool filled = false;
  EXPECT_TRUE(read_until([&](const std::string& topic, std::string_view payload) {
    if (topic == "ORDER.EURUSD") {
      auto ev = h.decoder.decode_order_event(tp::proto::as_bytes(payload));
      filled |= ev && ev->signal_id == s.signal_id && ev->status == tp::proto::OrderStatus::filled;
      return false;
    }
    if (topic != "POS.trend") return false;
    // The first report after the fill's event includes it; none before it does.
    const auto p = position(payload);
    EXPECT_EQ(p.quantity, filled ? 1000 : 0) << "filled=" << filled;
    return filled;
  }));

  // Trend at 1000 with a limit of 1500: another 1000 is refused, revert's is not.
  auto over = make_signal("trend.0.800.2");
  over.strategy = "trend";
  over.instance = 0;
  h.push_signal(over);
  EXPECT_TRUE(h.wait_ack([&](const std::string& topic, const tp::proto::SignalAck& a) {
    return topic == "ACK.trend.0" && a.signal_id == over.signal_id &&
           a.status == tp::proto::AckStatus::rejected && a.reason == "group_position_limit";
  }));
  EXPECT_TRUE(h.wait_dead_letter("group_position_limit").has_value());
  h.stop();

  const auto stats = tp::test::parse_json(h.node->stats_json());
  ASSERT_FALSE(stats.is_discarded());
  const auto& trend = stats["groups"]["trend"];
  EXPECT_EQ(trend["positions"]["EURUSD"], 1000) << stats.dump();
  EXPECT_EQ(trend["realized_pnl"]["EURUSD"], 0);
  EXPECT_EQ(trend["signals"], 1);
  EXPECT_EQ(trend["fills"], 1);
  EXPECT_EQ(trend["rejected"], 1);
  EXPECT_EQ(stats["groups"]["revert"]["positions"]["EURUSD"], 0);
  EXPECT_EQ(stats["rejected"]["group_position_limit"], 1);
}

// executor.cancel_on_shutdown: SIGTERM (stop) cancels what rests at the
// broker before the process ends, though the stop flag is up.
TEST(ExecutorNode, WorkingOrdersAreCanceledAtShutdownWhenConfigured) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.executor.cancel_on_shutdown = true;
  h.start();
  ASSERT_TRUE(h.await_subscription());
  auto s = make_signal("sma.1.900.1");
  s.order_type = tp::proto::OrderType::limit;
  s.limit_price = 1.08;
  s.time_in_force = tp::proto::TimeInForce::gtc;
  h.push_signal(s);

  auto m = h.dll.next();
  ASSERT_TRUE(m);
  auto req = h.decoder.decode_order_request(tp::bytes_of(*m));
  ASSERT_TRUE(req.ok()) << req.error().message();
  EXPECT_EQ(req->order_type, tp::proto::OrderType::limit);
  EXPECT_EQ(req->limit_price, 1.08);
  EXPECT_EQ(req->time_in_force, tp::proto::TimeInForce::gtc);
  tp::proto::OrderReply resting;
  resting.client_order_id = req->client_order_id;
  resting.order_id = "B-1";
  resting.status = tp::proto::OrderStatus::accepted;
  h.dll.send(resting);
  ASSERT_TRUE(h.wait_event([](const std::string&, const tp::proto::OrderEvent& ev) {
    return ev.status == tp::proto::OrderStatus::accepted;
  }));

  h.node->stop();
  m = h.dll.next();
  ASSERT_TRUE(m) << "no cancel at shutdown";
  auto cancel = h.decoder.decode_order_cancel(tp::bytes_of(*m));
  ASSERT_TRUE(cancel.ok()) << cancel.error().message();
  EXPECT_EQ(cancel->client_order_id, "C-sma.1.900.1");
  auto canceled = resting;
  canceled.status = tp::proto::OrderStatus::canceled;
  h.dll.send(canceled);
  h.stop();
  EXPECT_EQ(h.node->counters().canceled, 1u);
  EXPECT_EQ(h.node->counters().cancels_sent, 1u);
}
