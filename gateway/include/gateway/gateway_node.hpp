// GatewayNode: owns the ticks PUB socket and the dead-letter sender and runs
// the gateway's single loop (a RunLoop that polls no socket): publish the
// ticks that are due (synthetic walk or CSV replay, paced by Pacer),
// heartbeat on HB.gateway every gateway.heartbeat_ms (also when idle or
// done), write
// <run.dir>/gateway.stats.json every run.stats_interval_ms and at exit, and
// at the same moments hand the same figures to the metrics server (when
// metrics.port is set), which serves them from its own thread.
// A stats file that cannot be written (full disk, no descriptor) is logged
// with its errno at a bounded rate (WriteFailures) and the loop goes on; the
// run dir's free space is polled (DiskWatch); subscribers refused for lack
// of descriptors are counted (`accept_failed`, through a SocketMonitor).
// Not thread-safe; construct, run, destroy on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/dead_letter.hpp"
#include "common/disk_watch.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "common/zmq_util.hpp"
#include "gateway/csv_tick_reader.hpp"
#include "gateway/pacer.hpp"
#include "gateway/synthetic_feed.hpp"
#include "proto/codec.hpp"

namespace tp::gateway {

struct GatewayOptions {
  // Return from run() once every tick is out (max_ticks reached or end of
  // CSV) instead of heartbeating until stopped.
  bool exit_when_done = false;
  // Publish nothing but heartbeats for this long after binding, so that
  // subscribers that are already waiting can connect and subscribe before the
  // first tick (benchmarks and tests that must see every tick).
  int start_delay_ms = 0;
  // Test only (--test-clock-offset-ms): the wall clock read this far off
  // (negative: behind), so that a test can show what a wrong gateway clock
  // does downstream without faketime, which the machines do not all have.
  std::int64_t test_clock_offset_ms = 0;
};

// The system clock with its wall time moved by a fixed offset (monotonic
// time, which drives the timers, is left alone).
class OffsetClock final : public tp::Clock {
 public:
  explicit OffsetClock(std::int64_t offset_ns) : offset_ns_(offset_ns) {}
  std::int64_t now_ns() const override { return tp::wall_ns() + offset_ns_; }
  std::int64_t monotonic_ns() const override { return tp::monotonic_ns(); }

 private:
  std::int64_t offset_ns_;
};

struct GatewayCounters {
  std::uint64_t ticks_published = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t csv_rows_skipped = 0;
  std::int64_t first_tick_ns = 0;  // wall time of the first and last tick published
  std::int64_t last_tick_ns = 0;
};

class GatewayNode {
 public:
  // Binds endpoints.ticks and connects the dead-letter sender; opens the CSV
  // file when gateway.source = "csv". Throws on a bind failure or an unusable
  // CSV file (start-up errors).
  GatewayNode(zmq::context_t& ctx, const tp::Config& cfg, GatewayOptions opts = {},
              const tp::Security& security = tp::Security::none());

  // Runs the loop until `stop` returns true (checked at least every 100 ms)
  // or, with exit_when_done, until everything is published. Writes the final
  // stats. Returns the process exit code (0).
  int run(const std::function<bool()>& stop);

  const GatewayCounters& counters() const noexcept { return counters_; }

 private:
  // Publishes what is due at monotonic `now`, at most a batch; sets done_.
  void publish_due(std::int64_t now);
  void publish_synthetic(std::int64_t now);
  void publish_csv(std::int64_t now);
  // Stamps gateway_ts_ns = now_wall_ns, encodes and sends on TICK.<instrument>.
  void publish(proto::TickEvent& tick, std::int64_t now_wall_ns);
  void send_heartbeat();
  void write_stats(std::int64_t now);
  // Renders the stats' figures as Prometheus metrics and swaps them in.
  void publish_metrics();
  void watch_connections(std::int64_t now);
  bool limit_reached() const noexcept {
    return cfg_.gateway.max_ticks != 0 && counters_.ticks_published >= cfg_.gateway.max_ticks;
  }

  const tp::Config& cfg_;
  GatewayOptions opts_;
  OffsetClock clock_;
  zmq::socket_t pub_;
  tp::SendCounters sends_;         // a PUB never refuses: all of them go
  tp::SocketMonitor pub_monitor_;  // after pub_: destroyed first
  tp::DeadLetterSender dead_letters_;
  proto::Encoder encoder_;
  Pacer pacer_;
  std::optional<SyntheticFeed> feed_;
  std::unique_ptr<CsvTickReader> csv_;
  std::optional<proto::TickEvent> pending_;  // CSV: read, waiting until due
  std::unordered_map<std::string, std::uint64_t> csv_seq_;
  std::unordered_map<std::string, std::string> topics_;
  bool done_ = false;
  std::uint64_t heartbeat_seq_ = 0;
  GatewayCounters counters_;
  std::string stats_path_;
  std::int64_t last_stats_ns_ = 0;
  std::uint64_t last_stats_ticks_ = 0;
  double ticks_per_s_ = 0;
  tp::WriteFailures write_failures_;
  tp::DiskWatch disk_;
  tp::LogLimiter limiter_;
  std::uint64_t accept_failed_logged_ = 0;
  std::unique_ptr<tp::metrics::MetricsServer> metrics_;  // null when metrics.port = 0
};

}  // namespace tp::gateway
