// Tick -> fill latency at a steady 10,000 ticks/s, every_nth making a signal
// for 1 in 50 ticks: gateway send -> the executor's FILLED event, and its
// hops, beside a raw chain PUB/SUB -> PUSH/PULL -> REQ/REP at the same rate
// that forwards every n-th tick and answers with an OrderReply-sized reply.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"
#include "raw_traffic.hpp"
#include "scenarios.hpp"
#include "support.hpp"

namespace tp::bench {

namespace {

struct LatencyResult {
  std::vector<double> total_us, hop1_us, hop2_us, hop3_us;  // raw: sub, push/pull, req/rep
  // pipeline extras
  double exec_p50 = 0, exec_p99 = 0, exec_p999 = 0, exec_count = 0;
  double strat_p50 = 0, strat_p99 = 0;
};

LatencyResult raw_chain(double rate, double seconds, int every_nth, bool pin) {
  LatencyResult r;
  std::string ep_pub, ep_push, ep_rep;
  std::atomic<int> bound{0};
  std::atomic<bool> done{false}, sub_ready{false};
  const std::string topic = "TICK.EURUSD";
  const std::string base = tick_payload("EURUSD", 1);
  const std::string reply_payload = proto::encode_to_string(
      proto::OrderReply{"C-sma_crossover.1.1750000000000.1234", "SIM-000123", proto::OrderStatus::filled,
                        1000, 1.08512, "", false, tp::wall_ns()});
  auto stamp = [](std::string& p, std::size_t at, std::int64_t v) {
    std::memcpy(p.data() + at, &v, sizeof v);
  };
  auto read_stamp = [](const void* data, std::size_t at) {
    std::int64_t v = 0;
    std::memcpy(&v, static_cast<const char*>(data) + at, sizeof v);
    return v;
  };
  // D: REP, echoes an OrderReply-sized answer.
  std::thread rep([&] {
    pin_this_thread(pin ? 1 : -1);
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::rep);
    s.set(zmq::sockopt::linger, 0);
    s.bind("tcp://127.0.0.1:*");
    ep_rep = s.get(zmq::sockopt::last_endpoint);
    ++bound;
    zmq::message_t m;
    while (!done.load()) {
      zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      (void)s.recv(m, zmq::recv_flags::none);
      s.send(zmq::buffer(reply_payload), zmq::send_flags::none);
    }
  });
  // C: PULL (binds, as the executor's signals socket) -> REQ.
  std::vector<double> total, hop2, hop3;
  std::thread exec([&] {
    pin_this_thread(pin ? 1 : -1);
    zmq::context_t ctx(1);
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.set(zmq::sockopt::linger, 0);
    pull.bind("tcp://127.0.0.1:*");
    ep_push = pull.get(zmq::sockopt::last_endpoint);
    ++bound;
    while (bound.load() < 3 && !done.load()) sleep_ms(1);
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(ep_rep);
    zmq::message_t m, reply;
    while (!done.load()) {
      zmq::pollitem_t item{pull.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      (void)pull.recv(m, zmq::recv_flags::none);
      const auto t_in = tp::wall_ns();
      req.send(zmq::buffer(m.data(), m.size()), zmq::send_flags::none);
      (void)req.recv(reply, zmq::recv_flags::none);
      const auto t_fill = tp::wall_ns();
      total.push_back(static_cast<double>(t_fill - read_stamp(m.data(), 0)) / 1e3);
      hop2.push_back(static_cast<double>(t_in - read_stamp(m.data(), 8)) / 1e3);
      hop3.push_back(static_cast<double>(t_fill - t_in) / 1e3);
    }
  });
  // A: PUB (binds, as the gateway).
  std::atomic<bool> pub_go{false};
  std::thread pub([&] {
    pin_this_thread(pin ? 0 : -1);
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::pub);
    s.set(zmq::sockopt::sndhwm, 100000);
    s.set(zmq::sockopt::linger, 0);
    s.bind("tcp://127.0.0.1:*");
    ep_pub = s.get(zmq::sockopt::last_endpoint);
    ++bound;
    std::string p = base;
    while (!sub_ready.load() && !done.load()) {
      s.send(zmq::buffer(std::string_view("SYNC")), zmq::send_flags::sndmore);
      s.send(zmq::buffer(std::string_view("SYNC")), zmq::send_flags::none);
      sleep_ms(1);
    }
    RawPacer pacer(rate);
    const auto total_n = static_cast<std::uint64_t>(rate * seconds);
    std::uint64_t i = 0;
    while (i < total_n && !done.load()) {
      const auto n = std::min<std::uint64_t>(pacer.due(i), total_n - i);
      for (std::uint64_t k = 0; k < n; ++k, ++i) {
        stamp(p, 0, tp::wall_ns());
        s.send(zmq::buffer(topic), zmq::send_flags::sndmore);
        s.send(zmq::buffer(p), zmq::send_flags::none);
      }
    }
    pub_go = true;
  });
  // B: SUB -> PUSH every n-th.
  std::vector<double> hop1;
  std::thread strat([&] {
    pin_this_thread(pin ? 1 : -1);
    zmq::context_t ctx(1);
    while (bound.load() < 3) sleep_ms(1);
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::rcvhwm, 100000);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, topic);
    sub.set(zmq::sockopt::subscribe, "SYNC");
    sub.connect(ep_pub);
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    push.connect(ep_push);
    zmq::message_t t, m;
    std::uint64_t n = 0;
    while (!done.load()) {
      zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      while (sub.recv(t, zmq::recv_flags::dontwait)) {
        (void)sub.recv(m, zmq::recv_flags::none);
        if (t.size() == 4) {
          sub_ready = true;
          continue;
        }
        const auto now = tp::wall_ns();
        hop1.push_back(static_cast<double>(now - read_stamp(m.data(), 0)) / 1e3);
        if (++n % static_cast<std::uint64_t>(every_nth) == 0) {
          std::string fwd(static_cast<const char*>(m.data()), m.size());
          stamp(fwd, 8, tp::wall_ns());
          push.send(zmq::buffer(fwd), zmq::send_flags::none);
        }
      }
    }
  });
  wait_until([&] { return pub_go.load(); }, seconds + 30, 20);
  sleep_ms(200);  // the last forwarded ones finish their round trip
  done = true;
  pub.join();
  strat.join();
  exec.join();
  rep.join();
  check_interrupt();
  r.total_us = std::move(total);
  r.hop1_us = std::move(hop1);
  r.hop2_us = std::move(hop2);
  r.hop3_us = std::move(hop3);
  return r;
}

// One strategy (every_nth), executor, dll_gateway; the driver listens to the
// executor's order events and times FILLED ones from their stamps.
LatencyResult pipeline_latency(const Options& o, PeakRss& peaks, double rate, double seconds, int every_nth) {
  // One instrument, as in the raw chain: every_nth counts per instrument, so
  // with several instruments fed round-robin their signals would come in
  // bursts (one per instrument within a few ticks) and queue behind each
  // other's order round trips, which the raw chain's evenly spaced
  // forwards never do.
  const std::vector<std::string> symbols = {"EURUSD"};
  const std::string extra =
      "[strategy]\nname = \"every_nth\"\ninstances = 1\nsignal_ttl_ms = 10000\n\n"
      "[strategy.every_nth]\nn = " +
      std::to_string(every_nth) + "\n";
  Deployment d(o, peaks, "tick->fill latency", extra, symbols, 200);
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 0);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "ORDER.");
  d.start("dll_gateway", {}, 1);
  d.start("executor", {}, 1);
  sub.connect(d.endpoint("order_events"));
  d.start("strategy:0", {"--shard", "0", "--shards", "1"}, 1);
  if (!wait_until([&] { return !d.stats("strategy-0").empty() && !d.stats("executor").empty(); }, 20))
    throw std::runtime_error("strategy/executor did not start");
  d.start("gateway", {"--rate", std::to_string(rate), "--start-delay-ms", "300"}, 0);
  LatencyResult r;
  proto::Decoder dec;
  std::vector<double> total, to_exec, exec_to_fill;
  const double end = now_s() + 0.3 + seconds;
  zmq::message_t topic, payload;
  int skipped = 0;
  while (now_s() < end) {
    check_interrupt();
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (!(item.revents & ZMQ_POLLIN)) {
      d.check_alive();
      continue;
    }
    while (sub.recv(topic, zmq::recv_flags::dontwait)) {
      (void)sub.recv(payload, zmq::recv_flags::none);
      auto ev =
          dec.decode_order_event(proto::Bytes(static_cast<const std::byte*>(payload.data()), payload.size()));
      if (!ev || ev->status != proto::OrderStatus::filled || ev->causation_ts_ns <= 0) continue;
      if (skipped < 10) {  // connection set-up and first SQLite pages
        ++skipped;
        continue;
      }
      total.push_back(static_cast<double>(ev->event_ts_ns - ev->causation_ts_ns) / 1e3);
      to_exec.push_back(static_cast<double>(ev->created_ts_ns - ev->causation_ts_ns) / 1e3);
      exec_to_fill.push_back(static_cast<double>(ev->event_ts_ns - ev->created_ts_ns) / 1e3);
    }
  }
  // Stop the gateway first so that the final stats of the others are complete.
  d.note_peaks();
  for (auto& c : d.children())
    if (c->name() == "gateway") c->stop();
  d.stop_all();
  const auto ex = d.stats("executor");
  r.exec_p50 = json_nested(ex, "latency_tick_to_fill_us", "p50").value_or(0);
  r.exec_p99 = json_nested(ex, "latency_tick_to_fill_us", "p99").value_or(0);
  r.exec_p999 = json_nested(ex, "latency_tick_to_fill_us", "p999").value_or(0);
  r.exec_count = json_nested(ex, "latency_tick_to_fill_us", "count").value_or(0);
  const auto st = d.stats("strategy-0");
  r.strat_p50 = json_nested(st, "tick_latency_us", "p50").value_or(0);
  r.strat_p99 = json_nested(st, "tick_latency_us", "p99").value_or(0);
  r.total_us = std::move(total);
  r.hop2_us = std::move(to_exec);
  r.hop3_us = std::move(exec_to_fill);
  return r;
}

}  // namespace

void run_latency(const Options& o, PeakRss& peaks, Report& report) {
  auto& rows = report.rows;
  std::fprintf(stderr, "== tick->fill latency: %.0f ticks/s for %.1f s, 1 in %d ticks signals\n",
               o.latency_rate, o.latency_seconds, o.every_nth);
  auto rawc = raw_chain(o.latency_rate, o.latency_seconds, o.every_nth, o.pin);
  auto pipl = pipeline_latency(o, peaks, o.latency_rate, o.latency_seconds, o.every_nth);
  std::fprintf(stderr, "  raw chain: %zu samples; pipeline: %zu fills (executor histogram: %.0f)\n",
               rawc.total_us.size(), pipl.total_us.size(), pipl.exec_count);
  rows.push_back({"tick->fill p50", "us", percentile(rawc.total_us, 0.5), percentile(pipl.total_us, 0.5),
                  "<= 1.25", 1.25, false, "executor stats p50 " + cell(pipl.exec_p50)});
  rows.push_back({"tick->fill p99", "us", percentile(rawc.total_us, 0.99), percentile(pipl.total_us, 0.99),
                  "<= 1.5", 1.5, false, "executor stats p99 " + cell(pipl.exec_p99)});
  rows.push_back({"tick->fill p99.9", "us", percentile(rawc.total_us, 0.999),
                  percentile(pipl.total_us, 0.999), "-", std::nullopt, false,
                  "executor stats p99.9 " + cell(pipl.exec_p999) + "; " +
                      std::to_string(pipl.total_us.size()) + " fills"});
  rows.push_back({"hop gateway->strategy p50", "us", percentile(rawc.hop1_us, 0.5),
                  pipl.strat_p50 > 0 ? std::optional<double>(pipl.strat_p50) : std::nullopt, "-",
                  std::nullopt, false, "raw: PUB->SUB; pipeline: strategy tick_latency_us"});
  rows.push_back({"hop gateway->strategy p99", "us", percentile(rawc.hop1_us, 0.99),
                  pipl.strat_p99 > 0 ? std::optional<double>(pipl.strat_p99) : std::nullopt, "-",
                  std::nullopt, false, ""});
  rows.push_back({"hop tick->executor accept p50", "us",
                  percentile(rawc.hop1_us, 0.5) + percentile(rawc.hop2_us, 0.5),
                  percentile(pipl.hop2_us, 0.5), "-", std::nullopt, false,
                  "raw: PUB/SUB + PUSH/PULL; pipeline: incl. decode, journal, SQLite write-ahead commit"});
  rows.push_back({"hop executor accept->fill p50", "us", percentile(rawc.hop3_us, 0.5),
                  percentile(pipl.hop3_us, 0.5), "-", std::nullopt, false,
                  "raw: REQ/REP; pipeline: REQ/REP + dll_gateway store + plugin"});
}

}  // namespace tp::bench
