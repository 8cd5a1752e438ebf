#include "tick_stream.hpp"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/security.hpp"
#include "proto/codec.hpp"
#include "raw_traffic.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace tp::bench {

ThroughputResult raw_pubsub(const std::vector<std::string>& all,
                            const std::vector<std::vector<std::string>>& shards, std::uint64_t count,
                            double rate, bool curve, bool pin) {
  constexpr int hwm = 100000;        // gateway sndhwm (config default)
  constexpr int sub_rcvhwm = 30000;  // strategy's tick rcvhwm (strategy_node.cpp)
  std::vector<std::string> topics, payloads;
  for (const auto& s : all) {
    topics.push_back(std::string(proto::tick_topic(s)));
    payloads.push_back(tick_payload(s, 1));
  }
  const CurveKeys keys = curve ? CurveKeys::make() : CurveKeys{};
  std::string endpoint;
  std::atomic<bool> bound{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<std::int64_t> t_start{0};
  const auto n_subs = shards.size();
  std::vector<std::uint64_t> got(n_subs, 0), expect(n_subs, 0);
  std::vector<std::int64_t> t_last(n_subs, 0);
  for (std::size_t k = 0; k < n_subs; ++k) {
    std::set<std::string> mine;
    for (const auto& s : shards[k]) mine.insert(std::string(proto::tick_topic(s)));
    for (std::uint64_t i = 0; i < count; ++i)
      if (mine.count(topics[i % topics.size()])) ++expect[k];
  }
  std::atomic<std::uint64_t> sent{0};
  std::thread pub([&] {
    pin_this_thread(pin ? 0 : -1);
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::pub);
    s.set(zmq::sockopt::sndhwm, hwm);
    s.set(zmq::sockopt::linger, 2000);
    if (curve) {
      s.set(zmq::sockopt::curve_server, 1);
      s.set(zmq::sockopt::curve_secretkey, keys.server_secret);
    }
    s.bind("tcp://127.0.0.1:*");
    endpoint = s.get(zmq::sockopt::last_endpoint);
    bound = true;
    // Sync: a marker until every SUB has seen one (slow joiners lose nothing).
    const std::string sync = "SYNC";
    while (ready.load() < static_cast<int>(n_subs) && !g_interrupted.load()) {
      s.send(zmq::buffer(sync), zmq::send_flags::sndmore);
      s.send(zmq::buffer(sync), zmq::send_flags::none);
      sleep_ms(1);
    }
    while (!go.load()) sleep_ms(1);
    RawPacer pacer(rate);
    t_start = tp::wall_ns();
    std::uint64_t i = 0;
    while (i < count && !g_interrupted.load()) {
      const auto n = std::min<std::uint64_t>(pacer.due(i), count - i);
      for (std::uint64_t k = 0; k < n; ++k, ++i) {
        const auto j = i % topics.size();
        s.send(zmq::buffer(topics[j]), zmq::send_flags::sndmore);
        s.send(zmq::buffer(payloads[j]), zmq::send_flags::none);
      }
    }
    sent = i;
    // Keep the socket open until the subscribers are done or give up.
    while (go.load() && !g_interrupted.load()) sleep_ms(5);
  });
  std::vector<std::thread> subs;
  for (std::size_t k = 0; k < n_subs; ++k) {
    subs.emplace_back([&, k] {
      pin_this_thread(pin ? 1 : -1);
      zmq::context_t ctx(1);
      zmq::socket_t s(ctx, zmq::socket_type::sub);
      s.set(zmq::sockopt::rcvhwm, sub_rcvhwm);
      s.set(zmq::sockopt::linger, 0);
      if (curve) {
        s.set(zmq::sockopt::curve_serverkey, keys.server_public);
        s.set(zmq::sockopt::curve_publickey, keys.client_public);
        s.set(zmq::sockopt::curve_secretkey, keys.client_secret);
      }
      for (const auto& sym : shards[k]) s.set(zmq::sockopt::subscribe, std::string(proto::tick_topic(sym)));
      s.set(zmq::sockopt::subscribe, "SYNC");
      while (!bound.load()) sleep_ms(1);
      s.connect(endpoint);
      zmq::message_t topic, payload;
      bool synced = false;
      std::uint64_t n = 0;
      while (n < expect[k] && !g_interrupted.load()) {
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(synced ? 2000 : 100));
        if (!(item.revents & ZMQ_POLLIN)) {
          if (synced && go.load() && sent.load() == count) break;  // nothing more is coming
          continue;
        }
        while (n < expect[k]) {
          if (!s.recv(topic, zmq::recv_flags::dontwait)) break;
          (void)s.recv(payload, zmq::recv_flags::none);
          if (topic.size() == 4 && std::memcmp(topic.data(), "SYNC", 4) == 0) {
            if (!synced) {
              synced = true;
              ready.fetch_add(1);
            }
            continue;
          }
          ++n;
        }
        t_last[k] = tp::wall_ns();
      }
      got[k] = n;
    });
  }
  if (!wait_until([&] { return ready.load() == static_cast<int>(n_subs); }, 20)) {
    go = false;
    g_interrupted = true;  // unblocks the threads; the run is broken anyway
  }
  go = true;
  for (auto& t : subs) t.join();
  go = false;
  pub.join();
  check_interrupt();
  ThroughputResult r;
  r.sent = sent.load();
  r.expected = 0;
  std::int64_t last = 0;
  for (std::size_t k = 0; k < n_subs; ++k) {
    r.received += got[k];
    r.expected += expect[k];
    last = std::max(last, t_last[k]);
  }
  r.gaps = r.expected - r.received;
  r.seconds = static_cast<double>(last - t_start.load()) / 1e9;
  return r;
}

namespace {

// A [security] section with fresh key files in `dir` (CURVE on every tcp link).
std::string curve_section(const fs::path& dir) {
  tp::write_key_files(dir.string(), "server", tp::generate_curve_keypair());
  auto client = tp::generate_curve_keypair();
  tp::write_key_files(dir.string(), "client", client);
  std::ofstream(dir / "authorized") << client.public_key << "\n";
  const auto k = dir.string();
  return "\n[security]\ncurve = true\nserver_public_key = \"" + k + "/server.key\"\nserver_secret_key = \"" +
         k + "/server.key_secret\"\nclient_public_key = \"" + k + "/client.key\"\nclient_secret_key = \"" +
         k + "/client.key_secret\"\nauthorized_clients = \"" + k + "/authorized\"\n";
}

}  // namespace

ThroughputResult pipeline_ticks(const Options& o, PeakRss& peaks, const std::vector<std::string>& symbols,
                                std::uint32_t shards, std::uint64_t count, double rate, bool curve) {
  std::string extra =
      "[strategy]\nname = \"every_nth\"\ninstances = " + std::to_string(shards) +
      "\nfeed_timeout_ms = 60000\n\n[strategy.every_nth]\nn = 1000000000\n\n[gateway]\nheartbeat_ms = 500\n";
  std::string key_dir = (fs::temp_directory_path() / "tp_bench_keys_XXXXXX").string();
  if (curve) {
    if (!::mkdtemp(key_dir.data())) throw std::runtime_error("mkdtemp failed in " + key_dir);
    extra += curve_section(key_dir);
  }
  struct RemoveKeys {
    bool on;
    std::string dir;
    ~RemoveKeys() {
      if (on) fs::remove_all(dir);
    }
  } remove_keys{curve, key_dir};
  Deployment d(o, peaks, curve ? "tick throughput, CURVE" : "tick throughput", extra, symbols);
  std::vector<Child*> strategies;
  for (std::uint32_t k = 0; k < shards; ++k) {
    strategies.push_back(&d.start("strategy:" + std::to_string(k),
                                  {"--shard", std::to_string(k), "--shards", std::to_string(shards)}, 1));
  }
  // A strategy writes its stats once its sockets are connected.
  for (std::uint32_t k = 0; k < shards; ++k) {
    const std::string name = "strategy-" + std::to_string(k);
    if (!wait_until([&] { return !d.stats(name).empty(); }, 20))
      throw std::runtime_error(name + " did not start");
  }
  d.start("gateway",
          {"--rate", std::to_string(rate), "--max-ticks", std::to_string(count), "--start-delay-ms", "500"},
          0);
  // Done when every tick arrived, or when the count stops moving after the
  // gateway has published everything (lost ticks never come).
  std::uint64_t last_n = 0;
  double last_move = now_s();
  std::int64_t t_done = 0;
  const double deadline = now_s() + 60 + static_cast<double>(count) / 50'000.0;
  while (true) {
    check_interrupt();
    d.check_alive();
    std::uint64_t n = 0;
    std::int64_t ts = 0;
    for (std::uint32_t k = 0; k < shards; ++k) {
      const auto s = d.stats("strategy-" + std::to_string(k));
      n += static_cast<std::uint64_t>(json_number(s, "ticks_received").value_or(0));
      ts = std::max(ts, static_cast<std::int64_t>(json_number(s, "ts_ns").value_or(0)));
    }
    if (n != last_n) {
      last_n = n;
      last_move = now_s();
      t_done = ts;
    }
    if (n >= count) break;
    const bool published = d.stat("gateway", "ticks_published") >= static_cast<double>(count);
    if (published && now_s() - last_move > 1.5) break;
    if (now_s() > deadline) break;
    sleep_ms(10);
  }
  ThroughputResult r;
  r.expected = count;
  r.received = last_n;
  r.sent = static_cast<std::uint64_t>(d.stat("gateway", "ticks_published"));
  for (std::uint32_t k = 0; k < shards; ++k)
    r.gaps += static_cast<std::uint64_t>(d.stat("strategy-" + std::to_string(k), "gaps"));
  const auto first = static_cast<std::int64_t>(d.stat("gateway", "first_tick_ns"));
  r.seconds = first > 0 && t_done > first ? static_cast<double>(t_done - first) / 1e9 : 0;
  d.stop_all();
  return r;
}

Search search_rate(const std::function<ThroughputResult(double)>& run, int steps, const std::string& label) {
  Search s;
  auto note = [&](double rate, const ThroughputResult& r) {
    char b[256];
    std::snprintf(b, sizeof b, "%s: rate %s -> %.0f ticks/s, %llu/%llu received, %llu gaps/lost",
                  label.c_str(), rate > 0 ? std::to_string(static_cast<long long>(rate)).c_str() : "flat-out",
                  r.rate(), static_cast<unsigned long long>(r.received),
                  static_cast<unsigned long long>(r.expected), static_cast<unsigned long long>(r.gaps));
    s.log.push_back(b);
    std::fprintf(stderr, "  %s\n", b);
  };
  auto r = run(0);
  note(0, r);
  if (r.clean()) {
    s.best = r;
    return s;
  }
  s.best = r;
  bool have_clean = false;
  double hi = r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 100'000;
  double lo = 0;
  // When the reader is the bottleneck (CURVE decryption, say) the rate it
  // kept up with flat out is a far better first guess than the sender's.
  double rate = r.rate() > 0 ? std::min(hi * 0.8, r.rate() * 0.9) : hi * 0.8;
  for (int i = 0; i < steps; ++i) {
    auto t = run(rate);
    note(rate, t);
    if (t.clean()) {
      if (!have_clean || t.rate() > s.best.rate()) {
        s.best = t;
        s.rate_limit = rate;
      }
      have_clean = true;
      lo = rate;
      rate = (lo + hi) / 2;
    } else {
      hi = rate;
      rate = lo > 0 ? (lo + hi) / 2 : rate * 0.7;
    }
  }
  return s;
}

}  // namespace tp::bench
