// pipeline_bench: runs the real programs and, in the same run, raw libzmq
// doing the same socket work with no logic, and prints one table (baseline,
// pipeline figure, ratio, target) that it also writes as JSON (--out).
//
//   tick throughput  gateway -> 1 strategy, zero gaps, >= --ticks ticks,
//                    vs raw PUB -> SUB of the same two frames, zero loss;
//   fan-out          gateway -> 4 sharded strategies (16 instruments),
//                    aggregate ticks/s, vs raw PUB -> 4 SUBs;
//   tick -> fill     at a steady 10,000 ticks/s, every_nth making a signal
//                    for 1 in 50 ticks: gateway send -> executor's fill, vs a
//                    raw chain PUB/SUB -> PUSH/PULL -> REQ/REP at the same rate;
//   order trips      signals pushed straight into the executor's PULL:
//                    orders/s executor <-> dll_gateway with the durable stores,
//                    vs raw REQ/REP of the same payload sizes;
//   CURVE            raw PUB/SUB throughput with CURVE on and off (the
//                    programs' CURVE row is "pending" until they support it);
//   memory           VmHWM of every program, read from /proc before it stops;
//                    --soak S runs the default deployment for S seconds and
//                    samples VmRSS every 5 s.
//
// Baseline and pipeline use the same transport (tcp://127.0.0.1, ports
// found free at run time), the same frames and high-water marks. Raw sides
// run as threads of this process, each with its own zmq context (so its own
// I/O thread), which is the thread layout of the programs.
// Children are started with fork/exec in their own process group and with
// PR_SET_PDEATHSIG, so that none outlives the driver.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "common/security.hpp"
#include "common/clock.hpp"
#include "common/sharding.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) { g_interrupted.store(true); }

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

void check_interrupt() {
  if (g_interrupted.load()) throw Interrupted();
}

double now_s() { return static_cast<double>(tp::monotonic_ns()) / 1e9; }

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Polls `pred` every `interval_ms` until it is true (true) or `timeout_s` passes (false).
bool wait_until(const std::function<bool()>& pred, double timeout_s, int interval_ms = 10) {
  const double deadline = now_s() + timeout_s;
  while (true) {
    check_interrupt();
    if (pred()) return true;
    if (now_s() > deadline) return false;
    sleep_ms(interval_ms);
  }
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The number after "key": in a stats file (flat enough for this), searching
// from `from` (the position of an enclosing object's key for nested ones).
std::optional<double> json_number(const std::string& text, std::string_view key, std::size_t from = 0) {
  const std::string needle = "\"" + std::string(key) + "\":";
  auto pos = text.find(needle, from);
  if (pos == std::string::npos) return std::nullopt;
  const char* start = text.c_str() + pos + needle.size();
  char* end = nullptr;
  double v = std::strtod(start, &end);
  if (end == start) return std::nullopt;
  return v;
}

std::optional<double> json_nested(const std::string& text, std::string_view object, std::string_view key) {
  auto pos = text.find("\"" + std::string(object) + "\":");
  if (pos == std::string::npos) return std::nullopt;
  return json_number(text, key, pos);
}

int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

long proc_status_kb(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return -1;
}

void pin_this_thread(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);  // 0 = the calling thread
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - (q > 0 ? 1 : 0);
  return v[std::min(idx, v.size() - 1)];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

// ---- child processes --------------------------------------------------------

class Child {
 public:
  Child(const std::string& name, const std::vector<std::string>& argv, const fs::path& log, int cpu)
      : name_(name) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string log_s = log.string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        ::sched_setaffinity(0, sizeof set, &set);
      }
      int fd = ::open(log_s.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  bool alive() {
    if (reaped_) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      reaped_ = true;
      exit_status_ = st;
      return false;
    }
    return true;
  }
  long vm_hwm_kb() const { return reaped_ ? -1 : proc_status_kb(pid_, "VmHWM"); }
  long vm_rss_kb() const { return reaped_ ? -1 : proc_status_kb(pid_, "VmRSS"); }
  // SIGTERM, then SIGKILL after `grace_s`. Returns the wait status.
  int stop(double grace_s = 5.0) {
    if (!alive()) return exit_status_;
    ::kill(pid_, SIGTERM);
    const double deadline = now_s() + grace_s;
    while (alive() && now_s() < deadline) sleep_ms(10);
    if (alive()) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      reaped_ = true;
      exit_status_ = st;
    }
    return exit_status_;
  }

 private:
  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_status_ = 0;
};

struct Options {
  fs::path bin_dir;
  fs::path out;
  std::uint64_t ticks = 2'000'000;
  std::uint64_t fanout_ticks = 2'000'000;
  double latency_rate = 10'000;
  double latency_seconds = 10;
  int every_nth = 50;
  std::uint64_t orders = 5000;
  int search_steps = 3;
  int reps = 3;
  bool pin = false;
  int soak_seconds = 0;
  bool keep = false;
  std::string only;  // comma-separated sections to run; empty = all
  bool want(const std::string& section) const {
    return only.empty() || ("," + only + ",").find("," + section + ",") != std::string::npos;
  }
};

// Peak RSS per program over the whole benchmark.
std::map<std::string, long> g_peak_kb;

void note_peak(Child& c) {
  const long kb = c.vm_hwm_kb();
  if (kb <= 0) return;
  const std::string prog = c.name().substr(0, c.name().find(':'));
  g_peak_kb[prog] = std::max(g_peak_kb[prog], kb);
}

// A deployment in a temporary directory: config with free tcp ports, run dir,
// logs; the programs it starts are stopped (and killed if need be) with it.
class Deployment {
 public:
  Deployment(const Options& o, const std::string& label, const std::string& extra_toml,
             const std::vector<std::string>& symbols, int stats_interval_ms = 20)
      : opts_(o) {
    // TP_BENCH_DIR (e.g. /dev/shm) moves the deployments off the disk: tells
    // disk stalls (fsync, writeback) from the programs' own cost.
    const char* base = std::getenv("TP_BENCH_DIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tp_bench_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + tmpl);
    dir_ = tmpl;
    run_dir_ = dir_ / "run";
    fs::create_directories(run_dir_ / "logs");
    for (const char* name : {"ticks", "signals", "order_events", "orders", "dead_letters"})
      endpoints_[name] = "tcp://127.0.0.1:" + std::to_string(free_tcp_port());
    std::ostringstream t;
    t << "# pipeline_bench: " << label << "\n[run]\ndir = \"" << run_dir_.string() << "\"\n"
      << "stats_interval_ms = " << stats_interval_ms << "\n\n[endpoints]\n";
    for (const auto& [k, v] : endpoints_) t << k << " = \"" << v << "\"\n";
    t << "\n";
    for (std::size_t i = 0; i < symbols.size(); ++i) {
      t << "[[instruments]]\nsymbol = \"" << symbols[i] << "\"\nprice = " << (1.0 + 0.01 * static_cast<double>(i))
        << "\nspread = 0.0001\nvolatility = 0.00005\n\n";
    }
    t << extra_toml;
    config_ = dir_ / "bench.toml";
    std::ofstream(config_) << t.str();
  }
  ~Deployment() {
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) (*it)->stop(2.0);
    children_.clear();
    if (!opts_.keep) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  Child& start(const std::string& name, const std::vector<std::string>& args, int cpu = -1) {
    const std::string program = name.substr(0, name.find(':'));
    std::vector<std::string> argv = {(opts_.bin_dir / program).string(), "--config", config_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string log_name = name;
    std::replace(log_name.begin(), log_name.end(), ':', '-');
    children_.push_back(
        std::make_unique<Child>(name, argv, run_dir_ / "logs" / (log_name + ".log"), opts_.pin ? cpu : -1));
    return *children_.back();
  }

  // Records every child's peak RSS, then stops them in reverse start order.
  void stop_all() {
    for (auto& c : children_) note_peak(*c);
    for (auto it = children_.rbegin(); it != children_.rend(); ++it) (*it)->stop(5.0);
  }

  std::string stats(const std::string& name) const { return read_file(run_dir_ / (name + ".stats.json")); }
  double stat(const std::string& name, std::string_view key) const {
    return json_number(stats(name), key).value_or(0);
  }
  const std::string& endpoint(const std::string& name) const { return endpoints_.at(name); }
  std::vector<std::unique_ptr<Child>>& children() { return children_; }
  void check_alive() {
    for (auto& c : children_) {
      if (!c->alive())
        throw std::runtime_error(c->name() + " exited early; see " +
                                 (run_dir_ / "logs").string() + " (rerun with --keep)");
    }
  }

 private:
  const Options& opts_;
  fs::path dir_, run_dir_, config_;
  std::map<std::string, std::string> endpoints_;
  std::vector<std::unique_ptr<Child>> children_;
};

// ---- payloads ---------------------------------------------------------------

std::string tick_payload(const std::string& symbol, std::uint64_t seq) {
  proto::TickEvent t{symbol, 1.08501, 1.08512, 1'500'000, 2'300'000, tp::wall_ns(), seq, tp::wall_ns()};
  return proto::encode_to_string(t);
}

// Steady pacing like the gateway's Pacer: everything due is sent in one batch
// (at most 1024), then the sender sleeps until the next one is due.
class RawPacer {
 public:
  explicit RawPacer(double rate) : rate_(rate), start_(tp::monotonic_ns()) {}
  // How many may go now (flat out: a batch).
  std::uint64_t due(std::uint64_t sent) {
    if (rate_ <= 0) return 1024;
    const double elapsed = static_cast<double>(tp::monotonic_ns() - start_) / 1e9;
    const auto target = static_cast<std::uint64_t>(elapsed * rate_) + 1;
    const std::uint64_t n = target > sent ? target - sent : 0;
    if (n == 0) {
      const auto next_ns = start_ + static_cast<std::int64_t>(static_cast<double>(sent) / rate_ * 1e9);
      const auto wait = next_ns - tp::monotonic_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    return std::min<std::uint64_t>(n, 1024);
  }

 private:
  double rate_;
  std::int64_t start_;
};

struct CurveKeys {
  std::string server_public, server_secret, client_public, client_secret;
  static CurveKeys make() {
    char sp[41], ss[41], cp[41], cs[41];
    if (zmq_curve_keypair(sp, ss) != 0 || zmq_curve_keypair(cp, cs) != 0)
      throw std::runtime_error("zmq_curve_keypair failed (libzmq without CURVE?)");
    return {sp, ss, cp, cs};
  }
};

// ---- raw PUB -> n SUB throughput -------------------------------------------

struct ThroughputResult {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t expected = 0;
  std::uint64_t gaps = 0;  // pipeline: sequence gaps; raw: messages lost
  double seconds = 0;      // first send -> last receive
  double rate() const { return seconds > 0 ? static_cast<double>(received) / seconds : 0; }
  bool clean() const { return gaps == 0 && received == expected && expected > 0; }
};

// `shards`: the topics each SUB subscribes to; ticks go round-robin over `all`.
ThroughputResult raw_pubsub(const std::vector<std::string>& all, const std::vector<std::vector<std::string>>& shards,
                            std::uint64_t count, double rate, bool curve, bool pin) {
  constexpr int hwm = 100000;         // gateway sndhwm (config default)
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

// ---- pipeline: gateway -> n strategies ---------------------------------------

// A [security] section with fresh key files in `dir` (CURVE on every tcp link).
std::string curve_section(const fs::path& dir) {
  tp::write_key_files(dir.string(), "server", tp::generate_curve_keypair());
  auto client = tp::generate_curve_keypair();
  tp::write_key_files(dir.string(), "client", client);
  std::ofstream(dir / "authorized") << client.public_key << "\n";
  const auto k = dir.string();
  return "\n[security]\ncurve = true\nserver_public_key = \"" + k + "/server.key\"\nserver_secret_key = \"" + k +
         "/server.key_secret\"\nclient_public_key = \"" + k + "/client.key\"\nclient_secret_key = \"" + k +
         "/client.key_secret\"\nauthorized_clients = \"" + k + "/authorized\"\n";
}

ThroughputResult pipeline_ticks(const Options& o, const std::vector<std::string>& symbols, std::uint32_t shards,
                                std::uint64_t count, double rate, bool curve = false) {
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
  Deployment d(o, curve ? "tick throughput, CURVE" : "tick throughput", extra, symbols);
  std::vector<Child*> strategies;
  for (std::uint32_t k = 0; k < shards; ++k) {
    strategies.push_back(&d.start("strategy:" + std::to_string(k),
                                  {"--shard", std::to_string(k), "--shards", std::to_string(shards)},
                                  1));
  }
  // A strategy writes its stats once its sockets are connected.
  for (std::uint32_t k = 0; k < shards; ++k) {
    const std::string name = "strategy-" + std::to_string(k);
    if (!wait_until([&] { return !d.stats(name).empty(); }, 20))
      throw std::runtime_error(name + " did not start");
  }
  d.start("gateway", {"--rate", std::to_string(rate), "--max-ticks", std::to_string(count), "--start-delay-ms", "500"},
          0);
  auto total = [&] {
    std::uint64_t n = 0;
    for (std::uint32_t k = 0; k < shards; ++k)
      n += static_cast<std::uint64_t>(d.stat("strategy-" + std::to_string(k), "ticks_received"));
    return n;
  };
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
  (void)total;
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

// Flat out first; while there is loss, bisect the rate for a few steps.
// Returns the best clean run (or the last run when none was clean).
struct Search {
  ThroughputResult best;
  double rate_limit = 0;  // 0 = flat out
  std::vector<std::string> log;
};

Search search_rate(const std::function<ThroughputResult(double)>& run, int steps, const std::string& label) {
  Search s;
  auto note = [&](double rate, const ThroughputResult& r) {
    char b[256];
    std::snprintf(b, sizeof b, "%s: rate %s -> %.0f ticks/s, %llu/%llu received, %llu gaps/lost", label.c_str(),
                  rate > 0 ? std::to_string(static_cast<long long>(rate)).c_str() : "flat-out", r.rate(),
                  static_cast<unsigned long long>(r.received), static_cast<unsigned long long>(r.expected),
                  static_cast<unsigned long long>(r.gaps));
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

// ---- tick -> fill latency ----------------------------------------------------

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
  const std::string reply_payload = proto::encode_to_string(proto::OrderReply{
      "C-sma_crossover.1.1750000000000.1234", "SIM-000123", proto::OrderStatus::filled, 1000, 1.08512, "", false,
      tp::wall_ns()});
  auto stamp = [](std::string& p, std::size_t at, std::int64_t v) { std::memcpy(p.data() + at, &v, sizeof v); };
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
LatencyResult pipeline_latency(const Options& o, double rate, double seconds, int every_nth) {
  // One instrument, as in the raw chain: every_nth counts per instrument, so
  // with several instruments fed round-robin their signals would come in
  // bursts (one per instrument within a few ticks) and queue behind each
  // other's order round trips, which the raw chain's evenly spaced
  // forwards never do.
  const std::vector<std::string> symbols = {"EURUSD"};
  const std::string extra = "[strategy]\nname = \"every_nth\"\ninstances = 1\nsignal_ttl_ms = 10000\n\n"
                            "[strategy.every_nth]\nn = " +
                            std::to_string(every_nth) + "\n";
  Deployment d(o, "tick->fill latency", extra, symbols, 200);
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
      auto ev = dec.decode_order_event(proto::Bytes(static_cast<const std::byte*>(payload.data()), payload.size()));
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
  for (auto& c : d.children()) note_peak(*c);
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

// ---- order round trips ----------------------------------------------------

double raw_reqrep(std::uint64_t count, bool pin) {
  const std::string request = proto::encode_to_string(proto::OrderRequest{
      "C-bench.0.1750000000000.1234", "bench.0.1750000000000.1234", "EURUSD", proto::Side::buy, 1000, 1.085,
      tp::wall_ns()});
  const std::string reply = proto::encode_to_string(proto::OrderReply{
      "C-bench.0.1750000000000.1234", "SIM-000123", proto::OrderStatus::filled, 1000, 1.08512, "", false,
      tp::wall_ns()});
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
};

OrdersResult pipeline_orders(const Options& o, std::uint64_t count) {
  const std::vector<std::string> symbols = {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"};
  Deployment d(o, "order round trips", "[gateway]\nrate = 200\n", symbols, 200);
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 0);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "ORDER.");
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 0);
  push.set(zmq::sockopt::linger, 0);
  d.start("dll_gateway", {}, 1);
  d.start("executor", {}, 0);
  d.start("gateway", {}, 0);  // quotes for the simulated broker's fills
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
      auto ev = dec.decode_order_event(proto::Bytes(static_cast<const std::byte*>(payload.data()), payload.size()));
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
  d.stop_all();
  return r;
}

// ---- soak ---------------------------------------------------------------

std::string soak(const Options& o) {
  // The default deployment: default instruments, rates and strategy; only
  // the endpoints (free ports) and the run dir differ.
  const std::vector<std::string> symbols = {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"};
  Deployment d(o, "soak (default deployment)", "", symbols, 1000);
  d.start("dead_letter", {});
  d.start("dll_gateway", {});
  d.start("executor", {});
  d.start("strategy:0", {"--shard", "0", "--shards", "2"});
  d.start("strategy:1", {"--shard", "1", "--shards", "2"});
  d.start("gateway", {});
  struct Series {
    std::vector<long> rss;
  };
  std::map<std::string, Series> series;
  const int every = 5;
  const double t0 = now_s();
  std::fprintf(stderr, "soak: %d s, sampling VmRSS every %d s\n", o.soak_seconds, every);
  while (now_s() - t0 < o.soak_seconds) {
    check_interrupt();
    d.check_alive();
    for (auto& c : d.children()) series[c->name()].rss.push_back(c->vm_rss_kb());
    sleep_ms(every * 1000);
  }
  std::map<std::string, long> hwm;
  for (auto& c : d.children()) hwm[c->name()] = c->vm_hwm_kb();
  const double fills = d.stat("executor", "fills");
  d.stop_all();
  std::ostringstream js;
  std::printf("\n== soak: default deployment for %d s (%.0f fills); VmRSS in MB (target <= 30, no growth)\n",
              o.soak_seconds, fills);
  std::printf("%-14s %10s %10s %10s %10s %8s\n", "program", "warm RSS", "final RSS", "max RSS", "VmHWM", "growth");
  js << "{\"seconds\": " << o.soak_seconds << ", \"sample_every_s\": " << every << ", \"programs\": [";
  bool first = true;
  for (auto& [name, s] : series) {
    if (s.rss.empty()) continue;
    // Warm-up: the first fifth of the run (at least one sample).
    const auto warm_idx = std::min(s.rss.size() - 1, std::max<std::size_t>(1, s.rss.size() / 5));
    const long warm = s.rss[warm_idx], fin = s.rss.back();
    const long mx = *std::max_element(s.rss.begin() + static_cast<long>(warm_idx), s.rss.end());
    std::printf("%-14s %10.1f %10.1f %10.1f %10.1f %+7.1f%%\n", name.c_str(), static_cast<double>(warm) / 1024,
                static_cast<double>(fin) / 1024, static_cast<double>(mx) / 1024,
                static_cast<double>(hwm[name]) / 1024,
                warm > 0 ? 100.0 * static_cast<double>(fin - warm) / static_cast<double>(warm) : 0.0);
    js << (first ? "" : ", ") << "{\"program\": \"" << name << "\", \"warm_rss_kb\": " << warm
       << ", \"final_rss_kb\": " << fin << ", \"max_rss_after_warmup_kb\": " << mx << ", \"vm_hwm_kb\": " << hwm[name]
       << ", \"rss_kb_samples\": [";
    for (std::size_t i = 0; i < s.rss.size(); ++i) js << (i ? ", " : "") << s.rss[i];
    js << "]}";
    first = false;
  }
  js << "]}";
  return js.str();
}

// ---- the report -----------------------------------------------------------

struct Row {
  std::string name;
  std::string unit;
  std::optional<double> baseline, pipeline;
  std::string target;        // e.g. ">= 0.70"
  std::optional<double> ratio_target;
  bool higher_is_better = true;
  std::string note;
  // False when the pipeline figure broke the row's own condition (a
  // throughput search that found no gap-free rate): then it is not "met",
  // whatever the ratio.
  bool valid = true;
  std::optional<double> ratio() const {
    if (!baseline || !pipeline || *baseline <= 0) return std::nullopt;
    return *pipeline / *baseline;
  }
  std::optional<bool> met() const {
    auto r = ratio();
    if (!r || !ratio_target) return std::nullopt;
    if (!valid) return false;
    return higher_is_better ? *r >= *ratio_target : *r <= *ratio_target;
  }
};

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o + "\"";
}

std::string json_opt(const std::optional<double>& v) {
  if (!v) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", *v);
  return b;
}

std::string cell(const std::optional<double>& v) {
  if (!v) return "n/a";
  char b[64];
  if (*v >= 1000) std::snprintf(b, sizeof b, "%.0f", *v);
  else std::snprintf(b, sizeof b, "%.1f", *v);
  return b;
}

void usage() {
  std::puts(
      "pipeline_bench [--bin-dir DIR] [--out FILE] [--ticks N] [--quick|--smoke] [--latency-seconds S]\n"
      "               [--orders N] [--search-steps K] [--reps R] [--pin] [--soak SECONDS] [--keep]\n"
      "  --quick   200k ticks, 3 s latency, 1000 orders, 1 search step\n"
      "  --smoke   20k ticks, 1.5 s latency, 200 orders, no search (ctest: figures exist, no bounds)\n"
      "  --pin     taskset-style pinning: gateway/raw publishers on CPU 0, subscribers on CPU 1\n"
      "  --soak S  run the default deployment S seconds, sampling VmRSS every 5 s (only that)\n"
      "  --only L  only these sections (comma list): throughput,fanout,latency,orders,curve\n"
      "            (curve needs throughput); memory rows cover what ran\n"
      "environment: TP_BENCH_DIR=DIR puts the deployments' run dirs there (default /tmp)");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.bin_dir = fs::read_symlink("/proc/self/exe").parent_path();
  o.out = "pipeline_bench.json";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bin-dir") o.bin_dir = next();
    else if (a == "--out") o.out = next();
    else if (a == "--ticks") o.ticks = o.fanout_ticks = std::stoull(next());
    else if (a == "--latency-seconds") o.latency_seconds = std::stod(next());
    else if (a == "--orders") o.orders = std::stoull(next());
    else if (a == "--search-steps") o.search_steps = std::stoi(next());
    else if (a == "--reps") o.reps = std::max(1, std::stoi(next()));
    else if (a == "--pin") o.pin = true;
    else if (a == "--keep") o.keep = true;
    else if (a == "--soak") o.soak_seconds = std::stoi(next());
    else if (a == "--only") o.only = next();
    else if (a == "--quick") {
      o.ticks = o.fanout_ticks = 200'000;
      o.latency_seconds = 3;
      o.orders = 1000;
      o.search_steps = 1;
      o.reps = 1;
    } else if (a == "--smoke") {
      o.ticks = o.fanout_ticks = 20'000;
      o.latency_seconds = 1.5;
      o.orders = 200;
      o.search_steps = 0;
      o.reps = 1;
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  for (const char* p : {"gateway", "strategy", "executor", "dll_gateway", "dead_letter"}) {
    if (::access((o.bin_dir / p).c_str(), X_OK) != 0) {
      std::fprintf(stderr, "pipeline_bench: %s not found in %s (--bin-dir)\n", p, o.bin_dir.c_str());
      return 2;
    }
  }

  try {
    if (o.soak_seconds > 0) {
      const auto js = soak(o);
      std::ofstream(o.out) << "{\"soak\": " << js << "}\n";
      std::printf("written %s\n", o.out.c_str());
      return 0;
    }
    std::vector<Row> rows;
    std::vector<std::string> notes;
    const std::vector<std::string> one_symbol_set = {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"};

    Search raw1, pipe1, raw4, pipe4;  // empty for a section not run
    const std::vector<std::vector<std::string>> one_sub = {one_symbol_set};
    // 1. tick throughput, one strategy (subscribes to all four instruments).
    if (o.want("throughput")) {
    std::fprintf(stderr, "== tick throughput: %llu ticks\n", static_cast<unsigned long long>(o.ticks));
    raw1 = search_rate([&](double rate) { return raw_pubsub(one_symbol_set, one_sub, o.ticks, rate, false, o.pin); },
                            o.search_steps, "raw PUB->SUB");
    pipe1 = search_rate([&](double rate) { return pipeline_ticks(o, one_symbol_set, 1, o.ticks, rate); },
                             o.search_steps, "gateway->strategy");
    rows.push_back({"tick throughput, 1 strategy, zero gaps", "ticks/s", raw1.best.rate(), pipe1.best.rate(),
                    ">= 0.70", 0.70, true,
                    std::string(pipe1.best.clean() ? "" : "pipeline NOT gap-free; ") +
                        (raw1.best.clean() ? "" : "raw NOT loss-free; ") + "gateway rate " +
                        (pipe1.rate_limit > 0 ? std::to_string(static_cast<long long>(pipe1.rate_limit)) : "flat-out")});
    rows.back().valid = pipe1.best.clean();

    }

    // 2. fan-out: 16 instruments over 4 shards (4 each).
    if (o.want("fanout")) {
    std::vector<std::string> symbols16;
    std::vector<std::vector<std::string>> shard_syms(4);
    for (int i = 0; symbols16.size() < 16 && i < 10000; ++i) {
      const std::string s = "SYM" + std::to_string(i);
      auto k = tp::shard_of(s, 4);
      if (shard_syms[k].size() < 4) {
        shard_syms[k].push_back(s);
        symbols16.push_back(s);
      }
    }
    std::fprintf(stderr, "== fan-out: 4 strategies, 16 instruments, %llu ticks\n",
                 static_cast<unsigned long long>(o.fanout_ticks));
    raw4 = search_rate([&](double rate) { return raw_pubsub(symbols16, shard_syms, o.fanout_ticks, rate, false, o.pin); },
                            o.search_steps, "raw PUB->4 SUB");
    pipe4 = search_rate([&](double rate) { return pipeline_ticks(o, symbols16, 4, o.fanout_ticks, rate); },
                             o.search_steps, "gateway->4 strategies");
    rows.push_back({"fan-out, 4 strategies, aggregate", "ticks/s", raw4.best.rate(), pipe4.best.rate(), ">= 0.70",
                    0.70, true,
                    std::string(pipe4.best.clean() ? "" : "pipeline NOT gap-free; ") +
                        (raw4.best.clean() ? "" : "raw NOT loss-free; ") + "gateway rate " +
                        (pipe4.rate_limit > 0 ? std::to_string(static_cast<long long>(pipe4.rate_limit)) : "flat-out")});
    rows.back().valid = pipe4.best.clean();

    }

    // 3. tick -> fill latency.
    if (o.want("latency")) {
    std::fprintf(stderr, "== tick->fill latency: %.0f ticks/s for %.1f s, 1 in %d ticks signals\n", o.latency_rate,
                 o.latency_seconds, o.every_nth);
    auto rawc = raw_chain(o.latency_rate, o.latency_seconds, o.every_nth, o.pin);
    auto pipl = pipeline_latency(o, o.latency_rate, o.latency_seconds, o.every_nth);
    std::fprintf(stderr, "  raw chain: %zu samples; pipeline: %zu fills (executor histogram: %.0f)\n",
                 rawc.total_us.size(), pipl.total_us.size(), pipl.exec_count);
    rows.push_back({"tick->fill p50", "us", percentile(rawc.total_us, 0.5), percentile(pipl.total_us, 0.5), "<= 1.25",
                    1.25, false, "executor stats p50 " + cell(pipl.exec_p50)});
    rows.push_back({"tick->fill p99", "us", percentile(rawc.total_us, 0.99), percentile(pipl.total_us, 0.99), "<= 1.5",
                    1.5, false, "executor stats p99 " + cell(pipl.exec_p99)});
    rows.push_back({"tick->fill p99.9", "us", percentile(rawc.total_us, 0.999), percentile(pipl.total_us, 0.999), "-",
                    std::nullopt, false,
                    "executor stats p99.9 " + cell(pipl.exec_p999) + "; " + std::to_string(pipl.total_us.size()) +
                        " fills"});
    rows.push_back({"hop gateway->strategy p50", "us", percentile(rawc.hop1_us, 0.5),
                    pipl.strat_p50 > 0 ? std::optional<double>(pipl.strat_p50) : std::nullopt, "-", std::nullopt,
                    false, "raw: PUB->SUB; pipeline: strategy tick_latency_us"});
    rows.push_back({"hop gateway->strategy p99", "us", percentile(rawc.hop1_us, 0.99),
                    pipl.strat_p99 > 0 ? std::optional<double>(pipl.strat_p99) : std::nullopt, "-", std::nullopt,
                    false, ""});
    rows.push_back({"hop tick->executor accept p50", "us",
                    percentile(rawc.hop1_us, 0.5) + percentile(rawc.hop2_us, 0.5), percentile(pipl.hop2_us, 0.5), "-",
                    std::nullopt, false,
                    "raw: PUB/SUB + PUSH/PULL; pipeline: incl. decode, journal, SQLite write-ahead commit"});
    rows.push_back({"hop executor accept->fill p50", "us", percentile(rawc.hop3_us, 0.5), percentile(pipl.hop3_us, 0.5),
                    "-", std::nullopt, false, "raw: REQ/REP; pipeline: REQ/REP + dll_gateway store + plugin"});

    }

    // 4. order round trips.
    if (o.want("orders")) {
    std::fprintf(stderr, "== order round trips: %llu orders\n", static_cast<unsigned long long>(o.orders));
    std::vector<double> rr;
    for (int i = 0; i < o.reps; ++i) rr.push_back(raw_reqrep(std::max<std::uint64_t>(o.orders, 2000), o.pin));
    auto po = pipeline_orders(o, o.orders);
    rows.push_back({"order round trips", "orders/s", median(rr), po.orders_per_s, ">= 0.5", 0.5, true,
                    "durable: SQLite WAL, synchronous=NORMAL (executor dedupe + order journal, dll_gateway store); " +
                        std::to_string(po.filled) + "/" + std::to_string(po.done) + " filled"});

    }

    // 5. CURVE.
    if (o.want("curve")) {
    std::fprintf(stderr, "== CURVE: raw PUB->SUB with and without\n");
    const bool have_curve = zmq_has("curve") != 0;
    std::optional<double> curve_on, curve_off, pipe_curve;
    bool pipe_curve_clean = false;
    if (have_curve) {
      curve_off = raw1.best.rate();
      auto c = search_rate(
          [&](double rate) { return raw_pubsub(one_symbol_set, one_sub, o.ticks, rate, true, o.pin); },
          o.search_steps, "raw PUB->SUB CURVE");
      curve_on = c.best.rate();
      auto p = search_rate([&](double rate) { return pipeline_ticks(o, one_symbol_set, 1, o.ticks, rate, true); },
                           o.search_steps, "gateway->strategy CURVE");
      pipe_curve = p.best.rate();
      pipe_curve_clean = p.best.clean();
    }
    rows.push_back({"raw CURVE on vs off", "ticks/s", curve_off, curve_on, "-", std::nullopt, true,
                    have_curve ? "baseline = raw without CURVE, figure = raw with CURVE" : "libzmq without CURVE"});
    rows.push_back({"tick throughput with CURVE", "ticks/s", curve_on, pipe_curve, ">= 0.70", 0.70, true,
                    std::string(pipe_curve_clean ? "" : "pipeline NOT gap-free; ") +
                        "baseline = raw PUB->SUB with CURVE; pipeline = gateway->strategy with [security] curve"});
    rows.back().valid = pipe_curve_clean;

    }

    // 6. memory.
    for (const auto& [prog, kb] : g_peak_kb) {
      rows.push_back({"peak RSS " + prog, "MB", 30.0, static_cast<double>(kb) / 1024.0, "<= 1.0 (30 MB)", 1.0, false,
                      "VmHWM over this benchmark's runs; baseline column = the 30 MB budget"});
    }

    // ---- print and write -------------------------------------------------
    char date[64];
    const std::time_t tt = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
    double load[3] = {0, 0, 0};
    if (::getloadavg(load, 3) < 0) load[0] = -1;
    std::printf("\n== pipeline_bench %s, %u CPUs, load %.2f, tcp://127.0.0.1, %s\n", date,
                std::thread::hardware_concurrency(), load[0], o.pin ? "pinned (publisher CPU 0, readers CPU 1)" : "not pinned");
    std::printf("%-36s %-9s %12s %12s %8s %-15s %s\n", "figure", "unit", "raw", "pipeline", "ratio", "target", "met");
    for (const auto& r : rows) {
      auto ratio = r.ratio();
      char rb[32] = "n/a";
      if (ratio) std::snprintf(rb, sizeof rb, "%.2f", *ratio);
      auto met = r.met();
      std::printf("%-36s %-9s %12s %12s %8s %-15s %s\n", r.name.c_str(), r.unit.c_str(), cell(r.baseline).c_str(),
                  r.pipeline ? cell(r.pipeline).c_str() : "n/a (pending)", rb, r.target.c_str(),
                  met ? (*met ? "yes" : "NO") : "-");
    }
    std::printf("notes:\n");
    for (const auto& r : rows)
      if (!r.note.empty()) std::printf("  %s: %s\n", r.name.c_str(), r.note.c_str());
    for (const auto* s : {&raw1, &pipe1, &raw4, &pipe4})
      for (const auto& l : s->log) std::printf("  search %s\n", l.c_str());

    std::ostringstream js;
    js << "{\n  \"date\": " << json_str(date) << ",\n  \"cpus\": " << std::thread::hardware_concurrency()
       << ",\n  \"load_avg_1m\": " << load[0] << ",\n  \"transport\": \"tcp://127.0.0.1\",\n  \"pinned\": "
       << (o.pin ? "true" : "false") << ",\n  \"settings\": {\"ticks\": " << o.ticks
       << ", \"latency_rate\": " << o.latency_rate << ", \"latency_seconds\": " << o.latency_seconds
       << ", \"every_nth\": " << o.every_nth << ", \"orders\": " << o.orders << ", \"search_steps\": " << o.search_steps
       << ", \"only\": " << json_str(o.only.empty() ? "all" : o.only) << ", \"hwm\": {\"gateway_sndhwm\": 100000, \"strategy_rcvhwm\": 30000}"
       << ", \"durability\": \"SQLite WAL, synchronous=NORMAL (dll_gateway: locking_mode=EXCLUSIVE)\"},\n  \"rows\": [";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& r = rows[i];
      auto met = r.met();
      js << (i ? "," : "") << "\n    {\"name\": " << json_str(r.name) << ", \"unit\": " << json_str(r.unit)
         << ", \"baseline\": " << json_opt(r.baseline) << ", \"pipeline\": " << json_opt(r.pipeline)
         << ", \"ratio\": " << json_opt(r.ratio()) << ", \"target\": " << json_str(r.target)
         << ", \"met\": " << (met ? (*met ? "true" : "false") : "null")
         << ", \"pending\": " << (r.pipeline ? "false" : "true") << ", \"note\": " << json_str(r.note) << "}";
    }
    js << "\n  ],\n  \"search_log\": [";
    bool first = true;
    for (const auto* s : {&raw1, &pipe1, &raw4, &pipe4})
      for (const auto& l : s->log) {
        js << (first ? "" : ",") << "\n    " << json_str(l);
        first = false;
      }
    js << "\n  ]\n}\n";
    std::ofstream f(o.out);
    f << js.str();
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", o.out.c_str());
      return 1;
    }
    std::printf("written %s\n", o.out.c_str());
    return 0;
  } catch (const Interrupted&) {
    std::fprintf(stderr, "pipeline_bench: interrupted\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_bench: %s\n", e.what());
    return 1;
  }
}
