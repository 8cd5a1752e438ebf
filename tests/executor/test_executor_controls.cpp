// ExecutorNode's trading controls and portfolio over real sockets (ipc:// in
// a temporary directory): the control REP (tpctl's side: a REQ), the tick
// feed (a PUB the test binds) turned into marks, the PNL.<sym> / PORTFOLIO
// events on the order-events PUB, the stats file's new keys and the
// automatic REDUCING at the daily loss limit. The test plays strategy
// (PUSH, SUB), dll_gateway (REP) and the dead-letter sink (PULL); the node
// runs its loop on a second thread, on the system clock.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/clock.hpp"
#include "common/endpoints.hpp"
#include "common/zmq_util.hpp"
#include "executor/executor_node.hpp"
#include "fake_dll_gateway.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

using namespace tp::executor;
using namespace std::chrono_literals;
using tp::proto::ControlCommand;
using tp::proto::TradingState;
using tp::test::make_signal;
using tp::test::readable;

namespace {

constexpr auto wait_limit = 5000ms;

tp::Config make_config(const tp::test::TempDir& dir) {
  tp::Config c = tp::test::node_config(dir, 50);  // the control REP: <orders>.control
  c.endpoints.ticks = dir.ipc("ticks");
  c.portfolio.interval_ms = 50;
  // Two instruments: one quoted in the account currency, one not.
  c.instruments = {{"EURUSD", 1.0850, 0.0001, 0.00005}, {"USDJPY", 151.20, 0.01, 0.006}};
  return c;
}

tp::proto::ControlRequest request(ControlCommand command, std::string reason = {}) {
  tp::proto::ControlRequest r;
  r.command = command;
  r.reason = std::move(reason);
  r.sent_by = "test";
  r.sent_ts_ns = tp::wall_ns();
  return r;
}

std::vector<std::string> rows(const std::string& path, const std::string& sql) {
  std::vector<std::string> out;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    ADD_FAILURE() << "cannot open " << path;
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(st, 0);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// The test's side of the pipeline around one node.
struct Harness {
  explicit Harness(const tp::test::TempDir& dir) : config(make_config(dir)) {
    tp::bind(dead, config.endpoints.dead_letters);
    tp::bind(ticks, config.endpoints.ticks);
  }

  void start(bool answer_positions = true) {
    node = std::make_unique<ExecutorNode>(ctx, config, clock);
    tp::connect(push, config.endpoints.signals);
    tp::connect(sub, config.endpoints.order_events);
    for (const char* topic : {"ORDER.", "ACK.", "PNL.", "PORTFOLIO"}) sub.set(zmq::sockopt::subscribe, topic);
    tp::connect(control, tp::control_endpoint(config.endpoints.control, config.endpoints.orders));
    loop = std::thread([this] { node->run(); });
    if (answer_positions) answer_position_check();
  }

  void stop() {
    if (node) node->stop();
    if (loop.joinable()) loop.join();
  }
  ~Harness() { stop(); }

  void answer_position_check() { dll.answer_position_check(config.instruments.size()); }

  void push_signal(const tp::proto::TradingSignal& s) {
    const auto bytes = tp::proto::encode_to_string(s);
    push.send(zmq::buffer(bytes), zmq::send_flags::none);
  }

  // One request on the control socket, its reply decoded (nullopt: none
  // within the limit, or not a ControlReply).
  std::optional<tp::proto::ControlReply> control_bytes(const std::string& bytes) {
    control.send(zmq::buffer(bytes), zmq::send_flags::none);
    if (!readable(control, wait_limit)) return std::nullopt;
    zmq::message_t m;
    if (!control.recv(m)) return std::nullopt;
    auto reply = decoder.decode_control_reply(tp::bytes_of(m));
    if (!reply) return std::nullopt;
    return std::move(reply).value();
  }
  std::optional<tp::proto::ControlReply> command(const tp::proto::ControlRequest& r) {
    return control_bytes(tp::proto::encode_to_string(r));
  }

  void publish_tick(const std::string& instrument, double bid, double ask) {
    tp::proto::TickEvent t;
    t.instrument = instrument;
    t.bid = bid;
    t.ask = ask;
    t.bid_volume = 1e6;
    t.ask_volume = 1e6;
    t.source_ts_ns = tp::wall_ns();
    t.seq = ++tick_seq;
    t.gateway_ts_ns = t.source_ts_ns;
    const auto topic = tp::proto::tick_topic(instrument);
    const auto payload = tp::proto::encode_to_string(t);
    ticks.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    ticks.send(zmq::buffer(payload), zmq::send_flags::none);
  }

  // Reads the events socket until `want(topic, payload)` says yes; calls
  // `between` before each wait (e.g. to publish ticks until they arrive).
  bool wait_published(const std::function<bool(const std::string&, tp::proto::Bytes)>& want,
                      std::chrono::milliseconds limit = wait_limit,
                      const std::function<void()>& between = {}) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (between) between();
      if (!readable(sub, 20ms)) continue;
      for (int i = 0; i < 100; ++i) {  // what is there, then the next tick
        std::vector<zmq::message_t> frames;
        std::size_t total = 0;
        if (!tp::recv_message(sub, frames, 2, total)) break;
        if (total != 2) continue;
        if (want(std::string(tp::view_of(frames[0])), tp::bytes_of(frames[1]))) return true;
      }
    }
    return false;
  }

  bool wait_ack(const std::string& signal_id, tp::proto::AckStatus status, const std::string& reason = {}) {
    return wait_published([&](const std::string& topic, tp::proto::Bytes payload) {
      if (!topic.starts_with("ACK.")) return false;
      auto ack = decoder.decode_signal_ack(payload);
      return ack && ack->signal_id == signal_id && ack->status == status && ack->reason == reason;
    });
  }

  // The PUB/SUB subscription travels asynchronously: probe with a signal the
  // node refuses (unknown instrument) until its ack comes back.
  bool await_subscription() {
    auto probe = make_signal("probe", "ZZZ");
    for (int i = 0; i < 50; ++i) {
      push_signal(probe);
      if (wait_published(
              [&](const std::string& topic, tp::proto::Bytes payload) {
                if (!topic.starts_with("ACK.")) return false;
                auto ack = decoder.decode_signal_ack(payload);
                return ack && ack->signal_id == "probe";
              },
              100ms))
        return true;
    }
    return false;
  }

  std::optional<tp::proto::DeadLetter> wait_dead_letter(
      const std::function<bool(const tp::proto::DeadLetter&)>& want) {
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!readable(dead, 100ms)) continue;
      zmq::message_t m;
      if (!dead.recv(m)) continue;
      auto dl = decoder.decode_dead_letter(tp::bytes_of(m));
      if (dl && want(dl.value())) return std::move(dl).value();
    }
    return std::nullopt;
  }
  std::optional<tp::proto::DeadLetter> wait_dead_letter(const std::string& reason) {
    return wait_dead_letter([&](const tp::proto::DeadLetter& d) { return d.reason == reason; });
  }

  std::string stats_path() const { return config.run.dir + "/executor.stats.json"; }
  std::string db_path() const { return config.run.dir + "/executor.db"; }
  // Waits until the stats file satisfies `want`; its text either way.
  std::string wait_stats(const std::function<bool(const std::string&)>& want) {
    std::string text;
    tp::test::wait_until(
        [&] {
          text = tp::test::read_text(stats_path());
          return want(text);
        },
        wait_limit);
    return text;
  }

  tp::Config config;
  tp::SystemClock clock;
  zmq::context_t ctx{1};
  zmq::socket_t dead =
      tp::make_socket(ctx, zmq::socket_type::pull,
                      {.max_msg_size = static_cast<std::int64_t>(tp::proto::max_dead_letter_bytes)});
  tp::test::FakeDllGateway dll{ctx, config.endpoints.orders};
  zmq::socket_t ticks = tp::make_socket(ctx, zmq::socket_type::pub);
  zmq::socket_t push = tp::make_socket(ctx, zmq::socket_type::push);
  zmq::socket_t sub = tp::make_socket(ctx, zmq::socket_type::sub);
  zmq::socket_t control = tp::make_socket(ctx, zmq::socket_type::req);
  tp::proto::Decoder decoder{};
  std::unique_ptr<ExecutorNode> node;
  std::thread loop;
  std::uint64_t tick_seq = 0;
};

bool near(double a, double b, double tolerance = 1e-6) { return std::abs(a - b) <= tolerance; }

}  // namespace

TEST(ExecutorControls, TheControlSocketHaltsRefusesWhatItCannotDecodeAndResumes) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());

  const auto halt = h.command(request(ControlCommand::halt, "drill"));
  ASSERT_TRUE(halt.has_value()) << "no reply on " << tp::control_endpoint("", h.config.endpoints.orders);
  EXPECT_TRUE(halt->ok) << halt->detail;
  EXPECT_EQ(halt->state, TradingState::halted);
  EXPECT_EQ(halt->cause, "halt by test: drill");
  EXPECT_GT(halt->since_ns, 0);

  // A signal: refused, acked and dead-lettered as trading_halted; nothing sent.
  const auto s1 = make_signal("sma.1.1");
  h.push_signal(s1);
  EXPECT_TRUE(h.wait_ack(s1.signal_id, tp::proto::AckStatus::rejected, "trading_halted"));
  const auto dl = h.wait_dead_letter("trading_halted");
  ASSERT_TRUE(dl.has_value());
  EXPECT_EQ(dl->original, tp::proto::encode_to_string(s1));
  EXPECT_FALSE(h.dll.next(100ms).has_value()) << "an order went out while HALTED";

  // STATUS: the same state.
  const auto status = h.command(request(ControlCommand::status));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok);
  EXPECT_EQ(status->state, TradingState::halted);
  EXPECT_EQ(status->since_ns, halt->since_ns);

  // Garbage: answered (the REQ is not left waiting), refused, dead-lettered.
  const std::string garbage = "\xc1 not msgpack";
  const auto refused = h.control_bytes(garbage);
  ASSERT_TRUE(refused.has_value()) << "the REP must answer every request";
  EXPECT_FALSE(refused->ok);
  EXPECT_TRUE(refused->detail.starts_with("malformed: ")) << refused->detail;
  EXPECT_EQ(refused->state, TradingState::halted) << "the state as it is";
  const auto bad = h.wait_dead_letter([&](const tp::proto::DeadLetter& d) { return d.original == garbage; });
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->reason, "malformed");
  EXPECT_EQ(bad->source, "executor");
  // Another message type on the control socket is no command either.
  const auto wrong = h.control_bytes(tp::proto::encode_to_string(s1));
  ASSERT_TRUE(wrong.has_value());
  EXPECT_FALSE(wrong->ok);
  EXPECT_FALSE(wrong->detail.empty());
  EXPECT_TRUE(h.wait_dead_letter([&](const tp::proto::DeadLetter& d) {
                 return d.original == tp::proto::encode_to_string(s1);
               }).has_value());

  // RESUME: the next signal is accepted and filled.
  const auto resume = h.command(request(ControlCommand::resume, "drill over"));
  ASSERT_TRUE(resume.has_value());
  EXPECT_TRUE(resume->ok);
  EXPECT_EQ(resume->state, TradingState::active);
  EXPECT_EQ(resume->cause, "resume by test: drill over");
  const auto s2 = make_signal("sma.1.2");
  h.push_signal(s2);
  const auto req = h.dll.fill_next(1.0851);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->client_order_id, "C-sma.1.2");
  EXPECT_TRUE(h.wait_ack(s2.signal_id, tp::proto::AckStatus::accepted));

  // The stats say so; HALT again, then a restart finds it.
  auto stats = h.wait_stats([](const std::string& text) {
    return tp::test::json_number(text, "control_commands") == 3 &&
           tp::test::json_string(text, "trading_state") == "ACTIVE";
  });
  EXPECT_EQ(tp::test::json_number(stats, "control_commands"), 3) << stats;
  EXPECT_EQ(tp::test::json_string(stats, "trading_state"), "ACTIVE") << stats;
  EXPECT_EQ(tp::test::json_number(stats, "/rejected/trading_halted"), 1) << stats;
  ASSERT_TRUE(h.command(request(ControlCommand::halt, "for the night")).has_value());
  stats = h.wait_stats(
      [](const std::string& text) { return tp::test::json_string(text, "trading_state") == "HALTED"; });
  EXPECT_EQ(tp::test::json_string(stats, "trading_state_cause"), "halt by test: for the night") << stats;
  EXPECT_EQ(tp::test::json_number(stats, "trading_halted"), 1) << stats;
  EXPECT_EQ(tp::test::json_string(stats, "alert"), "trading HALTED: halt by test: for the night") << stats;
  h.stop();
  h.node.reset();
  EXPECT_EQ(rows(h.db_path(), "SELECT command FROM control_log ORDER BY rowid"),
            (std::vector<std::string>{"HALT", "RESUME", "HALT"}));
  EXPECT_EQ(rows(h.db_path(), "SELECT state || ' ' || cause FROM trading_state"),
            (std::vector<std::string>{"HALTED halt by test: for the night"}));
}

TEST(ExecutorControls, TicksBecomeMarksAndThePortfolioIsPublishedInTheAccountCurrency) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());

  h.push_signal(make_signal("sma.1.e"));
  ASSERT_TRUE(h.dll.fill_next(1.0851).has_value());
  h.push_signal(make_signal("sma.1.j", "USDJPY"));
  ASSERT_TRUE(h.dll.fill_next(151.20).has_value());

  // Mids 1.09 and 152: EURUSD +4.9 USD; USDJPY +800 JPY, 800 / 152 USD.
  const double eur_unrealized = (1.09 - 1.0851) * 1000;
  const double jpy_unrealized = (152.0 - 151.2) * 1000;
  const double total = eur_unrealized + jpy_unrealized / 152.0;
  std::map<std::string, tp::proto::InstrumentPnl> lines;
  std::vector<tp::proto::PortfolioEvent> events;
  const auto publish_ticks = [&] {
    h.publish_tick("EURUSD", 1.0899, 1.0901);
    h.publish_tick("USDJPY", 151.99, 152.01);
  };
  // Ticks until a valuation has both marks, then two more valuations.
  const bool seen = h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic.starts_with("PNL.")) {
          auto line = h.decoder.decode_instrument_pnl(payload);
          EXPECT_TRUE(line.ok());
          if (!line) return false;
          EXPECT_EQ(topic, "PNL." + line->instrument);
          lines[line->instrument] = line.value();
          return false;
        }
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        EXPECT_TRUE(event.ok());
        if (!event) return false;
        if (!events.empty() || (lines["EURUSD"].mark_price > 0 && lines["USDJPY"].mark_price > 0))
          events.push_back(event.value());
        return events.size() == 3;
      },
      wait_limit, publish_ticks);
  ASSERT_TRUE(seen) << events.size() << " valuations with both marks";

  const auto& eur = lines.at("EURUSD");
  EXPECT_EQ(eur.quote_currency, "USD");
  EXPECT_DOUBLE_EQ(eur.position, 1000);
  EXPECT_DOUBLE_EQ(eur.avg_price, 1.0851);
  EXPECT_TRUE(near(eur.mark_price, 1.09)) << eur.mark_price;
  EXPECT_TRUE(near(eur.unrealized_pnl, eur_unrealized)) << eur.unrealized_pnl;
  EXPECT_DOUBLE_EQ(eur.rate_to_account, 1);
  EXPECT_TRUE(near(eur.unrealized_account, eur_unrealized)) << eur.unrealized_account;
  const auto& jpy = lines.at("USDJPY");
  EXPECT_EQ(jpy.quote_currency, "JPY");
  EXPECT_DOUBLE_EQ(jpy.position, 1000);
  EXPECT_DOUBLE_EQ(jpy.avg_price, 151.2);
  EXPECT_TRUE(near(jpy.mark_price, 152.0)) << jpy.mark_price;
  EXPECT_TRUE(near(jpy.unrealized_pnl, jpy_unrealized, 1e-3)) << jpy.unrealized_pnl;
  EXPECT_TRUE(near(jpy.rate_to_account, 1 / 152.0)) << jpy.rate_to_account;
  EXPECT_TRUE(near(jpy.unrealized_account, jpy_unrealized / 152.0, 1e-5)) << jpy.unrealized_account;

  const auto& last = events.back();
  EXPECT_EQ(last.account_currency, "USD");
  EXPECT_TRUE(last.complete);
  EXPECT_DOUBLE_EQ(last.realized_pnl, 0);
  EXPECT_TRUE(near(last.unrealized_pnl, total, 1e-5)) << last.unrealized_pnl;
  EXPECT_TRUE(near(last.equity, h.config.portfolio.capital + total, 1e-5)) << last.equity;
  EXPECT_TRUE(near(last.daily_pnl, total, 1e-5)) << "the day began flat: " << last.daily_pnl;
  EXPECT_EQ(last.day_start_ns, utc_day_start_ns(last.ts_ns));
  EXPECT_EQ(last.state, TradingState::active);
  EXPECT_EQ(last.open_orders, 0u);
  // Every portfolio.interval_ms (50 ms), not faster, not much slower.
  for (std::size_t i = 1; i < events.size(); ++i) {
    const auto gap_ms = (events[i].ts_ns - events[i - 1].ts_ns) / tp::ns_per_ms;
    EXPECT_GE(gap_ms, 45);
    EXPECT_LT(gap_ms, 1000);
  }

  // The stats file keeps 10 significant digits.
  const auto stats = h.wait_stats([&](const std::string& text) {
    return near(tp::test::json_number(text, "equity"), h.config.portfolio.capital + total, 1e-2);
  });
  EXPECT_TRUE(near(tp::test::json_number(stats, "equity"), h.config.portfolio.capital + total, 1e-2))
      << stats;
  EXPECT_TRUE(near(tp::test::json_number(stats, "daily_pnl"), total, 1e-4)) << stats;
  EXPECT_TRUE(near(tp::test::json_number(stats, "unrealized_pnl"), total, 1e-4)) << stats;
  EXPECT_EQ(tp::test::json_number(stats, "realized_pnl"), 0) << stats;
  EXPECT_EQ(tp::test::json_string(stats, "trading_state"), "ACTIVE") << stats;
  EXPECT_EQ(tp::test::json_string(stats, "account_currency"), "USD") << stats;
  EXPECT_EQ(tp::test::json_number(stats, "portfolio_complete"), 1) << stats;
  EXPECT_EQ(tp::test::json_number(stats, "marks"), 2) << stats;

  h.stop();
  h.node.reset();
  // One equity point per valuation; the day's zero stored once.
  EXPECT_GE(std::stoi(rows(h.db_path(), "SELECT COUNT(*) FROM equity").at(0)), 3);
  EXPECT_EQ(rows(h.db_path(), "SELECT day || ' ' || start_pnl FROM portfolio_days"),
            (std::vector<std::string>{utc_day(last.ts_ns) + " 0.0"}));
}

TEST(ExecutorControls, TheDailyLossLimitPutsTradingInReducingByItself) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.risk.max_daily_loss = 50;
  h.start();
  ASSERT_TRUE(h.await_subscription());
  h.push_signal(make_signal("sma.1.1"));
  ASSERT_TRUE(h.dll.fill_next(1.0851).has_value());

  // The mid falls to 1.0: 85.1 USD lost today, past the 50 allowed.
  const bool reducing = h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        return event && event->state == TradingState::reducing;
      },
      wait_limit, [&] { h.publish_tick("EURUSD", 0.9999, 1.0001); });
  ASSERT_TRUE(reducing);
  const auto stats = h.wait_stats(
      [](const std::string& text) { return tp::test::json_string(text, "trading_state") == "REDUCING"; });
  const auto cause = tp::test::json_string(stats, "trading_state_cause").value_or("");
  EXPECT_TRUE(cause.starts_with("daily loss limit: the day's PnL -85.10 USD")) << cause;
  EXPECT_TRUE(near(tp::test::json_number(stats, "daily_pnl"), -85.1, 1e-6)) << stats;

  const auto status = h.command(request(ControlCommand::status));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->state, TradingState::reducing);
  EXPECT_EQ(status->cause, cause);

  // Only what shrinks the position passes now.
  const auto more = make_signal("sma.1.2");
  h.push_signal(more);
  EXPECT_TRUE(h.wait_ack(more.signal_id, tp::proto::AckStatus::rejected, "reduce_only"));
  const auto less = make_signal("sma.1.3", "EURUSD", tp::proto::Side::sell, 400);
  h.push_signal(less);
  const auto req = h.dll.fill_next(1.0);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(req->client_order_id, "C-sma.1.3");
  EXPECT_TRUE(h.wait_ack(less.signal_id, tp::proto::AckStatus::accepted));
  h.stop();
  h.node.reset();
  EXPECT_EQ(rows(h.db_path(), "SELECT command || ' ' || state FROM control_log"),
            (std::vector<std::string>{"AUTO REDUCING"}));
}

TEST(ExecutorControls, AHeldOrderLeftFromBeforeAHaltIsGivenUpAtStartNeverSent) {
  tp::test::TempDir dir;
  Harness h(dir);
  {
    // What a kill -9 right after the HALT's commit leaves: HALTED stored, an
    // order still HELD (the breaker was open).
    ExecutorStore store(h.db_path(), tp::wall_ns());
    const auto s = make_signal("sma.1.held");
    auto order = intent_for(s, tp::wall_ns());
    order.state = OrderState::held;
    ASSERT_TRUE(store.record_accepted(s, order, tp::wall_ns()));
    store.save_trading_status(
        TradingStatus{TradingState::halted, "halt by test: before the crash", tp::wall_ns(), false}, "HALT",
        tp::wall_ns());
  }
  h.start(/*answer_positions=*/false);
  auto first = h.dll.next();
  ASSERT_TRUE(first.has_value());
  const auto type = h.decoder.peek_type(tp::bytes_of(*first));
  ASSERT_TRUE(type.ok());
  EXPECT_NE(type.value(), tp::proto::MsgType::order_request) << "the held order was sent while HALTED";
  if (type.value() == tp::proto::MsgType::position_query) {
    ASSERT_TRUE(h.dll.answer_position(*first));
    for (std::size_t i = 1; i < h.config.instruments.size(); ++i) {
      auto m = h.dll.next();
      ASSERT_TRUE(m.has_value());
      ASSERT_TRUE(h.dll.answer_position(*m));
    }
  }
  const auto dl = h.wait_dead_letter("trading_halted");
  ASSERT_TRUE(dl.has_value());
  EXPECT_NE(dl->detail.find("C-sma.1.held"), std::string::npos) << dl->detail;
  const auto stats = h.wait_stats(
      [](const std::string& text) { return tp::test::json_number(text, "/rejected/trading_halted") == 1; });
  EXPECT_EQ(tp::test::json_string(stats, "trading_state"), "HALTED") << stats;
  EXPECT_EQ(tp::test::json_number(stats, "open_orders"), 0) << stats;
}

TEST(ExecutorControls, AHaltCancelsAWorkingOrderAtTheBroker) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());
  auto rest = make_signal("sma.1.rest");
  rest.order_type = tp::proto::OrderType::limit;
  rest.limit_price = 1.08;
  rest.time_in_force = tp::proto::TimeInForce::gtc;
  h.push_signal(rest);
  ASSERT_TRUE(h.dll.answer_next(tp::proto::OrderStatus::accepted).has_value());  // it rests
  ASSERT_TRUE(h.wait_ack(rest.signal_id, tp::proto::AckStatus::accepted));

  const auto halt = h.command(request(ControlCommand::halt, "drill"));
  ASSERT_TRUE(halt.has_value());
  EXPECT_TRUE(halt->ok);
  EXPECT_EQ(halt->open_orders, 1u) << "the resting order, when the state was stored";
  // The executor's own cancel goes out right after the reply.
  auto m = h.dll.answer_next(tp::proto::OrderStatus::canceled);
  ASSERT_TRUE(m.has_value());
  auto cancel = h.decoder.decode_order_cancel(tp::bytes_of(*m));
  ASSERT_TRUE(cancel.ok()) << "not an OrderCancel";
  EXPECT_EQ(cancel->client_order_id, "C-sma.1.rest");
  EXPECT_TRUE(cancel->reason.starts_with("trading HALTED: halt by test: drill")) << cancel->reason;
  EXPECT_TRUE(h.wait_published([&](const std::string& topic, tp::proto::Bytes payload) {
    if (topic != "ORDER.EURUSD") return false;
    auto ev = h.decoder.decode_order_event(payload);
    return ev && ev->client_order_id == "C-sma.1.rest" && ev->status == tp::proto::OrderStatus::canceled;
  }));
  const auto stats = h.wait_stats([](const std::string& text) {
    return tp::test::json_string(text, "trading_state") == "HALTED" &&
           tp::test::json_number(text, "canceled") == 1;
  });
  EXPECT_EQ(tp::test::json_number(stats, "open_orders"), 0) << stats;
  EXPECT_EQ(tp::test::json_number(stats, "cancels_sent"), 1) << stats;
  EXPECT_FALSE(h.dll.next(300ms).has_value()) << "one cancel only";
}

TEST(ExecutorControls, AFlattenSendsAMarketIocClosingOrderAndEndsOnceFlat) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.start();
  ASSERT_TRUE(h.await_subscription());
  h.push_signal(make_signal("sma.1.long"));
  ASSERT_TRUE(h.dll.fill_next(1.0851).has_value());

  const auto flatten = h.command(request(ControlCommand::flatten, "end of day"));
  ASSERT_TRUE(flatten.has_value());
  EXPECT_TRUE(flatten->ok);
  EXPECT_EQ(flatten->state, TradingState::reducing);
  EXPECT_TRUE(flatten->flatten_pending);
  // No tick: priced at the last fill.
  const auto closing = h.dll.fill_next(1.0849);
  ASSERT_TRUE(closing.has_value()) << "no closing order";
  EXPECT_TRUE(closing->signal_id.starts_with("flatten.sma.EURUSD.")) << closing->signal_id;
  EXPECT_EQ(closing->client_order_id, "C-" + closing->signal_id);
  EXPECT_EQ(closing->side, tp::proto::Side::sell);
  EXPECT_DOUBLE_EQ(closing->quantity, 1000);
  EXPECT_DOUBLE_EQ(closing->price_hint, 1.0851);
  EXPECT_EQ(closing->order_type, tp::proto::OrderType::market);
  EXPECT_EQ(closing->time_in_force, tp::proto::TimeInForce::ioc);
  EXPECT_GT(closing->expires_ts_ns, tp::wall_ns());
  EXPECT_LE(closing->expires_ts_ns, tp::wall_ns() + ExecutionDesk::closing_order_ttl_ns);
  // Acked to the group's instance 0, as any order of the group.
  EXPECT_TRUE(h.wait_published([&](const std::string& topic, tp::proto::Bytes payload) {
    if (topic != "ACK.sma.0") return false;
    auto ack = h.decoder.decode_signal_ack(payload);
    return ack && ack->signal_id == closing->signal_id && ack->status == tp::proto::AckStatus::accepted;
  }));

  // Flat: the next reconcile pass (1 s) ends the flatten; still REDUCING.
  const auto stats = h.wait_stats([](const std::string& text) {
    return tp::test::json_number(text, "flatten_pending") == 0 &&
           tp::test::json_number(text, "/positions/EURUSD/position") == 0;
  });
  EXPECT_EQ(tp::test::json_number(stats, "flatten_pending"), 0) << stats;
  EXPECT_EQ(tp::test::json_string(stats, "trading_state"), "REDUCING") << stats;
  EXPECT_FALSE(h.dll.next(300ms).has_value()) << "no second closing order";
  h.stop();
  h.node.reset();
  EXPECT_EQ(rows(h.db_path(), "SELECT command FROM control_log ORDER BY rowid"),
            (std::vector<std::string>{"FLATTEN", "FLATTENED"}));
}

// An operator's HALT is answered while the executor waits on a slow
// dll_gateway (not after the wait), and holds at once: the order it waits
// on keeps its course, no further order of the batch goes out.
TEST(ExecutorControls, AHaltIsAnsweredDuringAWaitOnDllGatewayAndStopsTheRestOfTheBatch) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.executor.order_timeout_ms = 4000;  // one long attempt
  h.config.executor.order_retries = 0;
  // One order at a time: b is still unsent when the HALT comes (with more
  // in flight it would be at dll_gateway with a, and land after the ok).
  h.config.executor.orders_in_flight = 1;
  h.start();
  ASSERT_TRUE(h.await_subscription());
  const auto a = make_signal("sma.1.a");
  const auto b = make_signal("sma.1.b");
  h.push_signal(a);
  h.push_signal(b);
  auto first = h.dll.next();
  ASSERT_TRUE(first.has_value());
  auto req = h.decoder.decode_order_request(tp::bytes_of(*first));
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->client_order_id, "C-sma.1.a");

  // dll_gateway is slow: the HALT comes meanwhile.
  const auto asked = std::chrono::steady_clock::now();
  h.control.send(zmq::buffer(tp::proto::encode_to_string(request(ControlCommand::halt, "slow broker"))),
                 zmq::send_flags::none);
  ASSERT_TRUE(readable(h.control, 2000ms)) << "no answer while the order waits (its timeout is 4 s)";
  const auto answered_in = std::chrono::steady_clock::now() - asked;
  zmq::message_t m;
  ASSERT_TRUE(h.control.recv(m));
  auto reply = h.decoder.decode_control_reply(tp::bytes_of(m));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->ok);
  EXPECT_EQ(reply->state, TradingState::halted);
  EXPECT_LT(answered_in, 2000ms);

  // The order waited on is answered: filled, as it was sent before the halt.
  tp::proto::OrderReply fill;
  fill.client_order_id = req->client_order_id;
  fill.order_id = "B-1";
  fill.status = tp::proto::OrderStatus::filled;
  fill.filled_quantity = req->quantity;
  fill.fill_price = 1.0851;
  h.dll.send(fill);
  EXPECT_TRUE(h.wait_published([&](const std::string& topic, tp::proto::Bytes payload) {
    if (topic != "ORDER.EURUSD") return false;
    auto ev = h.decoder.decode_order_event(payload);
    return ev && ev->client_order_id == "C-sma.1.a" && ev->status == tp::proto::OrderStatus::filled;
  }));
  // b never goes out: held and given up, or refused, as trading_halted.
  const auto dl = h.wait_dead_letter([](const tp::proto::DeadLetter& d) {
    return d.reason == "trading_halted" && d.detail.find("sma.1.b") != std::string::npos;
  });
  EXPECT_TRUE(dl.has_value());
  EXPECT_FALSE(h.dll.next(500ms).has_value()) << "an order went out after the HALT was answered";
}

// The day's zero is stored: a restart the same UTC day counts the loss made
// before it (a restart must not be a way around the daily loss limit).
TEST(ExecutorControls, TheDaysStartingPnlOutlivesARestart) {
  tp::test::TempDir dir;
  const auto next_portfolio = [](Harness& h) {
    std::optional<tp::proto::PortfolioEvent> seen;
    h.wait_published([&](const std::string& topic, tp::proto::Bytes payload) {
      if (topic != "PORTFOLIO") return false;
      auto event = h.decoder.decode_portfolio_event(payload);
      if (event) seen = event.value();
      return seen.has_value();
    });
    return seen;
  };
  {
    Harness h(dir);
    h.config.risk.max_daily_loss = 100;
    h.start();
    ASSERT_TRUE(h.await_subscription());
    // A round trip that loses 85.1 USD today: realised, no mark needed.
    h.push_signal(make_signal("sma.1.1"));
    ASSERT_TRUE(h.dll.fill_next(1.0851).has_value());
    h.push_signal(make_signal("sma.1.2", "EURUSD", tp::proto::Side::sell));
    ASSERT_TRUE(h.dll.fill_next(1.0).has_value());
    const auto stats = h.wait_stats(
        [](const std::string& text) { return near(tp::test::json_number(text, "daily_pnl"), -85.1, 1e-6); });
    EXPECT_TRUE(near(tp::test::json_number(stats, "daily_pnl"), -85.1, 1e-6)) << stats;
    EXPECT_EQ(tp::test::json_string(stats, "trading_state"), "ACTIVE") << "within the limit of 100";
  }
  Harness h(dir);
  h.config.risk.max_daily_loss = 100;
  h.start();
  const auto event = next_portfolio(h);
  ASSERT_TRUE(event.has_value());
  EXPECT_TRUE(near(event->realized_pnl, -85.1, 1e-6)) << event->realized_pnl;
  EXPECT_TRUE(near(event->daily_pnl, -85.1, 1e-6))
      << "counted from the day's stored start: " << event->daily_pnl;
  // 20 more lost after the restart: past the limit.
  ASSERT_TRUE(h.await_subscription());
  h.push_signal(make_signal("sma.1.3"));
  ASSERT_TRUE(h.dll.fill_next(1.02).has_value());
  h.push_signal(make_signal("sma.1.4", "EURUSD", tp::proto::Side::sell));
  ASSERT_TRUE(h.dll.fill_next(1.0).has_value());
  const auto stats = h.wait_stats(
      [](const std::string& text) { return tp::test::json_string(text, "trading_state") == "REDUCING"; });
  EXPECT_TRUE(near(tp::test::json_number(stats, "daily_pnl"), -105.1, 1e-6)) << stats;
}

// The day's PnL starts from the portfolio's value at the day's start. A
// position carried from an earlier day is worth its mark then, not nothing.
// The day's start was once taken at the first valuation of the day, which
// at a start comes before any tick: the carried position was valued without
// a mark (unrealised 0) and its whole unrealised PnL showed as today's when
// the first tick came. Here a 100 USD loss made before today would trip a
// 50 USD daily loss limit at once.
TEST(ExecutorControls, APositionCarriedIntoTheDayDoesNotCountItsOldPnlAsToday) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.risk.max_daily_loss = 50;
  h.dll.positions["EURUSD"] = 1000;
  {
    // Yesterday: bought 1000 at 1.20.
    ExecutorStore store(h.db_path(), tp::wall_ns());
    const auto s = make_signal("sma.1.old");
    ASSERT_TRUE(store.record_accepted(s, intent_for(s, tp::wall_ns()), tp::wall_ns()));
    tp::proto::OrderReply fill;
    fill.client_order_id = "C-sma.1.old";
    fill.order_id = "B-1";
    fill.status = tp::proto::OrderStatus::filled;
    fill.filled_quantity = 1000;
    fill.fill_price = 1.20;
    store.record_outcome("C-sma.1.old", fill, tp::wall_ns());
  }
  h.start();
  ASSERT_TRUE(h.await_subscription());
  // The mark: 1.10, 100 USD below the entry, as it was at the day's start.
  std::optional<tp::proto::PortfolioEvent> valued;
  ASSERT_TRUE(h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        if (event && near(event->unrealized_pnl, -100, 1e-6)) valued = event.value();
        return valued.has_value();
      },
      wait_limit, [&] { h.publish_tick("EURUSD", 1.0999, 1.1001); }));
  EXPECT_TRUE(near(valued->daily_pnl, 0, 1e-6)) << valued->daily_pnl;
  EXPECT_EQ(valued->state, TradingState::active);
}

// While the day's start cannot be stored (a full disk), the run keeps its
// first figure ("this run's best figure") and the loss limit still counts
// from it: the limit matters most when nothing else can be written.
// (A start that could not be written was once taken again at every
// valuation from its own total: daily_pnl stayed 0 and the limit never
// tripped.)
TEST(ExecutorControls, TheDailyLossLimitCountsFromTheRunsFirstFigureWhenTheDayCannotBeStored) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.risk.max_daily_loss = 50;
  h.dll.positions["EURUSD"] = 1000;
  {
    ExecutorStore store(h.db_path(), tp::wall_ns());
    const auto s = make_signal("sma.1.old");
    ASSERT_TRUE(store.record_accepted(s, intent_for(s, tp::wall_ns()), tp::wall_ns()));
    tp::proto::OrderReply fill;
    fill.client_order_id = "C-sma.1.old";
    fill.order_id = "B-1";
    fill.status = tp::proto::OrderStatus::filled;
    fill.filled_quantity = 1000;
    fill.fill_price = 1.20;
    store.record_outcome("C-sma.1.old", fill, tp::wall_ns());
  }
  // The day's row cannot be written; everything else can.
  rows(h.db_path(),
       "CREATE TRIGGER no_days BEFORE INSERT ON portfolio_days BEGIN SELECT RAISE(ABORT, 'disk full'); END");
  h.start();
  // No probe signal: while the store fails, signals wait unread (the
  // events socket's own wait below outlasts the subscription's travel).
  // Valued at the entry price first (nothing gained or lost yet)...
  ASSERT_TRUE(h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (!topic.starts_with("PNL.EURUSD")) return false;
        auto line = h.decoder.decode_instrument_pnl(payload);
        return line && near(line->mark_price, 1.20);
      },
      wait_limit, [&] { h.publish_tick("EURUSD", 1.1999, 1.2001); }));
  // ...then 100 USD lost: past the limit of 50.
  const bool reducing = h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        return event && event->state == TradingState::reducing;
      },
      2000ms, [&] { h.publish_tick("EURUSD", 1.0999, 1.1001); });
  const auto stats = tp::test::read_text(h.stats_path());
  EXPECT_TRUE(reducing) << "daily_pnl " << tp::test::json_number(stats, "daily_pnl") << ", unrealized_pnl "
                        << tp::test::json_number(stats, "unrealized_pnl");
}

// A position whose PnL cannot be converted into the account currency (EURGBP
// with a USD account and no GBP/USD pair configured) is left out of the
// totals (complete = false); it must not keep the daily loss limit from
// arming, or one such line turns the limit off for the whole day.
TEST(ExecutorControls, AnUnconvertibleLineDoesNotKeepTheDailyLossLimitOff) {
  tp::test::TempDir dir;
  Harness h(dir);
  h.config.instruments = {{"EURUSD", 1.0850, 0.0001, 0.00005}, {"EURGBP", 0.8500, 0.0001, 0.00005}};
  h.config.risk.max_daily_loss = 50;
  h.dll.positions = {{"EURUSD", 1000}, {"EURGBP", 1000}};
  {
    // Carried from yesterday: both long 1000.
    ExecutorStore store(h.db_path(), tp::wall_ns());
    for (const auto& [id, sym, price] :
         {std::tuple{"sma.1.u", "EURUSD", 1.0851}, {"sma.1.g", "EURGBP", 0.85}}) {
      auto s = make_signal(id, sym);
      s.trigger_price = price;
      ASSERT_TRUE(store.record_accepted(s, intent_for(s, tp::wall_ns()), tp::wall_ns()));
      tp::proto::OrderReply fill;
      fill.client_order_id = std::string("C-") + id;
      fill.order_id = "B-" + fill.client_order_id;
      fill.status = tp::proto::OrderStatus::filled;
      fill.filled_quantity = 1000;
      fill.fill_price = price;
      store.record_outcome(fill.client_order_id, fill, tp::wall_ns());
    }
  }
  h.start();
  // Marked first: EURUSD at its entry, EURGBP 10 GBP up (not convertible).
  ASSERT_TRUE(h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        return event && !event->complete &&
               near(tp::test::json_number(tp::test::read_text(h.stats_path()), "marks"), 2);
      },
      wait_limit,
      [&] {
        h.publish_tick("EURUSD", 1.0850, 1.0852);
        h.publish_tick("EURGBP", 0.8599, 0.8601);
      }));
  // EURUSD falls 85.1 USD: past the limit.
  const bool reducing = h.wait_published(
      [&](const std::string& topic, tp::proto::Bytes payload) {
        if (topic != "PORTFOLIO") return false;
        auto event = h.decoder.decode_portfolio_event(payload);
        return event && event->state == TradingState::reducing;
      },
      2000ms,
      [&] {
        h.publish_tick("EURUSD", 0.9999, 1.0001);
        h.publish_tick("EURGBP", 0.8599, 0.8601);
      });
  const auto stats = tp::test::read_text(h.stats_path());
  EXPECT_TRUE(reducing) << "daily_pnl " << tp::test::json_number(stats, "daily_pnl") << ", unrealized_pnl "
                        << tp::test::json_number(stats, "unrealized_pnl") << ", portfolio_complete "
                        << tp::test::json_number(stats, "portfolio_complete");
}
