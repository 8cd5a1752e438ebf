// micro_bench: Google Benchmark micro-benchmarks of the hot-path pieces, each
// beside the baseline it is judged against.
//   codec/*      tp::proto::Encoder / tp::proto::Decoder for every message type (the
//                fast path; codec/decode_into into a reused message), beside
//   codec_ref/*  the Decoder's reference path (msgpack-c object tree), and
//   plain/*      msgpack-c packing the same fields (MSGPACK_DEFINE_ARRAY) into a
//                reused sbuffer, and msgpack::unpack (reused zone) + convert;
//   plain_v1/*   the same decode through msgpack-c's v1 parser (no per-unpack
//                stack allocations), the "dec v1" column;
//   indicator/*  Sma, Ema, Rsi, RollingMin, RollingMax at windows 20, 200, 2000;
//   tick_path/*  a strategy's whole per-tick work (topic lookup, decode, seq
//                tracking, feed monitor, latency histogram, strategy update), as
//                StrategyNode::on_tick does it, for 10..10000 instruments
//                (tick_path_stdmap/*: with the std::map it used before);
//   gateway/*    the gateway's per-tick work before the socket (feed + encode);
//   dedupe/*     the executor's durable signal-id lookup (SQLite, WAL/NORMAL)
//                in a database of TP_BENCH_DEDUPE_IDS ids (default 100000);
//   risk/*       the executor's pre-trade risk check;
//   desk/*       the executor's whole work per order without sockets: decide,
//                record, answer and report, on a real store.
// Every benchmark also reports allocs_per_op (global operator new is counted).
// After the runs a summary prints (from CPU time per op) the codec/plain ratios (target <= 1.5) and
// the flatness of the per-tick cost over windows and instrument counts
// (target: max/min <= 1.2); --summary_out=FILE writes the same as JSON.
// Every other argument goes to Google Benchmark (--benchmark_filter=...).
#include <benchmark/benchmark.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <msgpack.hpp>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/histogram.hpp"
#include "dll_gateway/order_desk.hpp"
#include "dll_gateway/order_store.hpp"
#include "executor/execution_desk.hpp"
#include "executor/risk.hpp"
#include "executor/store.hpp"
#include "gateway/synthetic_feed.hpp"
#include "proto/codec.hpp"
#include "proto/messages.hpp"
#include "strategy/feed.hpp"
#include "strategy/strategies.hpp"
#include "tp/indicators.hpp"

// ---- allocation counting ----------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

MSGPACK_ADD_ENUM(tp::proto::Side);
MSGPACK_ADD_ENUM(tp::proto::OrderStatus);
MSGPACK_ADD_ENUM(tp::proto::AckStatus);
MSGPACK_ADD_ENUM(tp::proto::OrderType);
MSGPACK_ADD_ENUM(tp::proto::TimeInForce);

namespace {

// Counts allocations over a benchmark's timed loop.
class AllocScope {
 public:
  explicit AllocScope(benchmark::State& state) : state_(state), start_(g_allocs.load()) {}
  ~AllocScope() {
    const auto n = g_allocs.load() - start_;
    state_.counters["allocs_per_op"] =
        benchmark::Counter(static_cast<double>(n), benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  std::uint64_t start_;
};

// ---- the same messages as plain msgpack-c structs ---------------------------
// Each holds the envelope ([type, version]) and the fields in wire order, so
// that both sides produce the same bytes and the comparison is the codec's
// own overhead (field checks, validation, error values).

struct PlainTick : tp::proto::TickEvent {
  std::uint8_t t = 1;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, instrument, bid, ask, bid_volume, ask_volume, source_ts_ns, seq, gateway_ts_ns)
};
struct PlainHeartbeat : tp::proto::Heartbeat {
  std::uint8_t t = 2;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, source, seq, ts_ns, ticks_sent)
};
struct PlainSignal : tp::proto::TradingSignal {
  std::uint8_t t = 3;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, signal_id, strategy, instance, instrument, action, quantity, trigger_price,
                       confidence, created_ts_ns, expires_ts_ns, causation_seq, causation_ts_ns, order_type,
                       limit_price, time_in_force, good_till_ns)
};
struct PlainOrderRequest : tp::proto::OrderRequest {
  std::uint8_t t = 4;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, client_order_id, signal_id, instrument, side, quantity, price_hint, sent_ts_ns,
                       expires_ts_ns, order_type, limit_price, time_in_force, good_till_ns)
};
struct PlainOrderQuery : tp::proto::OrderQuery {
  std::uint8_t t = 5;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, client_order_id, sent_ts_ns)
};
struct PlainOrderReply : tp::proto::OrderReply {
  std::uint8_t t = 6;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, client_order_id, order_id, status, filled_quantity, fill_price, reason,
                       duplicate, broker_ts_ns)
};
struct PlainOrderEvent : tp::proto::OrderEvent {
  std::uint8_t t = 7;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, order_id, client_order_id, signal_id, instrument, side, status, quantity,
                       filled_quantity, fill_price, reason, created_ts_ns, event_ts_ns, causation_ts_ns)
};
struct PlainSignalAck : tp::proto::SignalAck {
  std::uint8_t t = 8;
  std::uint32_t v = 1;
  MSGPACK_DEFINE_ARRAY(t, v, signal_id, status, reason, ts_ns, cancel)
};
struct PlainDeadLetter : tp::proto::DeadLetter {
  std::uint8_t t = 9;
  std::uint32_t v = 1;
  // `original` is msgpack bin on the wire; pack it through a bin view.
  template <class Packer>
  void msgpack_pack(Packer& p) const {
    p.pack_array(8).pack(t).pack(v).pack(source).pack(reason).pack(detail).pack(ts_ns);
    p.pack_bin(static_cast<std::uint32_t>(original.size()));
    p.pack_bin_body(original.data(), static_cast<std::uint32_t>(original.size()));
    p.pack(key);
  }
  void msgpack_unpack(const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 7) throw msgpack::type_error();
    const auto* f = o.via.array.ptr;
    f[0].convert(t);
    f[1].convert(v);
    f[2].convert(source);
    f[3].convert(reason);
    f[4].convert(detail);
    f[5].convert(ts_ns);
    if (f[6].type != msgpack::type::BIN) throw msgpack::type_error();
    original.assign(f[6].via.bin.ptr, f[6].via.bin.size);
    if (o.via.array.size > 7) f[7].convert(key);
  }
};

constexpr std::int64_t t0 = 1'750'000'000'000'000'000;

tp::proto::TickEvent sample_tick() {
  return {"EURUSD", 1.08501, 1.08512, 1'500'000, 2'300'000, t0, 123456, t0 + 2500};
}
tp::proto::Heartbeat sample_heartbeat() { return {"gateway", 42, t0, 1'000'000}; }
tp::proto::TradingSignal sample_signal() {
  return {"sma_crossover.1.1750000000000.1234",
          "sma_crossover",
          1,
          "EURUSD",
          tp::proto::Side::buy,
          1000,
          1.08512,
          0.75,
          t0,
          t0 + 5'000'000'000,
          123456,
          t0 - 1000};
}
tp::proto::OrderRequest sample_order_request() {
  return {"C-sma_crossover.1.1750000000000.1234",
          "sma_crossover.1.1750000000000.1234",
          "EURUSD",
          tp::proto::Side::sell,
          1000,
          1.08501,
          t0,
          t0 + 5'000'000'000};
}
tp::proto::OrderQuery sample_order_query() { return {"C-sma_crossover.1.1750000000000.1234", t0}; }
tp::proto::OrderReply sample_order_reply() {
  return {"C-sma_crossover.1.1750000000000.1234",
          "SIM-000123",
          tp::proto::OrderStatus::filled,
          1000,
          1.08512,
          "",
          false,
          t0};
}
tp::proto::OrderEvent sample_order_event() {
  return {"SIM-000123",
          "C-sma_crossover.1.1750000000000.1234",
          "sma_crossover.1.1750000000000.1234",
          "EURUSD",
          tp::proto::Side::buy,
          tp::proto::OrderStatus::filled,
          1000,
          1000,
          1.08512,
          "",
          t0,
          t0 + 90'000,
          t0 - 1000};
}
tp::proto::SignalAck sample_signal_ack() {
  return {"sma_crossover.1.1750000000000.1234", tp::proto::AckStatus::accepted, "", t0};
}
tp::proto::DeadLetter sample_dead_letter() {
  return {"strategy:1", "malformed", "truncated msgpack", t0, std::string(64, '\x93')};
}

template <class T>
tp::proto::Result<T> decode_with(tp::proto::Decoder& d, tp::proto::Bytes b) {
  if constexpr (std::is_same_v<T, tp::proto::TickEvent>)
    return d.decode_tick(b);
  else if constexpr (std::is_same_v<T, tp::proto::Heartbeat>)
    return d.decode_heartbeat(b);
  else if constexpr (std::is_same_v<T, tp::proto::TradingSignal>)
    return d.decode_signal(b);
  else if constexpr (std::is_same_v<T, tp::proto::OrderRequest>)
    return d.decode_order_request(b);
  else if constexpr (std::is_same_v<T, tp::proto::OrderQuery>)
    return d.decode_order_query(b);
  else if constexpr (std::is_same_v<T, tp::proto::OrderReply>)
    return d.decode_order_reply(b);
  else if constexpr (std::is_same_v<T, tp::proto::OrderEvent>)
    return d.decode_order_event(b);
  else if constexpr (std::is_same_v<T, tp::proto::SignalAck>)
    return d.decode_signal_ack(b);
  else
    return d.decode_dead_letter(b);
}

template <class T, class Plain>
void register_codec(const std::string& name, T (*make)()) {
  benchmark::RegisterBenchmark(("codec/encode/" + name).c_str(), [make](benchmark::State& state) {
    const T msg = make();
    tp::proto::Encoder enc;
    AllocScope a(state);
    for (auto _ : state) benchmark::DoNotOptimize(enc.encode(msg).size());
  });
  benchmark::RegisterBenchmark(("plain/encode/" + name).c_str(), [make](benchmark::State& state) {
    Plain msg;
    static_cast<T&>(msg) = make();
    msgpack::sbuffer buf(512);
    AllocScope a(state);
    for (auto _ : state) {
      buf.clear();
      msgpack::pack(buf, msg);
      benchmark::DoNotOptimize(buf.size());
    }
  });
  benchmark::RegisterBenchmark(("codec/decode/" + name).c_str(), [make](benchmark::State& state) {
    const std::string bytes = tp::proto::encode_to_string(make());
    tp::proto::Decoder dec;
    AllocScope a(state);
    for (auto _ : state) {
      auto r = decode_with<T>(dec, tp::proto::as_bytes(bytes));
      if (!r) state.SkipWithError("decode failed");
      benchmark::DoNotOptimize(r);
    }
  });
  // The reference path alone (msgpack-c unpack into a zone + object tree):
  // what codec/decode cost before the fast path.
  benchmark::RegisterBenchmark(("codec_ref/decode/" + name).c_str(), [make](benchmark::State& state) {
    const std::string bytes = tp::proto::encode_to_string(make());
    tp::proto::Decoder dec(tp::proto::DecodePath::reference);
    AllocScope a(state);
    for (auto _ : state) {
      auto r = decode_with<T>(dec, tp::proto::as_bytes(bytes));
      if (!r) state.SkipWithError("decode failed");
      benchmark::DoNotOptimize(r);
    }
  });
  // Into a reused message (the strategy's and executor's hot-path form).
  benchmark::RegisterBenchmark(("codec/decode_into/" + name).c_str(), [make](benchmark::State& state) {
    const std::string bytes = tp::proto::encode_to_string(make());
    tp::proto::Decoder dec;
    T out;
    AllocScope a(state);
    for (auto _ : state) {
      if (dec.decode_into(tp::proto::as_bytes(bytes), out)) state.SkipWithError("decode failed");
      benchmark::DoNotOptimize(out);
    }
  });
  benchmark::RegisterBenchmark(("plain/decode/" + name).c_str(), [make](benchmark::State& state) {
    Plain src;
    static_cast<T&>(src) = make();
    msgpack::sbuffer buf;
    msgpack::pack(buf, src);
    if (std::string_view(buf.data(), buf.size()) != tp::proto::encode_to_string(make()))
      state.SkipWithError("plain bytes differ from the codec's");
    msgpack::zone zone;
    Plain out;
    AllocScope a(state);
    for (auto _ : state) {
      zone.clear();
      std::size_t off = 0;
      msgpack::object o = msgpack::unpack(zone, buf.data(), buf.size(), off);
      o.convert(out);
      benchmark::DoNotOptimize(out);
    }
  });
  // msgpack-c's v1 parser keeps its stack in a fixed array; the default (v3)
  // parser allocates two std::vector stacks per unpack.
  benchmark::RegisterBenchmark(("plain_v1/decode/" + name).c_str(), [make](benchmark::State& state) {
    Plain src;
    static_cast<T&>(src) = make();
    msgpack::sbuffer buf;
    msgpack::pack(buf, src);
    msgpack::zone zone;
    Plain out;
    AllocScope a(state);
    for (auto _ : state) {
      zone.clear();
      std::size_t off = 0;
      bool referenced = false;
      msgpack::object o = msgpack::v1::unpack(zone, buf.data(), buf.size(), off, referenced, nullptr, nullptr,
                                              msgpack::unpack_limit());
      o.convert(out);
      benchmark::DoNotOptimize(out);
    }
  });
}

// ---- indicators -------------------------------------------------------------

std::vector<double> random_walk(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> step(0.0, 0.0001);
  std::vector<double> v(n);
  double x = 1.085;
  for (auto& p : v) {
    x += step(rng);
    p = x;
  }
  return v;
}

template <class Ind>
void bm_indicator(benchmark::State& state) {
  const auto prices = random_walk(1 << 16, 7);
  Ind ind(static_cast<std::size_t>(state.range(0)));
  // Warm up past the window so that the steady state is measured.
  for (std::size_t i = 0; i < 3 * static_cast<std::size_t>(state.range(0)); ++i)
    ind.update(prices[i & 0xffff]);
  std::size_t i = 0;
  AllocScope a(state);
  for (auto _ : state) {
    ind.update(prices[i++ & 0xffff]);
    benchmark::DoNotOptimize(ind.value());
  }
}

// ---- a strategy's per-tick path --------------------------------------------

// Encoded ticks, one per instrument, with the seq field at a known offset so
// that it can be advanced in place (seq >= 2^56 keeps msgpack's 9-byte form).
struct TickFixture {
  std::vector<std::string> topics;
  std::vector<std::string> payloads;
  std::vector<std::size_t> seq_offset;
  std::uint64_t seq = (std::uint64_t{1} << 56) + 1;

  explicit TickFixture(std::size_t n) {
    const auto prices = random_walk(n, 11);
    for (std::size_t i = 0; i < n; ++i) {
      tp::proto::TickEvent t = sample_tick();
      t.instrument = "SYM" + std::to_string(i);
      t.bid = prices[i];
      t.ask = prices[i] + 0.0001;
      t.seq = seq;
      t.gateway_ts_ns = tp::wall_ns();
      std::string p = tp::proto::encode_to_string(t);
      const char marker[9] = {'\xcf', 1, 0, 0, 0, 0, 0, 0, 1};
      auto pos = p.find(std::string_view(marker, 9));
      if (pos == std::string::npos) throw std::logic_error("seq marker not found");
      topics.push_back(std::string(tp::proto::tick_topic(t.instrument)));
      payloads.push_back(std::move(p));
      seq_offset.push_back(pos + 1);
    }
  }
  // Advances instrument i's seq (one per full round of instruments).
  std::string_view next_payload(std::size_t i) {
    auto& p = payloads[i];
    std::uint64_t s = seq + 1;  // every instrument's seq moves in step
    if (i + 1 == payloads.size()) ++seq;
    for (int b = 7; b >= 0; --b) {
      p[seq_offset[i] + static_cast<std::size_t>(7 - b)] = static_cast<char>((s >> (8 * b)) & 0xff);
    }
    return p;
  }
};

struct Instrument {
  std::string symbol;
  tp::strategy::SeqTracker seq;
  std::unique_ptr<tp::strategy::MidStrategy> strategy;
};

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Map = the node's std::map<std::string, Instrument, std::less<>>, or a hash
// map with heterogeneous lookup (the suggested replacement).
template <class Map>
void bm_tick_path(benchmark::State& state, const std::string& strategy_name) {
  const auto n = static_cast<std::size_t>(state.range(0));
  TickFixture fx(n);
  Map by_topic;
  for (std::size_t i = 0; i < n; ++i) {
    by_topic.emplace(fx.topics[i], Instrument{"SYM" + std::to_string(i),
                                              {},
                                              tp::strategy::make_mid_strategy(strategy_name, tp::Params{})});
  }
  tp::proto::Decoder decoder;
  tp::proto::TickEvent tick_buf;  // StrategyNode::tick_: decoded into in place
  tp::LatencyHistogram latency;
  tp::strategy::FeedMonitor feed(2'000'000'000);
  tp::SystemClock clock;
  std::uint64_t decisions = 0, stale = 0;
  // One warm-up round: every instrument's first tick.
  std::size_t i = 0;
  auto one_tick = [&](std::size_t k) {
    const std::string_view topic = fx.topics[k];
    const std::string_view payload = fx.next_payload(k);
    auto it = by_topic.find(topic);
    if (it == by_topic.end()) return;
    if (decoder.decode_into(tp::proto::as_bytes(payload), tick_buf)) return;
    const auto& tick = tick_buf;
    auto& inst = it->second;
    if (tick.instrument != inst.symbol) return;
    const auto now = clock.now_ns();
    if (tick.gateway_ts_ns > 0 && now >= tick.gateway_ts_ns) latency.record(now - tick.gateway_ts_ns);
    const bool alive = feed.alive(now);
    feed.on_activity(now);
    if (inst.seq.on_seq(tick.seq) == tp::strategy::SeqVerdict::stale) {
      ++stale;
      return;
    }
    if (auto d = inst.strategy->on_mid((tick.bid + tick.ask) / 2.0); d && alive) ++decisions;
  };
  for (std::size_t k = 0; k < 3 * n; ++k) one_tick(k % n);  // whole rounds: the timed loop starts at 0
  AllocScope a(state);
  for (auto _ : state) {
    one_tick(i);
    if (++i == n) i = 0;
  }
  if (stale != 0) state.SkipWithError("stale ticks: the fixture's seq did not advance");
  benchmark::DoNotOptimize(decisions);
}

// ---- gateway per-tick work --------------------------------------------------

void bm_gateway_next_encode(benchmark::State& state) {
  std::vector<tp::Instrument> insts = tp::Config{}.instruments;
  tp::gateway::SyntheticFeed feed(insts, 42);
  tp::proto::Encoder enc;
  tp::SystemClock clock;
  AllocScope a(state);
  for (auto _ : state) {
    auto tick = feed.next(clock.now_ns());
    tick.gateway_ts_ns = clock.now_ns();
    benchmark::DoNotOptimize(enc.encode(tick).size());
  }
}

// ---- executor: dedupe lookup, risk -----------------------------------------

struct DedupeDb {
  std::filesystem::path dir;
  std::unique_ptr<tp::executor::ExecutorStore> store;
  std::size_t ids = 0;
  DedupeDb() {
    const char* env = std::getenv("TP_BENCH_DEDUPE_IDS");
    ids = env ? std::strtoull(env, nullptr, 10) : 100000;
    if (ids == 0) ids = 1;
    char tmpl[] = "/tmp/tp_bench_dedupe_XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    store = std::make_unique<tp::executor::ExecutorStore>((dir / "executor.db").string(), tp::wall_ns());
    tp::proto::TradingSignal s = sample_signal();
    for (std::size_t i = 0; i < ids; ++i) {
      s.signal_id = "sma_crossover.1.1750000000000." + std::to_string(i);
      store->record_rejected(s, "bench", tp::wall_ns(),
                             tp::executor::OutcomeLetter{"bench", "", "", s.signal_id});
    }
  }
  ~DedupeDb() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

DedupeDb& dedupe_db() {
  static DedupeDb db;
  return db;
}

void bm_dedupe(benchmark::State& state, bool seen) {
  auto& db = dedupe_db();
  std::vector<std::string> ids;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1024; ++i) {
    const auto n = rng() % db.ids;
    ids.push_back("sma_crossover.1.1750000000000." + std::to_string(seen ? n : n + db.ids));
  }
  std::size_t i = 0, found = 0;
  for (auto _ : state) {
    found += db.store->find_signal(ids[i++ & 1023]).has_value();
  }
  if ((found != 0) != seen) state.SkipWithError("lookup gave the wrong answer");
  state.counters["db_ids"] = static_cast<double>(db.ids);
}

void bm_risk(benchmark::State& state, bool pass) {
  tp::RiskConfig limits;
  tp::proto::TradingSignal s = sample_signal();
  if (!pass) s.quantity = 2 * limits.max_order_quantity;
  double position = 5000;
  std::size_t refused = 0;
  AllocScope a(state);
  for (auto _ : state) {
    auto r = tp::executor::check_risk(s, position, limits);
    refused += r.has_value();
    benchmark::DoNotOptimize(r);
  }
  if ((refused != 0) == pass) state.SkipWithError("risk check gave the wrong answer");
}

// ---- executor: an order's whole life on the desk ----------------------------
// The executor's work per order without sockets: a batch of 64 signals
// decided and committed (signal row and intent in one transaction), their
// answers recorded 32 under one commit as the node does with a full window,
// then each order's execution report (the usual one, an answer said it
// first) judged and written in bulk. One iteration is one order; the store
// is a real WAL database in a temporary directory.

// A temporary directory for a benchmark's store, removed with what is in it.
class BenchDir {
 public:
  BenchDir() {
    char tmpl[] = "/tmp/tp_bench_XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~BenchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  BenchDir(const BenchDir&) = delete;
  BenchDir& operator=(const BenchDir&) = delete;
  std::string file(const char* name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// One order per iteration: a whole run of Bench (Bench::orders of them) on
// the iteration that starts it, so per order is the run's cost over its
// iterations.
template <class Bench>
void bm_order_life(benchmark::State& state) {
  Bench bench;
  AllocScope a(state);
  std::size_t order = 0;
  for (auto _ : state) {
    if (order++ % Bench::orders == 0 && !bench.run()) {
      state.SkipWithError("an order was not filled as the benchmark expects");
      break;
    }
  }
}

class DeskBench {
 public:
  static constexpr std::size_t orders = 64;  // a batch

  DeskBench()
      : store_(std::make_unique<tp::executor::ExecutorStore>(dir_.file("executor.db"), clock_.now_ns())),
        desk_(std::make_unique<tp::executor::ExecutionDesk>(*store_, config_, clock_)) {}

  // One batch through its whole life; false when an order was not filled
  // as expected (the benchmark would measure something else).
  bool run() {
    clock_.advance_ms(1000);  // the throttles and expiries see a calm market
    auto signal = sample_signal();
    for (std::size_t i = 0; i < orders; ++i) {
      signal.signal_id = "bench.1.1750000000000." + std::to_string(++next_id_);
      signal.action = i % 2 == 0 ? tp::proto::Side::buy : tp::proto::Side::sell;
      signal.created_ts_ns = clock_.now_ns();
      signal.expires_ts_ns = clock_.now_ns() + 5'000'000'000;
      desk_->next_signal() = signal;
      desk_->decide(original_, true);
    }
    desk_->commit();
    answers_.clear();
    for (auto& d : desk_->publish(out_)) {
      if (d.verdict != tp::executor::Verdict::accept || d.held) return false;
      tp::proto::OrderReply r;
      r.client_order_id = d.order.client_order_id;
      r.order_id = "SIM-" + std::to_string(next_id_);
      r.status = tp::proto::OrderStatus::filled;
      r.filled_quantity = d.order.quantity;
      r.fill_price = d.order.price_hint;
      r.broker_ts_ns = clock_.now_ns();
      answers_.push_back({d.order, std::move(r), clock_.now_ns()});
    }
    const std::span<const tp::executor::AnsweredOrder> all(answers_);
    desk_->apply_replies(all.first(orders / 2), tp::executor::ReplySource::round_trip, out_);
    desk_->apply_replies(all.subspan(orders / 2), tp::executor::ReplySource::round_trip, out_);
    for (const auto& a : answers_) {
      tp::proto::ExecutionReport report;
      report.stream = "bench";
      report.seq = ++next_seq_;
      report.client_order_id = a.order.client_order_id;
      report.order_id = a.reply.order_id;
      report.status = a.reply.status;
      report.last_quantity = report.filled_quantity = a.reply.filled_quantity;
      report.last_price = report.avg_price = a.reply.fill_price;
      report.instrument = a.order.instrument;
      report.side = a.order.side;
      report.quantity = a.order.quantity;
      report.ts_ns = clock_.now_ns();
      if (desk_->apply_report(report, clock_.now_ns(), out_) != tp::executor::ReportResult::known)
        return false;
      store_->defer_known(report, clock_.now_ns());
    }
    store_->flush_known();
    out_.items.clear();
    return desk_->counters().fills == next_id_;
  }

 private:
  BenchDir dir_;  // first: removed after the store closed its file
  tp::FakeClock clock_;
  tp::Config config_;
  std::unique_ptr<tp::executor::ExecutorStore> store_;
  std::unique_ptr<tp::executor::ExecutionDesk> desk_;
  tp::executor::Outbox out_;
  std::vector<tp::executor::AnsweredOrder> answers_;
  const std::string original_ = tp::proto::encode_to_string(sample_signal());
  std::uint64_t next_id_ = 0, next_seq_ = 0;
};

// dll_gateway's work per order without sockets: a group of requests read
// together (their PENDING rows in one commit), each submitted to a broker that
// fills at once, the group's DONE rows and reports in a second commit, on a
// real WAL database in a temp dir. The broker is in-process and free, so what
// is left is the desk and its store (the simulated broker's own journal is
// not in it).
class DllDeskBench {
 public:
  static constexpr std::size_t orders = 32;  // a group: executor.orders_in_flight's default

  DllDeskBench()
      : store_(std::make_unique<tp::dll_gateway::OrderStore>(dir_.file("dll_gateway.db"), clock_.now_ns())),
        desk_(std::make_unique<tp::dll_gateway::OrderDesk>(*store_, broker_, clock_)),
        requests_(orders) {}

  // One group through its whole life; false when an order was not filled.
  bool run() {
    clock_.advance_ms(1);
    std::vector<const tp::proto::OrderRequest*> read;
    for (auto& r : requests_) {
      r.client_order_id = "C-bench.1.1750000000000." + std::to_string(++next_id_);
      r.signal_id = r.client_order_id.substr(2);
      r.instrument = "EURUSD";
      r.side = next_id_ % 2 == 0 ? tp::proto::Side::buy : tp::proto::Side::sell;
      r.quantity = 1000;
      r.price_hint = 1.085;
      r.sent_ts_ns = clock_.now_ns();
      r.expires_ts_ns = clock_.now_ns() + 5'000'000'000;
      read.push_back(&r);
    }
    desk_->prepare(read);
    bool all_filled = true;
    for (const auto* r : read) all_filled &= desk_->handle(*r).status == tp::proto::OrderStatus::filled;
    desk_->flush();
    return all_filled && desk_->take_reports().size() == orders;
  }

 private:
  class FillingBroker final : public tp::dll_gateway::Broker {
   public:
    tp::dll_gateway::BrokerAnswer submit(const tp::proto::OrderRequest& o) override {
      tp::dll_gateway::BrokerAnswer a;
      a.ok = true;
      a.reply.client_order_id = o.client_order_id;
      a.reply.order_id = "SIM-" + std::to_string(++placed_);
      a.reply.status = tp::proto::OrderStatus::filled;
      a.reply.filled_quantity = o.quantity;
      a.reply.fill_price = o.price_hint;
      a.reply.broker_ts_ns = o.sent_ts_ns;
      return a;
    }
    tp::dll_gateway::BrokerAnswer query(const std::string& id) override {
      tp::dll_gateway::BrokerAnswer a;
      a.reply.client_order_id = id;
      a.reply.reason = "the benchmark never queries";
      return a;
    }

   private:
    std::uint64_t placed_ = 0;
  };

  BenchDir dir_;  // first: removed after the store closed its file
  tp::FakeClock clock_;
  FillingBroker broker_;
  std::unique_ptr<tp::dll_gateway::OrderStore> store_;
  std::unique_ptr<tp::dll_gateway::OrderDesk> desk_;
  std::vector<tp::proto::OrderRequest> requests_;
  std::uint64_t next_id_ = 0;
};

// ---- summary ---------------------------------------------------------------

// Passes everything to the console and keeps ns/op per benchmark name.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, double> ns;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      // With --benchmark_repetitions the median stands for the name.
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (r.run_type != Run::RT_Iteration && !median) continue;
      if (r.run_type == Run::RT_Iteration && r.repetitions > 1) continue;
      const double mult = benchmark::GetTimeUnitMultiplier(r.time_unit);  // units per second
      // CPU time: on a shared machine the wall time of a single-threaded
      // loop also counts the time other processes had the core.
      ns[r.run_name.str()] = r.GetAdjustedCPUTime() / mult * 1e9;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

std::string fmt_num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Google Benchmark micro-benchmarks of the hot-path pieces, each beside its baseline, then a summary "
      "(codec vs plain msgpack-c ratios, per-update cost over sizes).",
      "micro_bench"};
  std::string summary_out;
  app.add_option("--summary_out", summary_out, "Also write the summary as JSON to FILE")->type_name("FILE");
  // Google Benchmark reads its own flags from what is left.
  app.allow_extras();
  app.footer("Every other argument goes to Google Benchmark; its flags follow.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    app.exit(e);
    int help_argc = 2;
    char help_flag[] = "--help";
    char* help_argv[] = {argv[0], help_flag, nullptr};
    benchmark::Initialize(&help_argc, help_argv);  // prints its flags and exits
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<std::string> rest = app.remaining();
  std::vector<char*> args = {argv[0]};
  for (auto& a : rest) args.push_back(a.data());
  int n_args = static_cast<int>(args.size());

  const std::vector<std::string> types = {"tick",          "heartbeat",   "signal",
                                          "order_request", "order_query", "order_reply",
                                          "order_event",   "signal_ack",  "dead_letter"};
  register_codec<tp::proto::TickEvent, PlainTick>("tick", sample_tick);
  register_codec<tp::proto::Heartbeat, PlainHeartbeat>("heartbeat", sample_heartbeat);
  register_codec<tp::proto::TradingSignal, PlainSignal>("signal", sample_signal);
  register_codec<tp::proto::OrderRequest, PlainOrderRequest>("order_request", sample_order_request);
  register_codec<tp::proto::OrderQuery, PlainOrderQuery>("order_query", sample_order_query);
  register_codec<tp::proto::OrderReply, PlainOrderReply>("order_reply", sample_order_reply);
  register_codec<tp::proto::OrderEvent, PlainOrderEvent>("order_event", sample_order_event);
  register_codec<tp::proto::SignalAck, PlainSignalAck>("signal_ack", sample_signal_ack);
  register_codec<tp::proto::DeadLetter, PlainDeadLetter>("dead_letter", sample_dead_letter);

  const std::vector<std::int64_t> windows = {20, 200, 2000};
  const std::vector<std::string> indicators = {"sma", "ema", "rsi", "rolling_min", "rolling_max"};
  auto reg_ind = [&](const std::string& name, void (*fn)(benchmark::State&)) {
    auto* b = benchmark::RegisterBenchmark(("indicator/" + name).c_str(), fn);
    for (auto w : windows) b->Arg(w);
  };
  reg_ind("sma", bm_indicator<tp::Sma>);
  reg_ind("ema", bm_indicator<tp::Ema>);
  reg_ind("rsi", bm_indicator<tp::Rsi>);
  reg_ind("rolling_min", bm_indicator<tp::RollingMin>);
  reg_ind("rolling_max", bm_indicator<tp::RollingMax>);

  const std::vector<std::int64_t> counts = {10, 100, 1000, 10000};
  using OrderedMap = std::map<std::string, Instrument, std::less<>>;
  using HashMap = std::unordered_map<std::string, Instrument, TransparentHash, std::equal_to<>>;
  // tick_path/* as StrategyNode does it now (hash map, decode_into);
  // tick_path_stdmap/* with the std::map it used before, for comparison.
  const std::vector<std::string> paths = {"tick_path/sma_crossover", "tick_path/every_nth",
                                          "tick_path_stdmap/sma_crossover"};
  {
    auto* b = benchmark::RegisterBenchmark(
        "tick_path/sma_crossover", [](benchmark::State& s) { bm_tick_path<HashMap>(s, "sma_crossover"); });
    for (auto c : counts) b->Arg(c);
    b = benchmark::RegisterBenchmark("tick_path/every_nth",
                                     [](benchmark::State& s) { bm_tick_path<HashMap>(s, "every_nth"); });
    for (auto c : counts) b->Arg(c);
    b = benchmark::RegisterBenchmark("tick_path_stdmap/sma_crossover", [](benchmark::State& s) {
      bm_tick_path<OrderedMap>(s, "sma_crossover");
    });
    for (auto c : counts) b->Arg(c);
  }
  benchmark::RegisterBenchmark("gateway/next_and_encode", bm_gateway_next_encode);
  benchmark::RegisterBenchmark("dedupe/find_seen", [](benchmark::State& s) { bm_dedupe(s, true); });
  benchmark::RegisterBenchmark("dedupe/find_unseen", [](benchmark::State& s) { bm_dedupe(s, false); });
  benchmark::RegisterBenchmark("risk/check_pass", [](benchmark::State& s) { bm_risk(s, true); });
  benchmark::RegisterBenchmark("risk/check_refuse", [](benchmark::State& s) { bm_risk(s, false); });
  benchmark::RegisterBenchmark("desk/order_life", bm_order_life<DeskBench>);
  benchmark::RegisterBenchmark("dll_desk/order_life", bm_order_life<DllDeskBench>);

  benchmark::Initialize(&n_args, args.data());
  if (benchmark::ReportUnrecognizedArguments(n_args, args.data())) return 1;
  CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const auto& ns = reporter.ns;
  auto get = [&](const std::string& k) -> double {
    auto it = ns.find(k);
    return it == ns.end() ? 0.0 : it->second;
  };
  std::string json = "{\n  \"codec\": [";
  std::printf("\n== codec vs plain msgpack-c (ns/op; target codec <= 1.5x plain)\n");
  std::printf("%-14s %10s %10s %7s   %10s %10s %7s %10s %10s %10s\n", "message", "enc codec", "enc plain",
              "ratio", "dec codec", "dec plain", "ratio", "dec v1", "dec ref", "dec into");
  bool first = true;
  for (const auto& t : types) {
    const double ec = get("codec/encode/" + t), ep = get("plain/encode/" + t);
    const double dc = get("codec/decode/" + t), dp = get("plain/decode/" + t);
    if (ec == 0 && dc == 0) continue;
    const double er = ep > 0 ? ec / ep : 0, dr = dp > 0 ? dc / dp : 0;
    const double dv1 = get("plain_v1/decode/" + t);
    const double dref = get("codec_ref/decode/" + t), dinto = get("codec/decode_into/" + t);
    std::printf("%-14s %10.1f %10.1f %6.2fx   %10.1f %10.1f %6.2fx %10.1f %10.1f %10.1f\n", t.c_str(), ec, ep,
                er, dc, dp, dr, dv1, dref, dinto);
    json += std::string(first ? "" : ",") + "\n    {\"message\": \"" + t +
            "\", \"encode_ns\": " + fmt_num(ec) + ", \"plain_encode_ns\": " + fmt_num(ep) +
            ", \"encode_ratio\": " + fmt_num(er) + ", \"decode_ns\": " + fmt_num(dc) +
            ", \"plain_decode_ns\": " + fmt_num(dp) + ", \"decode_ratio\": " + fmt_num(dr) +
            ", \"plain_v1_decode_ns\": " + fmt_num(dv1) + ", \"reference_decode_ns\": " + fmt_num(dref) +
            ", \"decode_into_ns\": " + fmt_num(dinto) + ", \"target\": 1.5}";
    first = false;
  }
  json += "\n  ],\n  \"flatness\": [";
  std::printf("\n== per-update cost over sizes (ns/op; target max/min <= 1.2)\n");
  first = true;
  auto flat_row = [&](const std::string& name, const std::vector<std::int64_t>& sizes) {
    std::vector<double> v;
    for (auto s : sizes) v.push_back(get(name + "/" + std::to_string(s)));
    if (std::any_of(v.begin(), v.end(), [](double x) { return x <= 0; })) return;
    const double spread = *std::max_element(v.begin(), v.end()) / *std::min_element(v.begin(), v.end());
    std::printf("%-34s", name.c_str());
    std::string sizes_json, ns_json;
    for (std::size_t k = 0; k < v.size(); ++k) {
      std::printf(" %6lld:%8.1f", static_cast<long long>(sizes[k]), v[k]);
      sizes_json += (k ? ", " : "") + std::to_string(sizes[k]);
      ns_json += (k ? ", " : "") + fmt_num(v[k]);
    }
    std::printf("   max/min %.2f\n", spread);
    json += std::string(first ? "" : ",") + "\n    {\"name\": \"" + name + "\", \"sizes\": [" + sizes_json +
            "], \"ns\": [" + ns_json + "], \"max_over_min\": " + fmt_num(spread) + ", \"target\": 1.2}";
    first = false;
  };
  for (const auto& ind : indicators) flat_row("indicator/" + ind, windows);
  for (const auto& p : paths) flat_row(p, counts);
  json += "\n  ],\n  \"other_ns\": {";
  first = true;
  std::printf("\n== other (ns/op)\n");
  for (const char* k : {"gateway/next_and_encode", "dedupe/find_seen", "dedupe/find_unseen",
                        "risk/check_pass", "risk/check_refuse", "desk/order_life", "dll_desk/order_life"}) {
    const double v = get(k);
    if (v <= 0) continue;
    std::printf("%-34s %10.1f\n", k, v);
    json += std::string(first ? "" : ",") + "\n    \"" + k + "\": " + fmt_num(v);
    first = false;
  }
  json += "\n  }\n}\n";
  if (!summary_out.empty()) {
    std::ofstream f(summary_out);
    f << json;
    if (!f) {
      std::fprintf(stderr, "cannot write %s\n", summary_out.c_str());
      return 1;
    }
  }
  return 0;
}
