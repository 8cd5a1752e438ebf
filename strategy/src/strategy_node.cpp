#include "strategy/strategy_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "common/sharding.hpp"
#include "common/stats.hpp"
#include "common/zmq_util.hpp"

namespace tp::strategy {
namespace {

// The group to run, checked with the shard before any file or socket is
// touched.
StrategyGroup checked_group(const Config& cfg, std::string_view name, std::uint32_t shard,
                            std::uint32_t shards) {
  if (shards == 0) throw ConfigError("--shards: must be >= 1");
  if (shard >= shards)
    throw ConfigError("--shard: " + std::to_string(shard) + " is not below --shards " +
                      std::to_string(shards));
  if (cfg.strategy.groups.empty()) throw ConfigError("strategy.groups: no strategy group");
  const auto* group = name.empty() ? &cfg.strategy.groups.front() : cfg.strategy.find_group(name);
  if (!group) {
    std::string names;
    for (const auto& g : cfg.strategy.groups) names += (names.empty() ? "" : ", ") + g.name;
    throw ConfigError("--group: no strategy group \"" + std::string(name) + "\" (the groups: " + names + ")");
  }
  return *group;
}

tp::Params params_of(const StrategyGroup& g) {
  std::map<std::string, std::string, std::less<>> values(g.params.begin(), g.params.end());
  return tp::Params(std::move(values), "strategy.groups[" + g.name + "].params");
}

std::int64_t ms_to_ns(int ms) { return static_cast<std::int64_t>(ms) * ns_per_ms; }

using detail::saturating_diff;

// How often the run dir is looked at for departed shards' journals: a journal
// whose lock was held at the last look is tried again this much later.
constexpr std::int64_t adopt_scan_ns = 1000 * ns_per_ms;

// The shard of a journal file name "<group>-<j>.journal" (prefix "<group>-"),
// if it is one.
std::optional<std::uint32_t> journal_shard(std::string_view name, std::string_view prefix) {
  constexpr std::string_view suffix = ".journal";
  if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
      name.substr(name.size() - suffix.size()) != suffix)
    return std::nullopt;
  const auto digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;  // not a name this program writes
  std::uint32_t shard = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), shard);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return shard;
}

// After a failed compaction, none is tried again before this much later: on a
// full disk each attempt writes the pending signals to a temp file in vain.
constexpr std::int64_t compact_retry_ns = 1000 * ns_per_ms;

std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

constexpr int max_batch = 4096;   // messages per socket per poll: keeps timers running under load
constexpr int max_wait_ms = 100;  // the longest poll: the stop flag is looked at least this often

// Ticks queued in this process before ZeroMQ drops (then the gateway's send
// queue and the kernel's socket buffers take the backlog). Flat out, a
// queued tick costs ~250 bytes (many share one ~8 KiB receive buffer); one
// that arrives alone, from a feed of a few thousand a second, keeps a whole
// buffer alive while it waits: ~8.5 KB. So 30,000 took a strategy 3 s behind
// a 1,000 ticks/s feed (a plugin taking 5 ms a tick) to 49.6 MB; 2,000 is
// 17 MB at most, under the 30 MB budget, and still 2 ms of a 1M ticks/s
// stream (the benchmark's zero-gap rates did not move measurably, and the
// flat-out peak RSS fell from 17.8 to 10.1 MB: docs/PERFORMANCE.md).
constexpr int tick_rcvhwm = 2000;

proto::OrderType wire_order_type(const std::string& name) {
  return name == "limit" ? proto::OrderType::limit : proto::OrderType::market;
}
proto::TimeInForce wire_time_in_force(const std::string& name) {
  return name == "gtc"   ? proto::TimeInForce::gtc
         : name == "gtd" ? proto::TimeInForce::gtd
                         : proto::TimeInForce::ioc;
}

// At most `max` bytes of `text`, not cutting a UTF-8 sequence in two.
std::string_view clipped(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

}  // namespace

// The tp::Context of the node's strategy: every call lands in the node, on
// the loop's thread.
class StrategyNode::Host final : public tp::Context {
 public:
  explicit Host(StrategyNode& node) : node_(node) {}

  std::string_view group() const noexcept override { return node_.group_.name; }
  std::uint32_t shard() const noexcept override { return node_.shard_; }
  std::uint32_t shards() const noexcept override { return node_.shards_; }
  const std::vector<std::string>& instruments() const noexcept override { return node_.symbols_; }
  const tp::Params& params() const noexcept override { return node_.params_; }
  std::string emit(const tp::SignalRequest& request) override { return node_.emit(request); }

  double position(std::string_view instrument) const override {
    auto it = node_.by_symbol_.find(instrument);
    return it == node_.by_symbol_.end() ? 0.0 : it->second->position;
  }
  bool position_known(std::string_view instrument) const override {
    auto it = node_.by_symbol_.find(instrument);
    return it != node_.by_symbol_.end() && it->second->position_known;
  }

  TimerId every(std::int64_t period_ms, std::function<void()> fn) override {
    if (period_ms <= 0) throw std::invalid_argument("every: period_ms must be > 0");
    const auto period = ms_to_ns(static_cast<int>(std::min<std::int64_t>(period_ms, 1LL << 30)));
    return node_.loop_.add_timer(node_.clock_.monotonic_ns() + period, period, RunLoop::Cadence::fixed_rate,
                                 [this, fn = std::move(fn)](std::int64_t) { node_.guarded("timer", fn); });
  }
  TimerId at(std::int64_t wall_ts_ns, std::function<void()> fn) override {
    // Waited out on monotonic time: a wall clock stepped meanwhile moves it.
    const auto delay = std::max<std::int64_t>(saturating_diff(wall_ts_ns, node_.clock_.now_ns()), 0);
    const auto mono = node_.clock_.monotonic_ns();
    const auto due = delay > std::numeric_limits<std::int64_t>::max() - mono
                         ? std::numeric_limits<std::int64_t>::max()
                         : mono + delay;
    return node_.loop_.add_timer(due, 0, RunLoop::Cadence::once,
                                 [this, fn = std::move(fn)](std::int64_t) { node_.guarded("timer", fn); });
  }
  void cancel(TimerId id) override { node_.loop_.cancel_timer(id); }
  bool cancel(std::string_view signal_id, std::string_view reason) override {
    return node_.cancel_order(signal_id, reason);
  }

  std::int64_t now_ns() const noexcept override { return node_.clock_.now_ns(); }
  bool feed_alive() const noexcept override { return node_.feed_.alive(node_.clock_.now_ns()); }

  void log(tp::LogLevel level, std::string_view message) override {
    static constexpr spdlog::level::level_enum levels[] = {spdlog::level::debug, spdlog::level::info,
                                                           spdlog::level::warn, spdlog::level::err};
    spdlog::log(levels[static_cast<int>(level) & 3], "[{}] {}", node_.name_, message);
  }

 private:
  StrategyNode& node_;
};

StrategyNode::~StrategyNode() = default;

template <class F>
void StrategyNode::guarded(std::string_view what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    ++strategy_errors_;
    dead_letters_.send(
        "strategy_error",
        group_.name + " (" + group_.kind + ") threw from " + std::string(what) + ": " + e.what(),
        std::string_view{});
  }
}

StrategyNode::StrategyNode(zmq::context_t& ctx, const Config& cfg, std::uint32_t shard, std::uint32_t shards,
                           const Clock& clock, const Security& security, std::string_view group,
                           StrategyPtr strategy)
    : cfg_(cfg),
      group_(checked_group(cfg, group, shard, shards)),
      strategy_(strategy ? std::move(strategy) : make_strategy(group_)),
      shard_(shard),
      shards_(shards),
      clock_(clock),
      name_(group_.name + "-" + std::to_string(shard)),
      dead_letters_(ctx, cfg.endpoints.dead_letters, group_.name + ":" + std::to_string(shard), clock,
                    security),
      ticks_(make_socket(ctx, zmq::socket_type::sub,
                         SocketOptions{.rcvhwm = tick_rcvhwm, .network = cfg.network})),
      acks_(make_socket(ctx, zmq::socket_type::sub, SocketOptions{.network = cfg.network})),
      signals_(
          make_socket(ctx, zmq::socket_type::push, SocketOptions{.sndhwm = 10000, .network = cfg.network})),
      ticks_monitor_(ctx, ticks_, cfg.endpoints.ticks),
      acks_monitor_(ctx, acks_, cfg.endpoints.order_events),
      ack_topic_(proto::ack_topic(group_.name, shard)),
      default_order_type_(wire_order_type(group_.orders.order_type)),
      default_time_in_force_(wire_time_in_force(group_.orders.time_in_force)),
      feed_(ms_to_ns(cfg.strategy.feed_timeout_ms)),
      journal_(cfg.run_path("", name_ + ".journal")),
      outbox_(journal_, ms_to_ns(cfg.strategy.resend_ms), ms_to_ns(cfg.strategy.give_up_after_ms)),
      ids_(group_.name, shard, choose_boot_ms(clock.now_ns() / ns_per_ms, journal_.replay().last_boot_ms)),
      disk_({cfg.run.dir}, cfg.run.min_free_bytes),
      stats_path_(cfg.run_path("", name_ + ".stats.json")),
      resend_ns_(ms_to_ns(cfg.strategy.resend_ms)),
      give_up_ns_(ms_to_ns(cfg.strategy.give_up_after_ms)),
      resend_scan_ns_(ms_to_ns(std::clamp(cfg.strategy.resend_ms / 4, 10, 100))),
      freshness_{.max_age_ns = ms_to_ns(cfg.strategy.max_tick_age_ms),
                 .max_skew_ns = ms_to_ns(cfg.strategy.max_clock_skew_ms),
                 .max_signal_age_ns = ms_to_ns(cfg.strategy.max_signal_tick_age_ms)},
      params_(params_of(group_)),
      loop_(clock, RunLoop::default_stop_source(), max_wait_ms) {
  // First: a port another process holds fails the start before any socket
  // is connected.
  metrics_ = metrics::start_metrics_server(cfg.metrics, "strategy", name_, {{"group", group_.name}});
  symbols_ = instruments_for_shard(group_.instruments, shard_, shards_);
  position_topic_ = proto::position_topic(group_.name);
  signal_prefix_ = group_.name + ".";
  for (const auto& sym : symbols_) {
    auto topic = proto::tick_topic(sym);
    ticks_.set(zmq::sockopt::subscribe, topic);
    auto& traded = by_topic_.emplace(topic, Traded{.symbol = sym}).first->second;
    by_symbol_.emplace(sym, &traded);
    order_topics_.insert(proto::order_topic(sym));
    acks_.set(zmq::sockopt::subscribe, proto::order_topic(sym));
  }
  ticks_.set(zmq::sockopt::subscribe, proto::heartbeat_topic);
  security.connect(ticks_, cfg_.endpoints.ticks);

  subscribe_acks(shard_, journal_);
  acks_.set(zmq::sockopt::subscribe, position_topic_);
  security.connect(acks_, cfg_.endpoints.order_events);

  // immediate: while no executor is connected a send would block instead of
  // queueing on a dead pipe; the signal stays pending and is resent later.
  signals_.set(zmq::sockopt::immediate, true);
  security.connect(signals_, cfg_.endpoints.signals);

  const auto now = clock_.now_ns();
  disk_.poll(monotonic_ns());
  report_replay(journal_);
  outbox_.restore(now);
  // Signals of an earlier run still unacked may become orders: cancellable.
  for (const auto& pending : journal_.replay().pending) remember_open(pending.signal_id);
  // Once reported, an unreadable record is dropped from the file by a
  // compaction (which also writes this run's boot record), so that the next
  // start does not report it again. A journal that cannot be written now (a
  // full disk) does not keep the instance from starting: pending signals are
  // resent and acks heard, but nothing new is emitted until the boot record
  // is written (the next start picks its boot time after it). Should this run
  // end before then, the unreadable records are reported again next start.
  rewrite_owed_ = !journal_.replay().unreadable.empty();
  if (!ensure_boot_record()) {
    journal_write_failed(journal_, rewrite_owed_ ? "compact" : "write (boot record)",
                         "not emitting new signals until it can be written (tried again every " +
                             std::to_string(journal_probe_ns / ns_per_ms) +
                             " ms); pending signals are still resent");
    stop_emitting(now);
  }
  adopt_departed(now);
  last_stats_ns_ = now;
  add_loop_callbacks();

  host_ = std::make_unique<Host>(*this);
  strategy_->attach(*host_);
  try {
    strategy_->on_start();
  } catch (const std::exception& e) {
    throw ConfigError("strategy group " + group_.name + " (" + group_.kind +
                      ") refused to start: " + e.what());
  }
  if (const auto unread = params_.unread(); !unread.empty()) {
    std::string keys;
    for (const auto& k : unread) keys += (keys.empty() ? "" : ", ") + k;
    throw ConfigError(params_.where() + ": unknown key(s) " + keys + " (the " + group_.kind +
                      " strategy does not read them)");
  }

  std::string list;
  for (const auto& s : symbols_) list += (list.empty() ? "" : ",") + s;
  spdlog::info("{} of {} of group {} ({}) trading [{}], boot {}, {} pending signal(s) restored from {}",
               shard_, shards_, group_.name, group_.kind, list, ids_.boot_ms(), outbox_.size(),
               journal_.path());
  if (symbols_.empty())
    spdlog::warn("no instrument hashes to shard {} of {}: nothing to trade", shard_, shards_);
  // A scrape before the first stats interval sees zeros, not a 503.
  if (metrics_) metrics_->publish(metrics_text(), clock_.now_ns());
}

std::size_t StrategyNode::signals_pending() const noexcept {
  std::size_t n = outbox_.size();
  for (const auto& a : adopted_) n += a.outbox->size();
  return n;
}

std::vector<std::uint32_t> StrategyNode::adopted_shards() const {
  std::vector<std::uint32_t> out;
  for (const auto& a : adopted_) out.push_back(a.shard);
  std::sort(out.begin(), out.end());
  return out;
}

void StrategyNode::subscribe_ack_topic(const std::string& topic) {
  if (ack_topics_.insert(topic).second) acks_.set(zmq::sockopt::subscribe, topic);
}

void StrategyNode::subscribe_acks(std::uint32_t shard, const SignalJournal& journal) {
  // The executor acks on the topic named by the signal itself, so a journal
  // written under another strategy name still hears its acks.
  subscribe_ack_topic(proto::ack_topic(group_.name, shard));
  for (const auto& s : journal.replay().pending)
    subscribe_ack_topic(proto::ack_topic(s.strategy, s.instance));
}

void StrategyNode::report_replay(const SignalJournal& journal) {
  const auto file = std::filesystem::path(journal.path()).filename().string();
  for (const auto& bad : journal.replay().unreadable) {
    ++journal_corrupt_;
    std::string detail = file + " offset " + std::to_string(bad.offset) + ": unreadable record (" +
                         std::to_string(bad.raw.size()) + " bytes); ";
    if (bad.signal_id.empty())
      detail += "no signal id recoverable";
    else if (bad.settled)
      detail += "signal " + bad.signal_id + ", also readable or acked elsewhere in the journal";
    else
      detail += "signal " + bad.signal_id + " cannot be resent: its bytes are damaged";
    dead_letters_.send("journal_corrupt", detail, bad.raw);
  }
  if (const auto& torn = journal.replay().torn) {
    ++journal_torn_;
    // Only a signal record is worth a dead letter: its signal was never sent
    // (the send follows the write that was cut short). A torn A or X record
    // only means the signal is resent once more and answered DUPLICATE.
    if (!torn->signal_id.empty() && !torn->settled)
      dead_letters_.send("journal_torn",
                         file + " offset " + std::to_string(torn->offset) +
                             ": torn last record (a write cut short by a crash; never sent), signal " +
                             torn->signal_id + "; set aside in " + journal.torn_path(),
                         torn->raw);
  }
}

void StrategyNode::adopt_departed(std::int64_t now) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::pair<std::uint32_t, std::string>> found;
  for (auto it = fs::directory_iterator(cfg_.run.dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const auto shard = journal_shard(it->path().filename().string(), group_.name + "-");
    if (!shard || *shard < shards_ || *shard % shards_ != shard_) continue;
    if (std::any_of(adopted_.begin(), adopted_.end(), [&](const auto& a) { return a.shard == *shard; }))
      continue;
    found.emplace_back(*shard, it->path().string());
  }
  std::sort(found.begin(), found.end());
  for (auto& [shard, path] : found) {
    AdoptedJournal a;
    a.shard = shard;
    try {
      a.journal = std::make_unique<SignalJournal>(path, SignalJournal::default_compact_bytes,
                                                  SignalJournal::Mode::adopt);
    } catch (const JournalLocked& e) {
      // Its owner (or an earlier adopter) has not let go yet: try again at
      // the next scan rather than read a journal someone else appends to.
      ++journal_locked_;
      std::uint64_t suppressed = 0;
      if (limiter_.allow("adopt_locked", now, suppressed))
        spdlog::warn("{}; not adopted yet, trying again every {} ms", e.what(), adopt_scan_ns / ns_per_ms);
      continue;
    } catch (const std::exception& e) {
      std::uint64_t suppressed = 0;
      if (limiter_.allow("adopt_failed", now, suppressed))
        spdlog::error("cannot adopt {}: {}; trying again every {} ms", path, e.what(),
                      adopt_scan_ns / ns_per_ms);
      continue;
    }
    report_replay(*a.journal);
    a.outbox = std::make_unique<SignalOutbox>(*a.journal, resend_ns_, give_up_ns_);
    a.outbox->restore(now);  // all due now: resent on the next timer pass
    for (const auto& pending : a.journal->replay().pending) remember_open(pending.signal_id);
    subscribe_acks(shard, *a.journal);
    spdlog::info("adopted {} of departed shard {} (now {} shards): {} pending signal(s) to resend", path,
                 shard, shards_, a.outbox->size());
    const auto& r = a.journal->replay();
    // Nothing left to deliver: keep only its boot record, which a returning
    // shard needs to pick a fresh boot time. Unreadable records, once
    // reported, go the same way.
    if (!r.unreadable.empty() || (a.outbox->size() == 0 && r.records > 1))
      compact_journal(*a.outbox, r.last_boot_ms, now);
    a.compacted_empty = a.outbox->size() == 0;
    adopted_.push_back(std::move(a));
  }
}

void StrategyNode::add_loop_callbacks() {
  loop_.add_reader(ticks_, [this] {
    std::size_t count = 0;
    for (int i = 0; i < max_batch && recv_message(ticks_, frames_, 2, count); ++i) on_feed_message(count);
  });
  loop_.add_reader(acks_, [this] {
    std::size_t count = 0;
    for (int i = 0; i < max_batch && recv_message(acks_, frames_, 2, count); ++i) on_ack_message(count);
  });
  loop_.add_work([this] {
    ticks_monitor_.drain();
    acks_monitor_.drain();
    probe_journal(clock_.now_ns());
    disk_.poll(monotonic_ns());
    check_feed(clock_.now_ns());
    return 0;
  });
  // The timers keep their cadence on monotonic time; what they decide
  // (resend, give up, compact) is on wall time, the time the journal keeps.
  using Cadence = RunLoop::Cadence;
  const auto start = clock_.monotonic_ns();
  loop_.add_timer(start, resend_scan_ns_, Cadence::fixed_delay,
                  [this](std::int64_t) { scan_outboxes(clock_.now_ns()); });
  loop_.add_timer(start + adopt_scan_ns, adopt_scan_ns, Cadence::fixed_delay,
                  [this](std::int64_t) { adopt_departed(clock_.now_ns()); });
  loop_.add_timer(start, ms_to_ns(cfg_.run.stats_interval_ms), Cadence::fixed_delay,
                  [this](std::int64_t) { write_stats(); });
}

int StrategyNode::run() {
  loop_.run();
  guarded("on_stop", [this] { strategy_->on_stop(); });
  // Every journal record is already written; the final stats close the run.
  write_stats();
  spdlog::info(
      "stopped: {} ticks, {} signals emitted, {} acked, {} pending ({} in {} adopted journal(s)), {} not "
      "journaled (dropped)",
      ticks_received_, signals_emitted_, signals_acked_, signals_pending(),
      signals_pending() - outbox_.size(), adopted_.size(), signals_not_journaled_);
  return 0;
}

void StrategyNode::poll_once(int max_wait_ms) { loop_.run_once(max_wait_ms); }

void StrategyNode::on_feed_message(std::size_t frame_count) {
  if (frame_count != 2) {
    dead_letters_.send("bad_frames",
                       "feed message with " + std::to_string(frame_count) + " frames, expected 2",
                       join_frames(frames_, std::min<std::size_t>(frame_count, 2)));
    return;
  }
  const auto topic = view_of(frames_[0]);
  const auto payload = view_of(frames_[1]);
  if (proto::topic_matches(topic, proto::heartbeat_topic)) {
    auto hb = decoder_.decode_heartbeat(proto::as_bytes(payload));
    if (!hb) {
      dead_letters_.send(hb.error(), payload);
      return;
    }
    on_heartbeat(hb.value());
    return;
  }
  // SUB filters are prefixes: "TICK.EURUSDX" passes a "TICK.EURUSD" filter.
  // Such a tick is someone else's, not bad input, so it is only counted.
  auto it = by_topic_.find(topic);
  if (it == by_topic_.end()) {
    ++wrong_topic_;
    return;
  }
  try {
    on_tick(it->second, payload);
  } catch (const std::exception& e) {
    // A bug or resource failure on one tick must not end the instance.
    dead_letters_.send("internal_error", e.what(), payload);
  }
}

void StrategyNode::on_tick(Traded& inst, std::string_view payload) {
  if (auto err = decoder_.decode_into(proto::as_bytes(payload), tick_)) {
    dead_letters_.send(*err, payload);
    return;
  }
  const auto& tick = tick_;
  if (tick.instrument != inst.symbol) {
    dead_letters_.send("topic_mismatch",
                       "topic TICK." + inst.symbol + " carries a tick of " + tick.instrument, payload);
    return;
  }
  const auto now = clock_.now_ns();
  std::string detail;
  if (auto problem = timestamp_problem(tick, now, detail); !problem.empty()) {
    // Trading on a price from another time is worse than not trading: the
    // tick neither moves the indicators nor keeps the feed alive.
    dead_letters_.send(problem, detail, payload);
    return;
  }

  const auto last_seq = inst.seq.last();
  const auto gaps_before = inst.seq.gaps();
  switch (inst.seq.on_seq(tick.seq)) {
    case SeqVerdict::stale:
      // Counted by the tracker (out_of_order) and kept for inspection: a
      // replayed or reordered tick must not feed the indicators twice.
      if (tick.seq == last_seq)
        dead_letters_.send("duplicate_seq",
                           "seq " + std::to_string(tick.seq) + " of " + inst.symbol + " seen already",
                           payload);
      else
        dead_letters_.send(
            "out_of_order",
            "seq " + std::to_string(tick.seq) + " of " + inst.symbol + " after " + std::to_string(last_seq),
            payload);
      return;
    case SeqVerdict::restart:
      // A restarted gateway starts a new price series: the strategy is told
      // before the first tick of it.
      ++feed_restarts_;
      guarded("on_feed",
              [&] { strategy_->on_feed({.kind = tp::FeedEventKind::restarted, .instrument = inst.symbol}); });
      break;
    case SeqVerdict::accept:
      // The tracker is the one judge of a gap (joining a running feed is none).
      if (const auto missed = inst.seq.gaps() - gaps_before; missed > 0)
        guarded("on_feed", [&] {
          strategy_->on_feed({.kind = tp::FeedEventKind::gap, .instrument = inst.symbol, .missed = missed});
        });
      break;
  }
  ++ticks_received_;
  tick_lag_.observe(now, tick.gateway_ts_ns);
  if (now >= tick.gateway_ts_ns) {
    tick_latency_.record(now - tick.gateway_ts_ns);
    tick_latency_seconds_.observe(static_cast<double>(now - tick.gateway_ts_ns) / 1e9);
  }
  const bool feed_was_alive = feed_.alive(now);
  feed_.on_activity(now);
  check_feed(now);
  inst.ticked = true;
  inst.bid = tick.bid;
  inst.ask = tick.ask;
  inst.tick_seq = tick.seq;
  inst.tick_gateway_ts_ns = tick.gateway_ts_ns;

  const tp::Tick view{.instrument = inst.symbol,
                      .bid = tick.bid,
                      .ask = tick.ask,
                      .bid_volume = tick.bid_volume,
                      .ask_volume = tick.ask_volume,
                      .source_ts_ns = tick.source_ts_ns,
                      .gateway_ts_ns = tick.gateway_ts_ns,
                      .seq = tick.seq};
  // A tick that ends a dead spell still reaches the strategy (its indicators
  // move on), but what they say across the outage is stale: no signal from it.
  suppress_emits_ = !feed_was_alive;
  guarded("on_tick", [&] { strategy_->on_tick(view); });
  suppress_emits_ = false;
}

void StrategyNode::check_feed(std::int64_t now) {
  const bool alive = feed_.alive(now);
  if (alive == feed_reported_alive_) return;
  feed_reported_alive_ = alive;
  if (!alive)
    spdlog::warn(
        "{}: feed dead: no tick nor heartbeat within max_tick_age_ms for feed_timeout_ms ({} ms; {} "
        "heartbeats refused so far): no signal until it is alive",
        name_, cfg_.strategy.feed_timeout_ms, heartbeats_refused_);
  else
    spdlog::info("{}: feed alive", name_);
  guarded("on_feed",
          [&] { strategy_->on_feed({.kind = alive ? tp::FeedEventKind::alive : tp::FeedEventKind::dead}); });
}

std::string_view StrategyNode::timestamp_problem(const proto::TickEvent& tick, std::int64_t now_ns,
                                                 std::string& detail) const {
  const auto ahead = saturating_diff(tick.gateway_ts_ns, now_ns);
  switch (freshness_.judge(tick.gateway_ts_ns, now_ns)) {
    case StampVerdict::fresh:
      return {};
    case StampVerdict::future:
      detail = "gateway_ts_ns " + std::to_string(tick.gateway_ts_ns) + " is " +
               std::to_string(ahead / ns_per_ms) + " ms ahead of this host's clock (max_clock_skew_ms " +
               std::to_string(freshness_.max_skew_ns / ns_per_ms) + ")";
      return "future_timestamp";
    case StampVerdict::stale:
      break;
  }
  detail = "gateway_ts_ns " + std::to_string(tick.gateway_ts_ns) + " is " +
           std::to_string(-(ahead / ns_per_ms)) + " ms old (max_tick_age_ms " +
           std::to_string(freshness_.max_age_ns / ns_per_ms) + ")";
  return "stale";
}

std::string StrategyNode::emit(const tp::SignalRequest& r) {
  const auto now = clock_.now_ns();
  const auto refuse = [&](const std::string& why) {
    ++signals_refused_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("emit_refused", now, suppressed))
      spdlog::warn("{}: signal refused: {} ({} more refusals not logged)", name_, why, suppressed);
    return std::string();
  };
  auto it = by_symbol_.find(r.instrument);
  if (it == by_symbol_.end())
    return refuse("instrument \"" + std::string(r.instrument) + "\" is not one this instance trades");
  const auto& inst = *it->second;
  if (r.side != tp::Side::buy && r.side != tp::Side::sell) return refuse("side is neither buy nor sell");
  const double quantity = r.quantity == 0 ? group_.quantity : r.quantity;
  if (!(quantity > 0) || !std::isfinite(quantity)) return refuse("quantity must be > 0");
  if (r.ttl_ms < 0) return refuse("ttl_ms must be >= 0");
  if (!inst.ticked && r.trigger_price == 0) return refuse("no price for " + inst.symbol + " yet");
  const double price = r.trigger_price != 0 ? r.trigger_price : r.side == tp::Side::buy ? inst.ask : inst.bid;
  if (!(price > 0) || !std::isfinite(price)) return refuse("trigger_price must be > 0");
  if (suppress_emits_ || !feed_.alive(now)) {
    ++signals_suppressed_;
    return {};
  }
  // Checked here, for every strategy (built-in, plugin) and whether it emits
  // from on_tick or a timer: the backlog a paused process or a returning link
  // delivers moves the indicators, but its prices are not the market's now.
  if (inst.ticked && !freshness_.tradeable(inst.tick_gateway_ts_ns, now)) {
    ++signals_stale_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("emit_stale", now, suppressed))
      spdlog::warn("{}: no signal from a tick {} ms old (max_signal_tick_age_ms {}; {} more not logged)",
                   name_, saturating_diff(now, inst.tick_gateway_ts_ns) / ns_per_ms,
                   freshness_.max_signal_age_ns / ns_per_ms, suppressed);
    return {};
  }
  const auto ttl_ns = r.ttl_ms == 0 ? ms_to_ns(cfg_.strategy.signal_ttl_ms)
                                    : std::min<std::int64_t>(r.ttl_ms, 1LL << 40) * ns_per_ms;
  std::string why;
  const auto terms = terms_of(r, price, now, ttl_ns, why);
  if (!why.empty()) return refuse(why);
  proto::TradingSignal s;
  s.signal_id = ids_.next();
  s.strategy = group_.name;
  s.instance = shard_;
  s.instrument = inst.symbol;
  s.action = r.side == tp::Side::buy ? proto::Side::buy : proto::Side::sell;
  s.quantity = quantity;
  s.trigger_price = price;
  s.confidence = std::clamp(std::isfinite(r.confidence) ? r.confidence : 0.0, 0.0, 1.0);
  s.created_ts_ns = now;
  s.expires_ts_ns = now + ttl_ns;
  s.causation_seq = inst.tick_seq;
  s.causation_ts_ns = inst.tick_gateway_ts_ns;
  s.order_type = terms.order_type;
  s.limit_price = terms.limit_price;
  s.time_in_force = terms.time_in_force;
  s.good_till_ns = terms.good_till_ns;
  if (auto err = proto::validate(s)) {
    dead_letters_.send("invalid_signal", err->message(), std::string_view{});
    return refuse(err->message());
  }
  const auto payload = encoder_.encode(s);
  // Journal first: a crash between the two resends it; the other order could
  // lose a signal the executor never saw. A signal that cannot be journaled
  // is never sent: for the rest of the pipeline it never existed, and the
  // books (journal vs executor vs broker) still balance.
  if (!journal_signal(s, payload, now)) {
    ++signals_not_journaled_;
    return {};
  }
  ++signals_emitted_;
  send_signal(payload);
  remember_open(s.signal_id);
  return s.signal_id;
}

proto::OrderTerms StrategyNode::terms_of(const tp::SignalRequest& r, double trigger, std::int64_t now,
                                         std::int64_t ttl_ns, std::string& why) const {
  proto::OrderTerms t;
  switch (r.order_type) {
    case tp::OrderType::group_default:
      t.order_type = default_order_type_;
      break;
    case tp::OrderType::market:
      t.order_type = proto::OrderType::market;
      break;
    case tp::OrderType::limit:
      t.order_type = proto::OrderType::limit;
      break;
    default:
      why = "order_type is neither market nor limit";
      return t;
  }
  const bool market = t.order_type == proto::OrderType::market;
  switch (r.time_in_force) {
    // A market order asked for by the strategy is IOC whatever the group's
    // resting default is for its limit orders.
    case tp::TimeInForce::group_default:
      t.time_in_force = market ? proto::TimeInForce::ioc : default_time_in_force_;
      break;
    case tp::TimeInForce::ioc:
      t.time_in_force = proto::TimeInForce::ioc;
      break;
    case tp::TimeInForce::gtc:
      t.time_in_force = proto::TimeInForce::gtc;
      break;
    case tp::TimeInForce::gtd:
      t.time_in_force = proto::TimeInForce::gtd;
      break;
    default:
      why = "time_in_force is none of ioc, gtc, gtd";
      return t;
  }
  if (market && t.time_in_force != proto::TimeInForce::ioc) {
    why = "a market order is immediate-or-cancel (time_in_force gtc or gtd needs order_type limit)";
    return t;
  }
  if (market) {
    if (r.limit_price != 0) why = "limit_price is for limit orders";
  } else if (r.limit_price != 0) {
    t.limit_price = r.limit_price;
  } else {
    // Positive bps is passive: below the trigger for a buy, above for a sell.
    const double offset = group_.orders.limit_offset_bps / 1e4;
    t.limit_price = trigger * (r.side == tp::Side::buy ? 1.0 - offset : 1.0 + offset);
  }
  if (!why.empty()) return t;
  if (!market && !(t.limit_price > 0 && std::isfinite(t.limit_price))) {
    why = "limit_price must be > 0";
    return t;
  }
  if (r.good_till_ms < 0) {
    why = "good_till_ms must be >= 0";
    return t;
  }
  if (t.time_in_force != proto::TimeInForce::gtd) {
    if (r.good_till_ms != 0) why = "good_till_ms is for time_in_force gtd";
    return t;
  }
  const std::int64_t good_for_ns = r.good_till_ms != 0
                                       ? std::min<std::int64_t>(r.good_till_ms, 1LL << 40) * ns_per_ms
                                   : group_.orders.good_till_ms ? ms_to_ns(group_.orders.good_till_ms)
                                                                : ttl_ns;
  t.good_till_ns = now + good_for_ns;
  return t;
}

void StrategyNode::remember_open(std::string_view signal_id) {
  auto [it, fresh] = open_orders_.try_emplace(std::string(signal_id), open_count_ + 1);
  if (!fresh) return;
  open_by_age_.emplace(++open_count_, it->first);
  // Bounded: an order whose final event never reached us (a dropped PUB
  // message) must not hold memory for ever; the oldest is forgotten first.
  while (open_by_age_.size() > open_memory) {
    open_orders_.erase(open_by_age_.begin()->second);
    open_by_age_.erase(open_by_age_.begin());
  }
}

bool StrategyNode::order_over(std::string_view signal_id) {
  if (auto it = open_orders_.find(signal_id); it != open_orders_.end()) {
    open_by_age_.erase(it->second);
    open_orders_.erase(it);
  }
  auto c = cancels_.find(signal_id);
  if (c == cancels_.end()) return false;
  cancels_.erase(c);
  return true;
}

bool StrategyNode::cancel_order(std::string_view signal_id, std::string_view reason) {
  const auto now = clock_.now_ns();
  if (!open_orders_.count(signal_id)) {
    ++cancels_not_open_;
    return false;
  }
  if (cancels_.count(signal_id)) return true;  // under way: the executor answers a repeat DUPLICATE anyway
  proto::CancelRequest request;
  request.signal_id = std::string(signal_id);
  request.strategy = group_.name;
  request.instance = shard_;
  request.reason = std::string(clipped(reason, proto::max_text_length));
  request.created_ts_ns = now;
  if (auto err = proto::validate(request)) {
    ++cancels_not_open_;
    return false;
  }
  auto& pending = cancels_[request.signal_id];
  pending.payload = std::string(encoder_.encode(request));
  pending.next_send_ns = now;
  if (!signal_unacked(signal_id)) send_cancel(pending, now);
  return true;
}

bool StrategyNode::signal_unacked(std::string_view signal_id) const {
  if (outbox_.contains(signal_id)) return true;
  return std::any_of(adopted_.begin(), adopted_.end(),
                     [&](const AdoptedJournal& a) { return a.outbox->contains(signal_id); });
}

void StrategyNode::send_cancel(PendingCancel& cancel, std::int64_t now) {
  // Sent or not (no executor, a full queue), it is tried again at the next
  // resend: a cancel is only over when acked or its order is final.
  try {
    publish(signals_, cancel.payload, cancel_sends_);
  } catch (const zmq::error_t& e) {
    ++signal_send_errors_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("send", now, suppressed)) spdlog::warn("cancel send failed: {}", e.what());
  }
  ++(cancel.sent ? cancels_resent_ : cancels_sent_);
  cancel.sent = true;
  cancel.next_send_ns = now + resend_ns_;
}

void StrategyNode::send_cancels_due(std::int64_t now) {
  for (auto& [id, cancel] : cancels_)
    if (now >= cancel.next_send_ns && !signal_unacked(id)) send_cancel(cancel, now);
}

void StrategyNode::on_cancel_ack(const proto::SignalAck& ack) {
  auto it = cancels_.find(ack.signal_id);
  if (it == cancels_.end()) {
    ++cancel_acks_unmatched_;  // the ack of a resend already acked
    return;
  }
  cancels_.erase(it);
  if (ack.status == proto::AckStatus::rejected) {
    // The order stays as it is (final already, or not ours): what becomes
    // of it still arrives as ORDER events.
    ++cancels_refused_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("cancel_refused", clock_.now_ns(), suppressed))
      spdlog::info("{}: cancel of {} refused: {} ({} more not logged)", name_, ack.signal_id, ack.reason,
                   suppressed);
  } else {
    ++cancels_acked_;
  }
}

bool StrategyNode::journal_signal(const proto::TradingSignal& signal, std::string_view payload,
                                  std::int64_t now_ns) {
  if (!ensure_boot_record()) {
    journal_write_failed(journal_, rewrite_owed_ ? "compact" : "write (boot record)",
                         "not emitting: signal " + signal.signal_id +
                             " dropped before it was sent; the next signal tries again");
    stop_emitting(now_ns);
    return false;
  }
  if (!outbox_.add(signal, payload, now_ns)) {
    journal_write_failed(journal_, "write (signal record)",
                         "not emitting: signal " + signal.signal_id +
                             " dropped before it was sent; the next signal tries again");
    stop_emitting(now_ns);
    return false;
  }
  journal_ok();
  return true;
}

bool StrategyNode::ensure_boot_record() {
  if (boot_journaled_) return true;
  const bool ok = rewrite_owed_ ? outbox_.compact(ids_.boot_ms()) : journal_.append_boot(ids_.boot_ms());
  if (ok) {
    boot_journaled_ = true;
    rewrite_owed_ = false;
  }
  return ok;
}

void StrategyNode::journal_write_failed(const SignalJournal& journal, std::string_view what,
                                        std::string_view consequence) {
  ++journal_errors_;
  write_failures_.record(journal.path(), what, journal.last_errno(), consequence);
}

void StrategyNode::stop_emitting(std::int64_t now_ns) {
  if (emitting_) ++emission_stops_;
  emitting_ = false;
  const int err = journal_.last_errno();
  journal_error_ =
      "cannot write " + file_name(journal_.path()) + ": " + (err ? std::strerror(err) : "failed");
  next_journal_probe_ns_ = now_ns + journal_probe_ns;
}

void StrategyNode::journal_ok() {
  if (!emitting_) {
    emitting_ = true;
    journal_error_.clear();
    spdlog::info("signal journal {} writable again: emitting signals again ({} dropped unjournaled so far)",
                 journal_.path(), signals_not_journaled_);
  }
  write_failures_.recovered(journal_.path());
}

bool StrategyNode::ack_in(SignalOutbox& outbox, std::string_view signal_id) {
  auto& journal = outbox.journal();
  const auto failed_before = journal.failed_writes();
  const bool matched = outbox.ack(signal_id);
  if (journal.failed_writes() != failed_before) {
    ++acks_not_journaled_;
    journal_write_failed(
        journal, "write (ack record)",
        "signal " + std::string(signal_id) +
            " is settled all the same; its ack record is written once the journal takes it (a restart "
            "before that resends it once, answered DUPLICATE)");
  } else if (matched && (&journal != &journal_ || emitting_)) {
    // The own journal recovers only through a signal or boot record: a
    // short A record fitting where a signal did not is no proof of space.
    write_failures_.recovered(journal.path());
  }
  return matched;
}

bool StrategyNode::compact_journal(SignalOutbox& outbox, std::int64_t boot_ms, std::int64_t now_ns) {
  auto& journal = outbox.journal();
  if (outbox.compact(boot_ms)) {
    if (&journal == &journal_) {
      // The rewrite holds this run's boot record (and none of the unreadable
      // ones): whatever was owed is written.
      boot_journaled_ = true;
      rewrite_owed_ = false;
      journal_ok();
    } else {
      write_failures_.recovered(journal.path());
    }
    return true;
  }
  ++compactions_failed_;
  next_compact_ns_ = now_ns + compact_retry_ns;
  journal_write_failed(journal, "compact (via " + file_name(journal.path()) + ".tmp)",
                       "the journal is kept as it is and compacted later (tried again in " +
                           std::to_string(compact_retry_ns / ns_per_ms) + " ms)");
  return false;
}

bool StrategyNode::send_signal(std::string_view payload) {
  // A signal not sent stays pending; the resend timer tries again.
  try {
    return publish(signals_, payload, signal_sends_);
  } catch (const zmq::error_t& e) {
    ++signal_send_errors_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("send", clock_.now_ns(), suppressed)) spdlog::warn("signal send failed: {}", e.what());
    return false;
  }
}

void StrategyNode::on_heartbeat(const proto::Heartbeat& hb) {
  ++heartbeats_;
  // Aged as a tick is: a gateway whose ticks are all refused must not be
  // kept alive by its heartbeats (its clock far behind, or a backlog).
  const auto now = clock_.now_ns();
  if (!feed_.on_message(now, freshness_.judge(hb.ts_ns, now))) {
    ++heartbeats_refused_;
    std::uint64_t suppressed = 0;
    if (limiter_.allow("heartbeat_refused", now, suppressed))
      spdlog::warn(
          "{}: heartbeat stamped {} ms from this host's clock refused (max_tick_age_ms {}, "
          "max_clock_skew_ms {}): it does not keep the feed alive ({} more not logged)",
          name_, saturating_diff(hb.ts_ns, now) / ns_per_ms, freshness_.max_age_ns / ns_per_ms,
          freshness_.max_skew_ns / ns_per_ms, suppressed);
  }
  // A gateway process counts heartbeats and ticks from zero: going backwards
  // means a new process, whose tick seqs start again too.
  if (heartbeats_ > 1 && (hb.seq < last_heartbeat_.seq || hb.ticks_sent < last_heartbeat_.ticks_sent)) {
    spdlog::info("gateway restarted (heartbeat seq {} after {}): new tick series", hb.seq,
                 last_heartbeat_.seq);
    for (auto& [topic, inst] : by_topic_) inst.seq.expect_restart();
  }
  last_heartbeat_ = hb;
}

void StrategyNode::on_ack_message(std::size_t frame_count) {
  if (frame_count != 2) {
    dead_letters_.send("bad_frames",
                       "ack message with " + std::to_string(frame_count) + " frames, expected 2",
                       join_frames(frames_, std::min<std::size_t>(frame_count, 2)));
    return;
  }
  const auto topic = view_of(frames_[0]);
  const auto payload = view_of(frames_[1]);
  // Exact topics only: "ACK.x.1" is a prefix of "ACK.x.10", "ORDER.EURUSD"
  // of "ORDER.EURUSDX": another instance's or instrument's.
  if (order_topics_.count(topic)) {
    on_order_event(payload);
    return;
  }
  if (topic == position_topic_) {
    on_position(payload);
    return;
  }
  if (ack_topics_.find(topic) == ack_topics_.end()) {
    ++wrong_topic_;
    return;
  }
  auto ack = decoder_.decode_signal_ack(proto::as_bytes(payload));
  if (!ack) {
    dead_letters_.send(ack.error(), payload);
    return;
  }
  // A cancel's ack says nothing about the signal's delivery, nor a signal's
  // about the cancel's: each settles only its own kind.
  if (ack->cancel) {
    on_cancel_ack(ack.value());
    return;
  }
  SignalOutbox* owner = outbox_.contains(ack->signal_id) ? &outbox_ : nullptr;
  for (auto it = adopted_.begin(); !owner && it != adopted_.end(); ++it)
    if (it->outbox->contains(ack->signal_id)) owner = it->outbox.get();
  if (owner && ack->status == proto::AckStatus::rejected) {
    order_over(ack->signal_id);  // refused: no order exists
    tell_refusal(*owner, ack.value());
  }
  const bool matched = owner && ack_in(*owner, ack->signal_id);
  if (matched && !cancels_.empty()) {
    // A cancel held for this signal may follow it now.
    auto held = cancels_.find(ack->signal_id);
    if (held != cancels_.end() && !held->second.sent) send_cancel(held->second, clock_.now_ns());
  }
  if (matched)
    ++signals_acked_;
  else
    ++acks_unmatched_;  // an ack for a resend that was already acked
}

void StrategyNode::tell_refusal(const SignalOutbox& outbox, const proto::SignalAck& ack) {
  const auto* pending = outbox.find(ack.signal_id);
  auto signal = decoder_.decode_signal(proto::as_bytes(pending->payload));
  if (!signal) return;  // journaled bytes that no longer decode: replay reported them
  ++order_updates_;
  const tp::OrderUpdate update{.signal_id = signal->signal_id,
                               .instrument = signal->instrument,
                               .side = signal->action == proto::Side::buy ? tp::Side::buy : tp::Side::sell,
                               .status = tp::OrderStatus::rejected,
                               .quantity = signal->quantity,
                               .reason = ack.reason,
                               .event_ts_ns = ack.ts_ns,
                               .refused = true};
  guarded("on_order", [&] { strategy_->on_order(update); });
}

void StrategyNode::on_order_event(std::string_view payload) {
  auto event = decoder_.decode_order_event(proto::as_bytes(payload));
  if (!event) {
    dead_letters_.send(event.error(), payload);
    return;
  }
  // Every group's orders in our instruments arrive here: only ours count.
  if (!event->signal_id.starts_with(signal_prefix_)) return;
  auto it = by_symbol_.find(event->instrument);
  if (it == by_symbol_.end()) return;
  if (proto::is_final(event->status)) {
    // Filled, expired or cancelled before the executor acked our cancel.
    if (order_over(event->signal_id)) ++cancels_overtaken_;
  } else if (!settled_.count(event->signal_id)) {
    remember_open(event->signal_id);  // also one emitted before a restart
  }
  // filled_quantity is the order's total: the position moves by what is new.
  if (!settled_.count(event->signal_id)) {
    auto open = filled_.find(event->signal_id);
    const double fresh = event->filled_quantity - (open == filled_.end() ? 0.0 : open->second);
    if (fresh > 0) it->second->position += event->side == proto::Side::buy ? fresh : -fresh;
    if (proto::is_final(event->status)) {
      if (open != filled_.end()) filled_.erase(open);
      settled_.insert(event->signal_id);
      settled_order_.push_back(event->signal_id);
      if (settled_order_.size() > settled_memory) {
        settled_.erase(settled_order_.front());
        settled_order_.pop_front();
      }
    } else if (fresh > 0) {
      filled_[event->signal_id] = event->filled_quantity;
    }
  }
  ++order_updates_;
  const tp::OrderUpdate update{.signal_id = event->signal_id,
                               .instrument = event->instrument,
                               .order_id = event->order_id,
                               .side = event->side == proto::Side::buy ? tp::Side::buy : tp::Side::sell,
                               .status = static_cast<tp::OrderStatus>(event->status),
                               .quantity = event->quantity,
                               .filled_quantity = event->filled_quantity,
                               .fill_price = event->fill_price,
                               .reason = event->reason,
                               .event_ts_ns = event->event_ts_ns};
  guarded("on_order", [&] { strategy_->on_order(update); });
}

void StrategyNode::on_position(std::string_view payload) {
  auto report = decoder_.decode_strategy_position(proto::as_bytes(payload));
  if (!report) {
    dead_letters_.send(report.error(), payload);
    return;
  }
  if (report->strategy != group_.name) return;
  auto it = by_symbol_.find(report->instrument);
  if (it == by_symbol_.end()) return;
  // The executor's figure includes every fill it published before it: the
  // fills counted since the last report are in it.
  ++position_reports_;
  it->second->position = report->quantity;
  it->second->position_known = true;
}

void StrategyNode::give_up_due(SignalOutbox& outbox, std::int64_t now, const std::string& origin) {
  const auto failed_before = outbox.journal().failed_writes();
  auto given_up = outbox.give_up(now);
  if (const auto failed = outbox.journal().failed_writes() - failed_before; failed > 0) {
    give_ups_not_journaled_ += failed;
    journal_write_failed(
        outbox.journal(), "write (give-up record)",
        std::to_string(failed) +
            " signal(s) dead-lettered as unacked all the same; after a restart each is resent "
            "once (answered DUPLICATE, or refused as expired)");
  }
  for (auto& p : given_up) {
    ++signals_given_up_;
    order_over(p.signal_id);
    dead_letters_.send(
        "unacked",
        "no ack " + std::to_string(give_up_ns_ / ns_per_ms) + " ms after expiry for " + p.signal_id + origin,
        p.payload);
  }
}

void StrategyNode::scan_outboxes(std::int64_t now) {
  const auto send = [this](const PendingSignal& p) { return send_signal(p.payload); };
  signals_resent_ += outbox_.resend_due(now, send);
  send_cancels_due(now);
  // Settlement records a full disk refused: written as soon as it takes
  // them, so that the journal catches up with what is settled.
  if (outbox_.owed() > 0) outbox_.retry_owed();
  give_up_due(outbox_, now, "");
  // Not while this run's boot record is owed: the rewrite would write it,
  // and that is the start-up path's (or the probe's) to do.
  const bool may_compact = now >= next_compact_ns_;
  if (may_compact && boot_journaled_ && journal_.should_compact() &&
      compact_journal(outbox_, ids_.boot_ms(), now))
    spdlog::info("signal journal {} compacted to {} pending ({} bytes)", journal_.path(), outbox_.size(),
                 journal_.size_bytes());
  for (auto& a : adopted_) {
    signals_resent_ += a.outbox->resend_due(now, send);
    if (a.outbox->owed() > 0) a.outbox->retry_owed();
    give_up_due(*a.outbox, now, " (adopted from " + a.journal->path() + ")");
    if (now < next_compact_ns_) continue;
    const auto boot = a.journal->replay().last_boot_ms;
    if (a.outbox->size() == 0 && !a.compacted_empty) {
      // Every adopted signal is settled: the journal shrinks to its boot
      // record (kept for a shard that comes back) and stays locked by us.
      a.compacted_empty = compact_journal(*a.outbox, boot, now);
      if (a.compacted_empty) spdlog::info("adopted signal journal {} settled: compacted", a.journal->path());
    } else if (a.journal->should_compact()) {
      compact_journal(*a.outbox, boot, now);
    }
  }
}

void StrategyNode::probe_journal(std::int64_t now) {
  if (emitting_ || now < next_journal_probe_ns_) return;
  // Without a signal to try, the journal is probed with a boot record
  // (harmless to repeat), so that emission and the stats recover as soon
  // as space returns.
  if (boot_journaled_ ? journal_.append_boot(ids_.boot_ms()) : ensure_boot_record()) {
    journal_ok();
  } else {
    journal_write_failed(journal_, "write (probe)",
                         "still not emitting; tried again in " +
                             std::to_string(journal_probe_ns / ns_per_ms) + " ms and with the next signal");
    stop_emitting(now);
  }
}

std::string StrategyNode::stats_json() {
  const auto now = clock_.now_ns();
  if (now > last_stats_ns_) {
    ticks_per_s_ = static_cast<double>(ticks_received_ - ticks_at_last_stats_) * 1e9 /
                   static_cast<double>(now - last_stats_ns_);
    ticks_at_last_stats_ = ticks_received_;
    last_stats_ns_ = now;
  }
  const auto [gaps, out_of_order] = sequence_totals();
  std::string list;
  for (const auto& s : symbols_) list += (list.empty() ? "" : ",") + s;
  std::string adopted;
  for (auto k : adopted_shards()) adopted += (adopted.empty() ? "" : ",") + std::to_string(k);

  JsonObject by_reason;
  for (const auto& [reason, n] : dead_letters_.by_reason()) by_reason.add(reason, n);
  ConnectionCounters connections = ticks_monitor_.counters();
  connections += acks_monitor_.counters();

  JsonObject latency;
  latency.add("p50", static_cast<double>(tick_latency_.percentile(0.5)) / 1e3)
      .add("p99", static_cast<double>(tick_latency_.percentile(0.99)) / 1e3)
      .add("count", tick_latency_.count());
  auto o = stats_header(name_, now);
  o.add("shard", static_cast<std::uint64_t>(shard_))
      .add("shards", static_cast<std::uint64_t>(shards_))
      .add("strategy", group_.name)
      .add("group", group_.name)
      .add("kind", group_.kind)
      .add("instruments", list)
      .add("ticks_received", ticks_received_)
      .add("ticks_per_s", ticks_per_s_)
      .add("heartbeats", heartbeats_)
      .add("heartbeats_refused", heartbeats_refused_)
      .add("gaps", gaps)
      .add("out_of_order", out_of_order)
      .add("feed_restarts", feed_restarts_)
      .add("wrong_topic", wrong_topic_)
      .add("signals_emitted", signals_emitted_)
      .add("signals_suppressed", signals_suppressed_)
      .add("signals_stale", signals_stale_)
      .add("signals_refused", signals_refused_)
      .add("strategy_errors", strategy_errors_)
      .add("order_updates", order_updates_)
      .add("position_reports", position_reports_)
      .add("signals_acked", signals_acked_)
      .add("signals_resent", signals_resent_)
      .add("signals_pending", static_cast<std::uint64_t>(signals_pending()))
      .add("adopted_pending", static_cast<std::uint64_t>(signals_pending() - outbox_.size()))
      .add("journals_adopted", static_cast<std::uint64_t>(adopted_.size()))
      .add("adopted_shards", adopted)
      .add("signals_given_up", signals_given_up_)
      .add("send_would_block", signal_sends_.dropped + signal_send_errors_)
      .add("acks_unmatched", acks_unmatched_)
      .add("orders_open", static_cast<std::uint64_t>(open_orders_.size()))
      .add("cancels_sent", cancels_sent_)
      .add("cancels_resent", cancels_resent_)
      .add("cancels_acked", cancels_acked_)
      .add("cancels_refused", cancels_refused_)
      .add("cancels_overtaken", cancels_overtaken_)
      .add("cancels_pending", static_cast<std::uint64_t>(cancels_.size()))
      .add("cancels_not_open", cancels_not_open_)
      .add("cancel_acks_unmatched", cancel_acks_unmatched_)
      .add("cancel_send_would_block", cancel_sends_.dropped)
      .add("emitting", emitting_)
      .add("journal_state", emitting_ ? "ok" : "write_failed")
      .add("signals_not_journaled", signals_not_journaled_)
      .add("acks_not_journaled", acks_not_journaled_)
      .add("settlements_owed", static_cast<std::uint64_t>(outbox_.owed()))
      .add("give_ups_not_journaled", give_ups_not_journaled_)
      .add("journal_compactions_failed", compactions_failed_)
      .add("emission_stops", emission_stops_)
      .add("journal_errors", journal_errors_)
      .add("journal_bytes", journal_.size_bytes())
      .add("journal_corrupt", journal_corrupt_)
      .add("journal_torn", journal_torn_)
      .add("journal_locked", journal_locked_)
      .add("feed_alive", feed_.alive(now))
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("dead_letters_by_reason", by_reason)
      .add("connections_dropped", connections.dropped)
      .add("handshakes_failed", connections.handshakes_failed)
      .add("redials", connections.redials)
      .add("tick_latency_us", latency);
  clock_lags_.add_stats(o);
  write_failures_.add_stats(o);
  disk_.add_stats(o);
  // Shown by tpctl status next to the program's state.
  if (!emitting_) o.add("alert", "not emitting: " + journal_error_);
  return o.str();
}

bool StrategyNode::write_stats() {
  clock_lags_.roll();
  const bool written =
      write_stats_file(stats_path_, stats_json(), write_failures_,
                       "the last stats file stays (the supervisor may take this program for HUNG); tried "
                       "again every run.stats_interval_ms");
  // After the file: the snapshot shows the same figures, this write's failure included.
  if (metrics_) metrics_->publish(metrics_text(), clock_.now_ns());
  return written;
}

std::pair<std::uint64_t, std::uint64_t> StrategyNode::sequence_totals() const {
  std::uint64_t gaps = 0, out_of_order = 0;
  for (const auto& [topic, inst] : by_topic_) {
    gaps += inst.seq.gaps();
    out_of_order += inst.seq.out_of_order();
  }
  return {gaps, out_of_order};
}

// The names, helps and order are the Python runtime's too
// (strategy/python/tp_strategy/runtime.py metrics_text): one dashboard and
// one set of alert rules serve both.
std::string StrategyNode::metrics_text() const {
  using U = std::uint64_t;
  metrics::MetricsText m({{"program", "strategy"}, {"process", name_}, {"group", group_.name}});
  const auto now = clock_.now_ns();
  const auto [gaps, out_of_order] = sequence_totals();
  m.gauge("tp_strategy_info", "Always 1: the instance's runtime and strategy kind as labels.", U{1},
          {{"runtime", "cpp"}, {"kind", group_.kind}})
      .gauge("tp_strategy_shards", "Instances of the group (this one's index is in the process label).",
             U{shards_})
      .gauge("tp_strategy_instruments", "Instruments this shard trades.", U{symbols_.size()})
      .counter("tp_strategy_ticks_received_total", "Ticks accepted (in sequence, fresh, of our instruments).",
               ticks_received_)
      .gauge("tp_strategy_ticks_per_second", "Ticks received per second over the last stats interval.",
             ticks_per_s_)
      .counter("tp_strategy_heartbeats_received_total", "Gateway heartbeats believed.", heartbeats_)
      .counter("tp_strategy_heartbeats_refused_total",
               "Gateway heartbeats stamped too long ago or too far ahead (not keeping the feed alive).",
               heartbeats_refused_)
      .counter("tp_strategy_sequence_gaps_total", "Ticks missed: gaps in the per-instrument sequence.", gaps)
      .counter("tp_strategy_ticks_out_of_order_total", "Ticks dropped as duplicates or out of order.",
               out_of_order)
      .counter("tp_strategy_feed_restarts_total", "Gateway restarts seen (heartbeat sequence going back).",
               feed_restarts_)
      .counter("tp_strategy_wrong_topic_total",
               "Messages whose topic only starts with one of ours (ignored).", wrong_topic_)
      .gauge("tp_strategy_feed_alive",
             "1 while a believed tick or heartbeat came within strategy.feed_timeout_ms.", feed_.alive(now))
      .counter("tp_strategy_signals_sent_total", "Signals journaled and sent a first time.", signals_emitted_)
      .counter("tp_strategy_signals_suppressed_total",
               "Signals not sent: the feed was dead or its first tick after a dead spell.",
               signals_suppressed_)
      .counter("tp_strategy_signals_stale_total",
               "Signals not sent: their tick older than strategy.max_signal_tick_age_ms.", signals_stale_)
      .counter("tp_strategy_signals_refused_total",
               "Emit requests refused (not our instrument, bad terms, no price yet).", signals_refused_)
      .counter("tp_strategy_signals_acked_total", "Signals acknowledged by the executor.", signals_acked_)
      .counter("tp_strategy_signals_resent_total", "Signal sends after the first, no ack yet.",
               signals_resent_)
      .gauge("tp_strategy_signals_pending", "Signals sent and not yet acked, adopted journals included.",
             U{signals_pending()})
      .gauge("tp_strategy_adopted_signals_pending", "Pending signals of departed shards' adopted journals.",
             U{signals_pending() - outbox_.size()})
      .gauge("tp_strategy_journals_adopted", "Journals of departed shards this instance holds.",
             U{adopted_.size()})
      .counter("tp_strategy_signals_given_up_total",
               "Signals never acked, given up strategy.give_up_after_ms past expiry (dead-lettered).",
               signals_given_up_)
      .counter("tp_strategy_signal_sends_blocked_total",
               "Signal sends that could not go (no executor, its queue full); resent later.",
               signal_sends_.dropped + signal_send_errors_)
      .counter("tp_strategy_acks_unmatched_total", "Acks of no pending signal (repeats).", acks_unmatched_)
      .counter("tp_strategy_errors_total", "Exceptions out of the strategy's callbacks (dead-lettered).",
               strategy_errors_)
      .counter("tp_strategy_order_updates_total", "Order events and refusals told to the strategy.",
               order_updates_)
      .counter("tp_strategy_position_reports_total", "Position reports of the group received.",
               position_reports_)
      .gauge("tp_strategy_orders_open", "This instance's orders not known to be final.",
             U{open_orders_.size()})
      .counter("tp_strategy_cancels_sent_total", "Cancel requests sent a first time.", cancels_sent_)
      .counter("tp_strategy_cancels_resent_total", "Cancel requests sent again, no ack yet.", cancels_resent_)
      .counter("tp_strategy_cancels_acked_total", "Cancels acked ACCEPTED or DUPLICATE.", cancels_acked_)
      .counter("tp_strategy_cancels_refused_total", "Cancels acked REJECTED.", cancels_refused_)
      .counter("tp_strategy_cancels_overtaken_total",
               "Cancels ended by their order's final event before an ack.", cancels_overtaken_)
      .gauge("tp_strategy_cancels_pending", "Cancels sent or held and not yet acked.", U{cancels_.size()})
      .counter("tp_strategy_cancels_not_open_total", "Cancels asked of an id that is no open order.",
               cancels_not_open_)
      .counter("tp_strategy_cancel_acks_unmatched_total", "Cancel acks of no pending cancel (repeats).",
               cancel_acks_unmatched_)
      .counter("tp_strategy_cancel_sends_blocked_total", "Cancel sends that could not go; resent later.",
               cancel_sends_.dropped)
      .gauge("tp_strategy_emitting", "1 while the journal takes writes: 0 means no new signal is sent.",
             emitting_)
      .counter("tp_strategy_signals_not_journaled_total",
               "Signals dropped unsent: their journal record failed.", signals_not_journaled_)
      .counter("tp_strategy_acks_not_journaled_total",
               "Acks whose journal record failed (the signal is resent once after a restart).",
               acks_not_journaled_)
      .gauge("tp_strategy_settlements_owed", "Ack and give-up records still to write to the journal.",
             U{outbox_.owed()})
      .counter("tp_strategy_give_ups_not_journaled_total", "Give-ups whose journal record failed.",
               give_ups_not_journaled_)
      .counter("tp_strategy_journal_compactions_failed_total", "Journal compactions that failed.",
               compactions_failed_)
      .counter("tp_strategy_emission_stops_total",
               "Times emission stopped for a journal that could not be written.", emission_stops_)
      .counter("tp_strategy_journal_errors_total",
               "Failed journal writes of any kind, adopted journals included.", journal_errors_)
      .gauge("tp_strategy_journal_bytes", "Size of this instance's journal file.", U{journal_.size_bytes()})
      .counter("tp_strategy_journal_corrupt_records_total", "Unreadable journal records reported at start.",
               journal_corrupt_)
      .counter("tp_strategy_journal_torn_records_total", "Torn last journal records set aside at start.",
               journal_torn_)
      .counter("tp_strategy_journal_adoptions_locked_total",
               "Adoptions of a departed shard's journal put off: another process held it.", journal_locked_);
  for (const auto& s : symbols_) {
    const auto& t = *by_symbol_.at(s);
    if (t.position_known)
      m.gauge("tp_strategy_position",
              "The group's net position: the executor's last report plus fills since.", t.position,
              {{"instrument", s}});
  }
  m.histogram("tp_strategy_tick_latency_seconds",
              "Gateway publish to this instance's receipt, per tick received (same host clock assumed).",
              tick_latency_seconds_.sample());
  clock_lags_.add_metrics(m);
  m.counter("tp_dead_letters_sent_total", "Dead letters this program handed to the dead-letter sink.",
            dead_letters_.sent())
      .counter("tp_dead_letters_dropped_total",
               "Dead letters this program dropped unsent (the sink away and its queue full).",
               dead_letters_.dropped());
  m.counters("tp_strategy_dead_letters_total", "Dead letters raised (sent or dropped), by reason.",
             {dead_letters_.by_reason().begin(), dead_letters_.by_reason().end()}, "reason");
  ConnectionCounters connections = ticks_monitor_.counters();
  connections += acks_monitor_.counters();
  metrics::add_connection_metrics(m, connections);
  metrics::add_disk_metrics(m, disk_, cfg_.run.min_free_bytes, write_failures_);
  return m.str();
}

}  // namespace tp::strategy
