#include "gateway/gateway_node.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "common/run_loop.hpp"
#include "common/stats.hpp"
#include "common/zmq_util.hpp"

namespace tp::gateway {
namespace {

// Ticks published per loop pass at most, so that a flat-out source or a file
// full of bad rows still lets heartbeats, stats and the stop flag through.
constexpr std::uint64_t max_batch = 1024;
// The longest sleep: the stop source is looked at least this often.
constexpr int max_sleep_ms = 100;

}  // namespace

GatewayNode::GatewayNode(zmq::context_t& ctx, const tp::Config& cfg, GatewayOptions opts,
                         const tp::Security& security)
    : cfg_(cfg),
      opts_(opts),
      clock_(opts.test_clock_offset_ms * tp::ns_per_ms),
      pub_(tp::make_socket(
          ctx, zmq::socket_type::pub,
          tp::SocketOptions{.linger_ms = 500, .sndhwm = cfg.gateway.sndhwm, .network = cfg.network})),
      pub_monitor_(ctx, pub_),
      dead_letters_(ctx, cfg.endpoints.dead_letters, "gateway", clock_, security),
      pacer_(cfg.gateway.source == "csv" ? Pacer::replay(cfg.gateway.speed) : Pacer::rate(cfg.gateway.rate)),
      stats_path_(cfg.run_path("", "gateway.stats.json")),
      disk_({cfg.run.dir}, cfg.run.min_free_bytes) {
  if (cfg.gateway.source == "csv") {
    std::set<std::string, std::less<>> known;
    for (const auto& i : cfg.instruments) known.insert(i.symbol);
    csv_ =
        std::make_unique<CsvTickReader>(cfg.gateway.csv_path, cfg.gateway.csv_instrument, std::move(known));
  } else {
    feed_.emplace(cfg.instruments, cfg.gateway.seed);
  }
  for (const auto& i : cfg.instruments) topics_.emplace(i.symbol, proto::tick_topic(i.symbol));
  if (opts.test_clock_offset_ms != 0)
    spdlog::warn(
        "--test-clock-offset-ms {}: ticks and heartbeats are stamped this far off this host's clock "
        "(for tests only)",
        opts.test_clock_offset_ms);
  security.bind(pub_, cfg.endpoints.ticks);
  metrics_ = tp::metrics::start_metrics_server(cfg.metrics, "gateway", "gateway");
  spdlog::info(
      "publishing {} ticks on {} ({})", cfg.gateway.source, cfg.endpoints.ticks,
      csv_ ? cfg.gateway.csv_path : fmt::format("{} ticks/s, seed {}", cfg.gateway.rate, cfg.gateway.seed));
}

int GatewayNode::run(const std::function<bool()>& stop) {
  const std::int64_t hb_period = std::int64_t{cfg_.gateway.heartbeat_ms} * tp::ns_per_ms;
  const std::int64_t stats_period = std::int64_t{cfg_.run.stats_interval_ms} * tp::ns_per_ms;
  tp::RunLoop loop(clock_, stop, max_sleep_ms);
  const std::int64_t start = clock_.monotonic_ns();
  const std::int64_t publish_from = start + std::int64_t{std::max(0, opts_.start_delay_ms)} * tp::ns_per_ms;
  last_stats_ns_ = start;
  disk_.poll(start);
  publish_metrics();  // a scrape before the first stats interval sees zeros, not a 503

  loop.add_work([&] {
    const std::int64_t now = clock_.monotonic_ns();
    if (!done_ && now >= publish_from) publish_due(now);
    if (done_) {
      if (opts_.exit_when_done) loop.finish();
      return 0;
    }
    if (now < publish_from) {
      loop.wake_by(publish_from);
      return 0;
    }
    if (pacer_.flat_out()) return 1;  // more work right away (batches are capped)
    if (auto due = pacer_.next_due_ns()) loop.wake_by(*due);
    return 0;
  });
  // A first heartbeat at once tells subscribers the feed is up. Both timers
  // keep their phase and do not burst after a stall.
  using Cadence = tp::RunLoop::Cadence;
  loop.add_timer(start, hb_period, Cadence::fixed_rate, [this](std::int64_t) { send_heartbeat(); });
  loop.add_timer(start + stats_period, stats_period, Cadence::fixed_rate, [this](std::int64_t now) {
    pub_monitor_.drain();
    watch_connections(now);
    disk_.poll(now);
    write_stats(now);
  });
  loop.run();

  write_stats(clock_.monotonic_ns());
  spdlog::info("stopping: {} ticks published, {} heartbeats, {} csv rows skipped", counters_.ticks_published,
               counters_.heartbeats, counters_.csv_rows_skipped);
  return 0;
}

void GatewayNode::publish_due(std::int64_t now) {
  if (limit_reached()) {
    done_ = true;
  } else if (feed_) {
    publish_synthetic(now);
  } else {
    publish_csv(now);
  }
  if (done_) {
    spdlog::info("source done: {} ticks published{}", counters_.ticks_published,
                 opts_.exit_when_done ? "; exiting" : "; heartbeating until stopped");
  }
}

void GatewayNode::publish_synthetic(std::int64_t now) {
  std::uint64_t n = std::min(pacer_.due_count(now), max_batch);
  if (cfg_.gateway.max_ticks != 0) n = std::min(n, cfg_.gateway.max_ticks - counters_.ticks_published);
  for (std::uint64_t i = 0; i < n; ++i) {
    // One clock read per tick: a synthetic tick is stamped by its source the
    // moment it is sent (clock_gettime was ~6% of the publish path).
    const std::int64_t now_wall = clock_.now_ns();
    auto tick = feed_->next(now_wall);
    publish(tick, now_wall);
  }
  pacer_.sent(n);
  if (limit_reached()) done_ = true;
}

void GatewayNode::publish_csv(std::int64_t now) {
  for (std::uint64_t budget = max_batch; budget > 0; --budget) {
    if (!pending_) {
      auto row = csv_->next();
      if (!row) {
        done_ = true;
        return;
      }
      if (!row->ok()) {
        ++counters_.csv_rows_skipped;
        dead_letters_.send("bad_csv_row",
                           cfg_.gateway.csv_path + " line " + std::to_string(row->line) + ": " + row->error,
                           row->raw);
        continue;
      }
      pending_ = std::move(row->tick);
    }
    if (pacer_.due_at(pending_->source_ts_ns, now) > now) return;
    pending_->seq = ++csv_seq_[pending_->instrument];
    publish(*pending_, clock_.now_ns());
    pending_.reset();
    if (limit_reached()) {
      done_ = true;
      return;
    }
  }
}

void GatewayNode::publish(proto::TickEvent& tick, std::int64_t now_wall_ns) {
  const std::string& topic = topics_.at(tick.instrument);  // only configured instruments get here
  tick.gateway_ts_ns = now_wall_ns;
  if (counters_.first_tick_ns == 0) counters_.first_tick_ns = tick.gateway_ts_ns;
  counters_.last_tick_ns = tick.gateway_ts_ns;
  // PUB never refuses: beyond the high-water mark a slow subscriber loses
  // ticks, which is the at-most-once contract of the feed.
  tp::publish(pub_, topic, encoder_.encode(tick), sends_);
  ++counters_.ticks_published;
}

void GatewayNode::send_heartbeat() {
  proto::Heartbeat hb;
  hb.source = "gateway";
  hb.seq = ++heartbeat_seq_;
  hb.ts_ns = clock_.now_ns();
  hb.ticks_sent = counters_.ticks_published;
  tp::publish(pub_, proto::heartbeat_topic, encoder_.encode(hb), sends_);
  ++counters_.heartbeats;
}

void GatewayNode::write_stats(std::int64_t now) {
  if (now > last_stats_ns_) {
    ticks_per_s_ = static_cast<double>(counters_.ticks_published - last_stats_ticks_) * 1e9 /
                   static_cast<double>(now - last_stats_ns_);
    last_stats_ns_ = now;
    last_stats_ticks_ = counters_.ticks_published;
  }
  auto o = tp::stats_header("gateway", clock_.now_ns());
  o.add("ticks_published", counters_.ticks_published)
      .add("ticks_per_s", ticks_per_s_)
      .add("heartbeats", counters_.heartbeats)
      .add("csv_rows_skipped", counters_.csv_rows_skipped)
      .add("first_tick_ns", counters_.first_tick_ns)
      .add("last_tick_ns", counters_.last_tick_ns)
      .add("dead_letters", dead_letters_.sent() + dead_letters_.dropped())
      .add("connections_dropped", pub_monitor_.counters().dropped)
      .add("handshakes_failed", pub_monitor_.counters().handshakes_failed)
      .add("accept_failed", pub_monitor_.counters().accept_failed)
      .add("open_files", tp::open_files());
  disk_.add_stats(o);
  write_failures_.add_stats(o);
  tp::write_stats_file(stats_path_, o.str(), write_failures_,
                       "the supervisor sees no heartbeat until it succeeds");
  publish_metrics();
}

void GatewayNode::publish_metrics() {
  if (!metrics_) return;
  tp::metrics::MetricsText m({{"program", "gateway"}, {"process", "gateway"}});
  m.counter("tp_gateway_ticks_published_total", "Ticks published on the ticks PUB socket.",
            counters_.ticks_published)
      .gauge("tp_gateway_ticks_per_second", "Ticks published per second over the last stats interval.",
             ticks_per_s_)
      .counter("tp_gateway_heartbeats_sent_total", "Heartbeats published on HB.gateway.",
               counters_.heartbeats)
      .counter("tp_gateway_csv_rows_skipped_total", "CSV rows that could not be read (each dead-lettered).",
               counters_.csv_rows_skipped)
      .gauge("tp_gateway_first_tick_timestamp_seconds",
             "When the first tick was published, since unix epoch in seconds (0: none yet).",
             static_cast<double>(counters_.first_tick_ns) / 1e9)
      .gauge("tp_gateway_last_tick_timestamp_seconds",
             "When the last tick was published, since unix epoch in seconds (0: none yet).",
             static_cast<double>(counters_.last_tick_ns) / 1e9)
      .counter("tp_dead_letters_sent_total", "Dead letters this program handed to the dead-letter sink.",
               dead_letters_.sent())
      .counter("tp_dead_letters_dropped_total",
               "Dead letters this program dropped unsent (the sink away and its queue full).",
               dead_letters_.dropped());
  tp::metrics::add_connection_metrics(m, pub_monitor_.counters());
  tp::metrics::add_disk_metrics(m, disk_, cfg_.run.min_free_bytes, write_failures_);
  metrics_->publish(m.str(), clock_.now_ns());
}

void GatewayNode::watch_connections(std::int64_t now) {
  const auto failed = pub_monitor_.counters().accept_failed;
  if (failed == accept_failed_logged_) return;
  std::uint64_t suppressed = 0;
  if (limiter_.allow("accept_failed", now, suppressed)) {
    spdlog::error(
        "{} incoming connections refused so far (accept failed: out of descriptors?); "
        "those subscribers get no ticks, the rest do",
        failed);
    accept_failed_logged_ = failed;
  }
}

}  // namespace tp::gateway
