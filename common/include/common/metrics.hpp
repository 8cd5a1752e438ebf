// Prometheus metrics: a writer of the text exposition format (version 0.0.4),
// the process metrics read from /proc/self, and the small HTTP server that
// serves GET /metrics from threads of its own (src/metrics_server.cpp).
//
// The program's loop renders its figures into a MetricsText when it writes its
// stats file and hands the text to MetricsServer::publish, which swaps a
// pointer; the server's thread only reads the latest pointer. The loop never
// waits on a scrape, and a slow or stuck scraper never slows the loop.
//
// MetricsText is a value type, not thread-safe; MetricsServer's publish() may
// be called from any one thread while it serves.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/config.hpp"

namespace tp {
class DiskWatch;
class WriteFailures;
struct ConnectionCounters;
}  // namespace tp

namespace tp::metrics {

// Label name and value pairs, written in this order.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A label value as the exposition format quotes it: \ " and newline escaped.
std::string escape_label_value(std::string_view value);
// A HELP text: \ and newline escaped.
std::string escape_help(std::string_view help);
// A sample value: the shortest text that reads back to the same double;
// NaN, +Inf and -Inf as Prometheus spells them.
std::string format_value(double value);

// Upper bounds (in the histogram's unit, seconds for latencies) and the
// counts of observations at or below each, cumulative as Prometheus wants
// them; the +Inf bucket is `count`.
struct HistogramSample {
  std::vector<double> upper_bounds;
  std::vector<std::uint64_t> cumulative_counts;  // same size as upper_bounds
  double sum = 0;
  std::uint64_t count = 0;
};

// Bounds for latencies in seconds, 50 us to 10 s (1-2.5-5 steps): the hops
// of this pipeline take tens of microseconds on one host and the broker's
// round trip up to seconds. Shared so that one PromQL query sums across
// programs.
std::vector<double> latency_bounds_seconds();

// A histogram with fixed bounds: O(log buckets) observe, no allocation after
// construction. Not thread-safe: the loop that observes also snapshots.
class Histogram {
 public:
  // `upper_bounds` strictly increasing and finite; throws std::invalid_argument.
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;
  HistogramSample sample() const;

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last: above every bound
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// Builds one exposition. Each family (a metric name) gets its HELP and TYPE
// lines once, before its first sample; the samples of a family must be
// written one after the other. `common` labels (program, process) open every
// sample's label set. Bad names, a counter not ending in `_total`, a family
// written in two places or declared twice with two types are programming
// errors: std::invalid_argument.
class MetricsText {
 public:
  explicit MetricsText(Labels common = {});

  MetricsText& counter(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  MetricsText& counter(std::string_view name, std::string_view help, std::uint64_t value,
                       const Labels& labels = {});
  MetricsText& gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  MetricsText& gauge(std::string_view name, std::string_view help, std::uint64_t value,
                     const Labels& labels = {});
  MetricsText& gauge(std::string_view name, std::string_view help, std::int64_t value,
                     const Labels& labels = {});
  MetricsText& gauge(std::string_view name, std::string_view help, bool value, const Labels& labels = {}) {
    return gauge(name, help, std::uint64_t{value}, labels);
  }
  // One counter sample per entry of `by`, labelled `label`="<key>" (a
  // bounded map: reasons, instruments, groups); nothing when it is empty.
  MetricsText& counters(std::string_view name, std::string_view help,
                        const std::map<std::string, std::uint64_t>& by, const std::string& label);
  // `<name>_bucket{le=...}` per bound and +Inf, `<name>_sum`, `<name>_count`.
  MetricsText& histogram(std::string_view name, std::string_view help, const HistogramSample& h,
                         const Labels& labels = {});

  const std::string& str() const noexcept { return text_; }
  const Labels& common_labels() const noexcept { return common_; }

 private:
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, const Labels& labels, std::string_view value,
              const std::pair<std::string, std::string>* extra = nullptr);

  Labels common_;
  std::string text_;
  std::string current_;
  std::set<std::string, std::less<>> families_;
};

// What /proc says about a process: the standard process_* metrics.
struct ProcessSample {
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the epoch
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // the soft limit
};

// Parses /proc/<pid>/stat's text (the command may hold spaces and
// parentheses) with the clock ticks per second, the page size and the boot
// time (/proc/stat's btime). Returns false on a text it cannot read.
bool parse_proc_stat(std::string_view stat, long ticks_per_s, long page_size, double boot_time_s,
                     ProcessSample& out);
// This process now; fields it cannot read stay 0.
ProcessSample read_process_sample();
// process_cpu_seconds_total, process_start_time_seconds,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds.
void add_process_metrics(MetricsText& out, const ProcessSample& p);

// Thrown when the server cannot listen where configured (start-up error).
class MetricsBindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Serves GET /metrics on host:port from its own thread: the last published
// snapshot, then the process metrics read at the scrape, then
// tp_metrics_snapshot_timestamp_seconds (when the loop last published: a
// loop that stopped publishing shows as a stale timestamp, not as an
// unreachable target). Before the first publish, 503. One connection is
// served at a time by each of two workers, without keep-alive and with a 2 s
// deadline, so that a scraper holding a connection open cannot starve
// another (common/http_get.hpp says why not cpp-httplib).
class MetricsServer {
 public:
  // Listens at once; port 0 takes a free port (tests). Throws
  // MetricsBindError naming host and port when it cannot.
  MetricsServer(const std::string& host, int port, Labels common);
  // Stops serving and joins the thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Makes `text` what the next scrape sees; never waits on a scrape in
  // progress (that one keeps the snapshot it took). `now_wall_ns` stamps it.
  void publish(std::string text, std::int64_t now_wall_ns);
  int port() const noexcept { return port_; }
  const std::string& host() const noexcept { return host_; }
  std::uint64_t scrapes() const noexcept { return scrapes_.load(std::memory_order_relaxed); }
  // Idempotent; the destructor calls it.
  void stop();

 private:
  struct Snapshot {
    std::string text;
    std::int64_t wall_ns = 0;
  };
  void serve();         // a worker: accepts until stop()
  void answer(int fd);  // one request on one connection
  // The body of a 200: `snap`, the process metrics now, the snapshot's time.
  std::string render(const Snapshot& snap) const;

  std::string host_;
  Labels common_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::atomic<std::uint64_t> scrapes_{0};
  int port_ = 0;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd, readable once stop() is called
  std::vector<std::thread> workers_;
};

// The server [metrics] asks for, labelled program="<program>" and
// process="<process>" (the name of its stats file and of the supervisor's
// line: "gateway", "trend-1"), then `extra` (a strategy's group); nullptr
// when metrics.port is 0. Throws MetricsBindError as the constructor does;
// warns when the host is not loopback (the config allowed it:
// security.allow_public_bind).
std::unique_ptr<MetricsServer> start_metrics_server(const MetricsConfig& cfg, std::string_view program,
                                                    std::string_view process, const Labels& extra = {});

// What every program's stats show about its listening socket's connections
// (SocketMonitor): tp_connections_accepted_total, tp_connections_dropped_total,
// tp_handshakes_failed_total, tp_connections_redialled_total,
// tp_accept_failed_total.
void add_connection_metrics(MetricsText& out, const ConnectionCounters& c);
// The run dir's free space and the failed writes: tp_disk_free_bytes (left
// out before the first check), tp_disk_floor_bytes, tp_disk_low,
// tp_write_failures_total, tp_files_failing.
void add_disk_metrics(MetricsText& out, const DiskWatch& disk, std::uint64_t floor_bytes,
                      const WriteFailures& failures);

}  // namespace tp::metrics
