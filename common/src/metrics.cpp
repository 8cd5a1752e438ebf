#include "common/metrics.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/disk_watch.hpp"
#include "common/socket_monitor.hpp"

namespace tp::metrics {
namespace {

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  auto first = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  };
  return first(n[0]) &&
         std::all_of(n.begin() + 1, n.end(), [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.rfind("__", 0) == 0) return false;  // __ is Prometheus' own
  auto first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  return first(n[0]) &&
         std::all_of(n.begin() + 1, n.end(), [&](char c) { return first(c) || (c >= '0' && c <= '9'); });
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::string file_text(const char* path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double boot_time_s() {
  std::istringstream in(file_text("/proc/stat"));
  std::string key;
  double v = 0;
  while (in >> key) {
    if (key == "btime" && in >> v) return v;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return 0;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

std::vector<double> latency_bounds_seconds() {
  return {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
          50e-3, 100e-3, 250e-3, 500e-3, 1,    2.5,    5,    10};
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
  }
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double value) noexcept {
  // le is "less than or equal": a value on a bound counts in that bucket.
  const auto i =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  ++counts_[i];
  sum_ += value;
  ++count_;
}

HistogramSample Histogram::sample() const {
  HistogramSample h{bounds_, {}, sum_, count_};
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) h.cumulative_counts.push_back(running += counts_[i]);
  return h;
}

MetricsText::MetricsText(Labels common) : common_(std::move(common)) {
  for (const auto& [k, v] : common_)
    if (!valid_label_name(k) || k == "le") throw std::invalid_argument("bad label name: " + k);
}

void MetricsText::family(std::string_view name, std::string_view help, std::string_view type) {
  if (name == current_) return;
  if (!valid_metric_name(name)) throw std::invalid_argument("bad metric name: " + std::string(name));
  if (!families_.emplace(name).second)
    throw std::invalid_argument("metric family written in two places: " + std::string(name));
  current_ = std::string(name);
  text_ += "# HELP ";
  text_ += name;
  text_ += ' ';
  text_ += escape_help(help);
  text_ += "\n# TYPE ";
  text_ += name;
  text_ += ' ';
  text_ += type;
  text_ += '\n';
}

void MetricsText::sample(std::string_view name, const Labels& labels, std::string_view value,
                         const std::pair<std::string, std::string>* extra) {
  text_ += name;
  bool open = false;
  auto put = [&](const std::string& k, const std::string& v) {
    text_ += open ? ',' : '{';
    open = true;
    text_ += k;
    text_ += "=\"";
    text_ += escape_label_value(v);
    text_ += '"';
  };
  for (const auto& [k, v] : common_) put(k, v);
  for (const auto& [k, v] : labels) {
    if (!valid_label_name(k) || k == "le") throw std::invalid_argument("bad label name: " + k);
    put(k, v);
  }
  if (extra) put(extra->first, extra->second);
  if (open) text_ += '}';
  text_ += ' ';
  text_ += value;
  text_ += '\n';
}

MetricsText& MetricsText::counter(std::string_view name, std::string_view help, double value,
                                  const Labels& labels) {
  if (!ends_with(name, "_total"))
    throw std::invalid_argument("a counter's name ends in _total: " + std::string(name));
  family(name, help, "counter");
  sample(name, labels, format_value(value));
  return *this;
}

MetricsText& MetricsText::counter(std::string_view name, std::string_view help, std::uint64_t value,
                                  const Labels& labels) {
  if (!ends_with(name, "_total"))
    throw std::invalid_argument("a counter's name ends in _total: " + std::string(name));
  family(name, help, "counter");
  sample(name, labels, std::to_string(value));
  return *this;
}

MetricsText& MetricsText::gauge(std::string_view name, std::string_view help, double value,
                                const Labels& labels) {
  family(name, help, "gauge");
  sample(name, labels, format_value(value));
  return *this;
}

MetricsText& MetricsText::gauge(std::string_view name, std::string_view help, std::uint64_t value,
                                const Labels& labels) {
  family(name, help, "gauge");
  sample(name, labels, std::to_string(value));
  return *this;
}

MetricsText& MetricsText::gauge(std::string_view name, std::string_view help, std::int64_t value,
                                const Labels& labels) {
  family(name, help, "gauge");
  sample(name, labels, std::to_string(value));
  return *this;
}

MetricsText& MetricsText::counters(std::string_view name, std::string_view help,
                                   const std::map<std::string, std::uint64_t>& by, const std::string& label) {
  for (const auto& [key, n] : by) counter(name, help, n, {{label, key}});
  return *this;
}

MetricsText& MetricsText::histogram(std::string_view name, std::string_view help, const HistogramSample& h,
                                    const Labels& labels) {
  if (h.cumulative_counts.size() != h.upper_bounds.size())
    throw std::invalid_argument("histogram " + std::string(name) + ": one count per bound");
  family(name, help, "histogram");
  const std::string base(name);
  for (std::size_t i = 0; i < h.upper_bounds.size(); ++i) {
    const std::pair<std::string, std::string> le{"le", format_value(h.upper_bounds[i])};
    sample(base + "_bucket", labels, std::to_string(h.cumulative_counts[i]), &le);
  }
  const std::pair<std::string, std::string> inf{"le", "+Inf"};
  sample(base + "_bucket", labels, std::to_string(h.count), &inf);
  sample(base + "_sum", labels, format_value(h.sum));
  sample(base + "_count", labels, std::to_string(h.count));
  return *this;
}

bool parse_proc_stat(std::string_view stat, long ticks_per_s, long page_size, double boot_time_s,
                     ProcessSample& out) {
  // The command, field 2, is in parentheses and may hold anything: the
  // fields that follow start after the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_s <= 0) return false;
  std::istringstream in{std::string(stat.substr(close + 1))};
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string t; f.size() < 22 && in >> t;) f.push_back(t);
  if (f.size() < 22) return false;
  try {
    const double ticks = static_cast<double>(ticks_per_s);
    out.cpu_seconds = static_cast<double>(std::stoull(f[11]) + std::stoull(f[12])) / ticks;  // utime, stime
    out.start_time_seconds = boot_time_s + static_cast<double>(std::stoull(f[19])) / ticks;  // starttime
    out.virtual_bytes = std::stoull(f[20]);                                                  // vsize
    out.resident_bytes = std::stoull(f[21]) * static_cast<std::uint64_t>(page_size);         // rss pages
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

ProcessSample read_process_sample() {
  ProcessSample p;
  parse_proc_stat(file_text("/proc/self/stat"), ::sysconf(_SC_CLK_TCK), ::sysconf(_SC_PAGESIZE),
                  boot_time_s(), p);
  p.open_fds = open_files();
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = lim.rlim_cur;
  return p;
}

void add_process_metrics(MetricsText& out, const ProcessSample& p) {
  out.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p.cpu_seconds)
      .gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
             p.start_time_seconds)
      .gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes)
      .gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtual_bytes)
      .gauge("process_open_fds", "Number of open file descriptors.", p.open_fds)
      .gauge("process_max_fds", "Maximum number of open file descriptors.", p.max_fds);
}

std::unique_ptr<MetricsServer> start_metrics_server(const MetricsConfig& cfg, std::string_view program,
                                                    std::string_view process, const Labels& extra) {
  if (cfg.port == 0) return nullptr;
  Labels labels{{"program", std::string(program)}, {"process", std::string(process)}};
  labels.insert(labels.end(), extra.begin(), extra.end());
  auto server = std::make_unique<MetricsServer>(cfg.host, cfg.port, std::move(labels));
  if (cfg.host.rfind("127.", 0) != 0 && cfg.host != "::1" && cfg.host != "localhost")
    spdlog::warn("METRICS SERVED ON {}:{} WITHOUT AUTHENTICATION: anyone who can reach it can read them",
                 cfg.host, server->port());
  return server;
}

void add_connection_metrics(MetricsText& out, const ConnectionCounters& c) {
  out.counter("tp_connections_accepted_total", "Connections made on the program's listening socket.",
              c.accepted)
      .counter("tp_connections_dropped_total",
               "Connections closed: peer gone, oversized frame or protocol error.", c.dropped)
      .counter("tp_handshakes_failed_total", "ZMTP or CURVE handshakes that failed.", c.handshakes_failed)
      .counter("tp_connections_redialled_total", "Connections dialled again after a drop.", c.redials)
      .counter("tp_accept_failed_total",
               "Incoming connections refused by accept(2), e.g. out of descriptors.", c.accept_failed);
}

void add_disk_metrics(MetricsText& out, const DiskWatch& disk, std::uint64_t floor_bytes,
                      const WriteFailures& failures) {
  if (disk.free_bytes() != std::numeric_limits<std::uint64_t>::max())
    out.gauge("tp_disk_free_bytes", "Free bytes on the fullest filesystem the program writes to.",
              disk.free_bytes());
  out.gauge("tp_disk_floor_bytes", "Below this much free space the program warns (run.min_free_bytes).",
            floor_bytes)
      .gauge("tp_disk_low", "1 while free space is below tp_disk_floor_bytes.", disk.low())
      .counter("tp_write_failures_total", "Failed writes of the program's files (stats, letters, stores).",
               failures.total())
      .gauge("tp_files_failing", "Files whose last write failed.",
             static_cast<std::uint64_t>(failures.failing().size()));
}

}  // namespace tp::metrics
