// Order round trips: signals pushed straight into the executor's PULL, final
// order events counted on its PUB; orders/s executor <-> dll_gateway with the
// durable stores, beside raw REQ/REP of the same payload sizes. Then, in the
// same deployment, a burst of 100 signals pushed at once against one signal
// alone: how long until every order of the burst is final, in round trips
// of one order.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"
#include "scenarios.hpp"
#include "support.hpp"

namespace tp::bench {

namespace {

double raw_reqrep(std::uint64_t count, bool pin) {
  const std::string request = proto::encode_to_string(
      proto::OrderRequest{"C-bench.0.1750000000000.1234", "bench.0.1750000000000.1234", "EURUSD",
                          proto::Side::buy, 1000, 1.085, tp::wall_ns()});
  const std::string reply = proto::encode_to_string(
      proto::OrderReply{"C-bench.0.1750000000000.1234", "SIM-000123", proto::OrderStatus::filled, 1000,
                        1.08512, "", false, tp::wall_ns()});
  std::string endpoint;
  std::atomic<bool> bound{false};
  std::thread rep([&] {
    pin_this_thread(pin ? 1 : -1);
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::rep);
    s.set(zmq::sockopt::linger, 0);
    s.bind("tcp://127.0.0.1:*");
    endpoint = s.get(zmq::sockopt::last_endpoint);
    bound = true;
    zmq::message_t m;
    for (std::uint64_t i = 0; i < count + 1; ++i) {
      (void)s.recv(m, zmq::recv_flags::none);
      s.send(zmq::buffer(reply), zmq::send_flags::none);
    }
  });
  double seconds = 0;
  std::thread req([&] {
    pin_this_thread(pin ? 0 : -1);
    while (!bound.load()) sleep_ms(1);
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::req);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    zmq::message_t m;
    s.send(zmq::buffer(request), zmq::send_flags::none);  // connection set-up
    (void)s.recv(m, zmq::recv_flags::none);
    const double t0 = now_s();
    for (std::uint64_t i = 0; i < count; ++i) {
      s.send(zmq::buffer(request), zmq::send_flags::none);
      (void)s.recv(m, zmq::recv_flags::none);
    }
    seconds = now_s() - t0;
  });
  req.join();
  rep.join();
  return seconds > 0 ? static_cast<double>(count) / seconds : 0;
}

struct OrdersResult {
  double orders_per_s = 0;
  std::uint64_t done = 0;
  std::uint64_t filled = 0;
  double one_order_us = 0;  // median: one signal pushed -> its final event
  double burst_us = 0;      // median: burst_size signals pushed -> the last final event
  bool complete = true;     // every one and every burst finished within 30 s
  // CPU time per order (all threads), in the round trip run and in the bursts.
  double executor_cpu_us = 0, dll_gateway_cpu_us = 0;
  double burst_executor_cpu_us = 0, burst_dll_gateway_cpu_us = 0;
  // The rest of the machine's work in the bursts: the gateway (quotes) and
  // this process (pushing the signals, reading their events).
  double burst_gateway_cpu_us = 0, burst_bench_cpu_us = 0;
};

// This process's CPU time, every thread (ZeroMQ's I/O thread included).
double own_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

constexpr std::uint64_t burst_size = 100;
constexpr int stats_interval_ms = 200;
constexpr int one_order_samples = 31;
constexpr int burst_samples = 25;  // a median of 5 moved by 2x between runs on this VM

OrdersResult pipeline_orders(const Options& o, PeakRss& peaks, std::uint64_t count) {
  const auto& symbols = four_majors();
  Deployment d(o, peaks, "order round trips", "[gateway]\nrate = 200\n", symbols, stats_interval_ms);
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 0);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "ORDER.");
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 0);
  push.set(zmq::sockopt::linger, 0);
  const Child& dll_gateway = d.start("dll_gateway", {}, 1);
  const Child& executor = d.start("executor", {}, 0);
  const Child& gateway = d.start("gateway", {}, 0);  // quotes for the simulated broker's fills
  sub.connect(d.endpoint("order_events"));
  push.connect(d.endpoint("signals"));
  const std::int64_t boot = tp::wall_ns() / tp::ns_per_ms;
  std::uint64_t next_id = 0;
  proto::Encoder enc;
  auto make_signal = [&](std::uint64_t i) {
    proto::TradingSignal s;
    s.signal_id = "bench.0." + std::to_string(boot) + "." + std::to_string(++next_id);
    s.strategy = "bench";
    s.instance = 0;
    s.instrument = symbols[i % symbols.size()];
    s.action = (i / symbols.size()) % 2 == 0 ? proto::Side::buy : proto::Side::sell;
    s.quantity = 1000;
    s.trigger_price = 1.0 + 0.01 * static_cast<double>(i % symbols.size());
    s.confidence = 1;
    s.created_ts_ns = tp::wall_ns();
    s.expires_ts_ns = s.created_ts_ns + 120'000'000'000;
    s.causation_seq = i + 1;
    s.causation_ts_ns = s.created_ts_ns;
    return std::string(enc.encode(s));
  };
  proto::Decoder dec;
  zmq::message_t topic, payload;
  // Returns the final order events read (filled ones counted in *filled).
  auto drain = [&](int wait_ms, std::uint64_t* filled) {
    std::uint64_t finals = 0;
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms));
    if (!(item.revents & ZMQ_POLLIN)) return finals;
    while (sub.recv(topic, zmq::recv_flags::dontwait)) {
      (void)sub.recv(payload, zmq::recv_flags::none);
      auto ev =
          dec.decode_order_event(proto::Bytes(static_cast<const std::byte*>(payload.data()), payload.size()));
      if (!ev || !proto::is_final(ev->status)) continue;
      ++finals;
      if (ev->status == proto::OrderStatus::filled && filled) ++*filled;
    }
    return finals;
  };
  // Warm-up: until one probe order fills (the broker has prices, every socket is up).
  std::uint64_t probe_filled = 0;
  const double deadline = now_s() + 30;
  while (probe_filled == 0) {
    check_interrupt();
    d.check_alive();
    if (now_s() > deadline) throw std::runtime_error("no probe order filled within 30 s");
    const auto p = make_signal(0);
    push.send(zmq::buffer(p), zmq::send_flags::none);
    const double until = now_s() + 0.2;
    while (probe_filled == 0 && now_s() < until) drain(20, &probe_filled);
  }
  while (drain(100, nullptr) > 0) {
  }
  OrdersResult r;
  std::vector<std::string> signals;
  for (std::uint64_t i = 0; i < count; ++i) signals.push_back(make_signal(i));
  // Where the time goes: every process of the deployment, and this one, share the machine's cores.
  struct Cpu {
    double executor, dll_gateway, gateway, bench;
  };
  auto cpu_now = [&] { return Cpu{executor.cpu_s(), dll_gateway.cpu_s(), gateway.cpu_s(), own_cpu_s()}; };
  auto per_order_us = [](double from, double to, std::uint64_t orders) {
    return orders > 0 ? (to - from) * 1e6 / static_cast<double>(orders) : 0;
  };
  const Cpu run_start = cpu_now();
  const double t0 = now_s();
  double t_last = t0;
  std::uint64_t sent = 0;
  const double end_by = t0 + 60 + static_cast<double>(count) / 200.0;
  while (r.done < count && now_s() < end_by) {
    check_interrupt();
    while (sent < count && push.send(zmq::buffer(signals[sent]), zmq::send_flags::dontwait)) ++sent;
    const auto n = drain(sent < count ? 0 : 100, &r.filled);
    if (n > 0) {
      r.done += n;
      t_last = now_s();
    } else if (sent == count) {
      d.check_alive();
    }
  }
  r.orders_per_s = t_last > t0 ? static_cast<double>(r.done) / (t_last - t0) : 0;
  const Cpu run_end = cpu_now();
  r.executor_cpu_us = per_order_us(run_start.executor, run_end.executor, r.done);
  r.dll_gateway_cpu_us = per_order_us(run_start.dll_gateway, run_end.dll_gateway, r.done);
  while (drain(100, nullptr) > 0) {
  }
  // The round trips leave thousands of pages in each store's write-ahead
  // log, checkpointed (copied, fdatasync'ed) at the first quiet moment on the
  // program's own thread: one order sent meanwhile waits for it, and the
  // median of the single orders below moved from 0.55 to 2.2 ms between runs.
  // A stats file is written on that thread too, so one written a stats
  // interval after the last final event comes after any such checkpoint.
  const auto settled_after = static_cast<std::int64_t>(tp::wall_ns() + 2 * stats_interval_ms * tp::ns_per_ms);
  const double settle_by = now_s() + 10;
  auto fresh = [&](const char* program) {
    return d.stat(program, "ts_ns") >= static_cast<double>(settled_after);
  };
  while (!(fresh("executor") && fresh("dll_gateway")) && now_s() < settle_by) {
    check_interrupt();
    drain(20, nullptr);
  }
  d.check_alive();

  // Pushes `n` signals at once; the time until n final events arrived (0
  // when they did not within 30 s).
  auto timed = [&](std::uint64_t n) {
    std::vector<std::string> burst;
    for (std::uint64_t i = 0; i < n; ++i) burst.push_back(make_signal(i));
    const double start = now_s();
    for (const auto& p : burst) push.send(zmq::buffer(p), zmq::send_flags::none);
    std::uint64_t finals = 0;
    while (finals < n && now_s() < start + 30) {
      check_interrupt();
      finals += drain(100, nullptr);
    }
    return finals < n ? 0.0 : (now_s() - start) * 1e6;
  };
  std::vector<double> one, burst;
  for (int i = 0; i < one_order_samples; ++i) one.push_back(timed(1));
  Cpu in_bursts{0, 0, 0, 0};
  for (int i = 0; i < burst_samples; ++i) {
    const Cpu before = cpu_now();
    burst.push_back(timed(burst_size));
    const Cpu after = cpu_now();
    in_bursts.executor += after.executor - before.executor;
    in_bursts.dll_gateway += after.dll_gateway - before.dll_gateway;
    in_bursts.gateway += after.gateway - before.gateway;
    in_bursts.bench += after.bench - before.bench;
    drain(50, nullptr);  // a pause: the reports of one burst out of the next one's way
  }
  const std::uint64_t burst_orders = burst_size * burst_samples;
  r.burst_executor_cpu_us = per_order_us(0, in_bursts.executor, burst_orders);
  r.burst_dll_gateway_cpu_us = per_order_us(0, in_bursts.dll_gateway, burst_orders);
  r.burst_gateway_cpu_us = per_order_us(0, in_bursts.gateway, burst_orders);
  r.burst_bench_cpu_us = per_order_us(0, in_bursts.bench, burst_orders);
  r.complete = std::count(one.begin(), one.end(), 0.0) + std::count(burst.begin(), burst.end(), 0.0) == 0;
  r.one_order_us = median(one);
  r.burst_us = median(burst);
  d.stop_all();
  return r;
}

std::string fmt_us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f us", us);
  return buf;
}

// The burst's floor: the CPU its orders took spread over every core, as if
// the processes overlapped perfectly. The two programs' alone, and with the
// gateway's and the bench's own (the signals' sender and the events' reader
// run on the same cores).
double two_programs_floor_us(const OrdersResult& po) {
  return (po.burst_executor_cpu_us + po.burst_dll_gateway_cpu_us) * static_cast<double>(burst_size) / cpus();
}
double machine_floor_us(const OrdersResult& po) {
  return two_programs_floor_us(po) +
         (po.burst_gateway_cpu_us + po.burst_bench_cpu_us) * static_cast<double>(burst_size) / cpus();
}

}  // namespace

void run_orders(const Options& o, PeakRss& peaks, Report& report) {
  std::fprintf(stderr, "== order round trips: %llu orders\n", static_cast<unsigned long long>(o.orders));
  std::vector<double> rr;
  for (int i = 0; i < o.reps; ++i) rr.push_back(raw_reqrep(std::max<std::uint64_t>(o.orders, 2000), o.pin));
  auto po = pipeline_orders(o, peaks, o.orders);
  report.rows.push_back(
      {"order round trips", "orders/s", median(rr), po.orders_per_s, ">= 1.0", 1.0, true,
       "durable: SQLite WAL, synchronous=NORMAL (executor dedupe + order journal, dll_gateway store); " +
           std::to_string(po.filled) + "/" + std::to_string(po.done) +
           " filled; CPU per order (all threads): executor " + fmt_us(po.executor_cpu_us) + ", dll_gateway " +
           fmt_us(po.dll_gateway_cpu_us)});
  Row burst{"burst of 100 signals",
            "us",
            po.one_order_us,
            po.burst_us,
            "< 10x one round trip",
            10,
            false,
            "baseline column = one signal's round trip through the same deployment (signal pushed -> final "
            "order event, median of " +
                std::to_string(one_order_samples) + "); pipeline = " + std::to_string(burst_size) +
                " signals pushed at once -> the last final event (median of " +
                std::to_string(burst_samples) + "); CPU per order in the bursts: executor " +
                fmt_us(po.burst_executor_cpu_us) + ", dll_gateway " + fmt_us(po.burst_dll_gateway_cpu_us) +
                ", gateway " + fmt_us(po.burst_gateway_cpu_us) + ", this bench (sender and reader) " +
                fmt_us(po.burst_bench_cpu_us) + "; at that CPU a burst needs " +
                fmt_us(two_programs_floor_us(po)) + " on " + std::to_string(cpus()) +
                " cores even if the two programs never waited for each other, " +
                fmt_us(machine_floor_us(po)) + " with the gateway's and the bench's CPU"};
  burst.valid = po.complete;
  report.rows.push_back(std::move(burst));
}

}  // namespace tp::bench
