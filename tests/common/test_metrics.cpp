// The Prometheus text writer (exact text), the /proc/self/stat parser, the
// [metrics] config keys. No socket: the server has its own test file.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/config.hpp"
#include "common/metrics.hpp"

namespace {

using tp::metrics::Labels;
using tp::metrics::MetricsText;

TEST(MetricsText, CounterWithHelpAndTypeOnce) {
  MetricsText m;
  m.counter("tp_ticks_total", "Ticks published.", std::uint64_t{42}, {{"instrument", "EURUSD"}})
      .counter("tp_ticks_total", "Ticks published.", std::uint64_t{7}, {{"instrument", "GBPUSD"}});
  EXPECT_EQ(m.str(),
            "# HELP tp_ticks_total Ticks published.\n"
            "# TYPE tp_ticks_total counter\n"
            "tp_ticks_total{instrument=\"EURUSD\"} 42\n"
            "tp_ticks_total{instrument=\"GBPUSD\"} 7\n");
}

TEST(MetricsText, GaugesAndCommonLabelsFirst) {
  MetricsText m({{"program", "gateway"}, {"process", "gateway"}});
  m.gauge("tp_rate", "Per second.", 12.5)
      .gauge("tp_low", "Flag.", true)
      .gauge("tp_delta", "Signed.", std::int64_t{-3});
  EXPECT_EQ(m.str(),
            "# HELP tp_rate Per second.\n# TYPE tp_rate gauge\n"
            "tp_rate{program=\"gateway\",process=\"gateway\"} 12.5\n"
            "# HELP tp_low Flag.\n# TYPE tp_low gauge\n"
            "tp_low{program=\"gateway\",process=\"gateway\"} 1\n"
            "# HELP tp_delta Signed.\n# TYPE tp_delta gauge\n"
            "tp_delta{program=\"gateway\",process=\"gateway\"} -3\n");
}

TEST(MetricsText, NoLabelsNoBraces) {
  MetricsText m;
  m.gauge("up_ish", "x", 0.0);
  EXPECT_EQ(m.str(), "# HELP up_ish x\n# TYPE up_ish gauge\nup_ish 0\n");
}

TEST(MetricsText, LabelValuesAndHelpAreEscaped) {
  MetricsText m;
  m.counter("tp_letters_total", "Dead letters\nby \"reason\" \\ source.", std::uint64_t{1},
            {{"reason", "a\"b\\c\nd"}});
  EXPECT_EQ(m.str(),
            "# HELP tp_letters_total Dead letters\\nby \"reason\" \\\\ source.\n"
            "# TYPE tp_letters_total counter\n"
            "tp_letters_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsText, UnicodeLabelValuesPassThrough) {
  EXPECT_EQ(tp::metrics::escape_label_value("prix €"), "prix €");
}

TEST(MetricsText, ValuesRoundTripAndSpecials) {
  using tp::metrics::format_value;
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(3.0), "3");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(std::stod(format_value(1.0 / 3)), 1.0 / 3);
}

TEST(MetricsText, Histogram) {
  tp::metrics::Histogram h({0.001, 0.01, 0.1});
  for (double v : {0.0005, 0.001, 0.005, 0.5}) h.observe(v);
  MetricsText m(Labels{{"program", "executor"}});
  m.histogram("tp_fill_latency_seconds", "Tick to fill.", h.sample());
  EXPECT_EQ(m.str(),
            "# HELP tp_fill_latency_seconds Tick to fill.\n"
            "# TYPE tp_fill_latency_seconds histogram\n"
            "tp_fill_latency_seconds_bucket{program=\"executor\",le=\"0.001\"} 2\n"
            "tp_fill_latency_seconds_bucket{program=\"executor\",le=\"0.01\"} 3\n"
            "tp_fill_latency_seconds_bucket{program=\"executor\",le=\"0.1\"} 3\n"
            "tp_fill_latency_seconds_bucket{program=\"executor\",le=\"+Inf\"} 4\n"
            "tp_fill_latency_seconds_sum{program=\"executor\"} 0.5065\n"
            "tp_fill_latency_seconds_count{program=\"executor\"} 4\n");
}

TEST(MetricsText, CountersFromAMap) {
  MetricsText m;
  m.counters("tp_rejected_total", "By reason.", {{"risk", 2}, {"stale", 5}}, "reason")
      .counters("tp_none_total", "Empty: no family at all.", {}, "reason");
  EXPECT_EQ(m.str(),
            "# HELP tp_rejected_total By reason.\n# TYPE tp_rejected_total counter\n"
            "tp_rejected_total{reason=\"risk\"} 2\ntp_rejected_total{reason=\"stale\"} 5\n");
}

TEST(MetricsText, LatencyBoundsMakeAHistogram) {
  tp::metrics::Histogram h(tp::metrics::latency_bounds_seconds());
  h.observe(30e-6);
  h.observe(20.0);
  const auto s = h.sample();
  EXPECT_EQ(s.upper_bounds.front(), 50e-6);
  EXPECT_EQ(s.upper_bounds.back(), 10.0);
  EXPECT_EQ(s.cumulative_counts.front(), 1u);
  EXPECT_EQ(s.cumulative_counts.back(), 1u);  // 20 s is only in +Inf
  EXPECT_EQ(s.count, 2u);
}

TEST(MetricsText, HistogramBoundsMustIncrease) {
  EXPECT_THROW(tp::metrics::Histogram({0.1, 0.1}), std::invalid_argument);
  EXPECT_THROW(tp::metrics::Histogram({std::numeric_limits<double>::infinity()}), std::invalid_argument);
}

TEST(MetricsText, ProgrammingErrorsThrow) {
  MetricsText m;
  EXPECT_THROW(m.counter("tp_ticks", "no _total", 1.0), std::invalid_argument);
  EXPECT_THROW(m.gauge("9lives", "bad name", 1.0), std::invalid_argument);
  EXPECT_THROW(m.gauge("tp_x", "bad label", 1.0, {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(m.gauge("tp_y", "reserved label", 1.0, {{"__name__", "v"}}), std::invalid_argument);
  EXPECT_THROW(MetricsText(Labels{{"le", "1"}}).gauge("tp_z", "le is the histogram's", 1.0),
               std::invalid_argument);
  MetricsText split;
  split.gauge("tp_a", "a", 1.0).gauge("tp_b", "b", 1.0);
  EXPECT_THROW(split.gauge("tp_a", "a again, apart from its family", 2.0), std::invalid_argument);
}

// A line of a real /proc/<pid>/stat, with a command holding a space and a ')'.
constexpr const char* proc_stat =
    "4242 (my prog) x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 50 0 0 20 0 3 0 12000 104857600 2560 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

TEST(ProcessMetrics, ParsesProcStat) {
  tp::metrics::ProcessSample p;
  ASSERT_TRUE(tp::metrics::parse_proc_stat(proc_stat, 100, 4096, 1'700'000'000, p));
  EXPECT_DOUBLE_EQ(p.cpu_seconds, 3.0);                     // (250 + 50) / 100
  EXPECT_DOUBLE_EQ(p.start_time_seconds, 1'700'000'120.0);  // btime + 12000 / 100
  EXPECT_EQ(p.virtual_bytes, 104857600u);
  EXPECT_EQ(p.resident_bytes, 2560u * 4096u);
}

TEST(ProcessMetrics, RefusesATruncatedLine) {
  tp::metrics::ProcessSample p;
  EXPECT_FALSE(tp::metrics::parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0, p));
  EXPECT_FALSE(tp::metrics::parse_proc_stat("no parenthesis", 100, 4096, 0, p));
}

TEST(ProcessMetrics, ThisProcessLooksAlive) {
  const auto p = tp::metrics::read_process_sample();
  EXPECT_GT(p.resident_bytes, 0u);
  EXPECT_GT(p.open_fds, 0u);
  EXPECT_GE(p.max_fds, p.open_fds);
  EXPECT_GT(p.start_time_seconds, 1.5e9);
  MetricsText m;
  tp::metrics::add_process_metrics(m, p);
  for (const char* name : {"process_cpu_seconds_total", "process_start_time_seconds",
                           "process_resident_memory_bytes", "process_open_fds"})
    EXPECT_NE(m.str().find(std::string("# TYPE ") + name), std::string::npos) << name;
}

std::string config_error(const std::string& toml) {
  try {
    tp::parse_config(toml, {}, "test.toml");
  } catch (const tp::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(MetricsConfig, OffOnLoopbackByDefault) {
  const auto c = tp::parse_config("");
  EXPECT_EQ(c.metrics.host, "127.0.0.1");
  EXPECT_EQ(c.metrics.port, 0);
  const auto set = tp::parse_config("[metrics]\nport = 9301\nhost = \"::1\"\n");
  EXPECT_EQ(set.metrics.port, 9301);
  EXPECT_EQ(set.metrics.host, "::1");
}

TEST(MetricsConfig, RefusesAPublicHostUnlessAllowed) {
  EXPECT_NE(config_error("[metrics]\nhost = \"0.0.0.0\"\n").find("metrics.host must be a loopback address"),
            std::string::npos);
  EXPECT_EQ(
      tp::parse_config("[metrics]\nhost = \"0.0.0.0\"\n[security]\nallow_public_bind = true\n").metrics.host,
      "0.0.0.0");
}

TEST(MetricsConfig, RefusesBadPortsAndUnknownKeys) {
  EXPECT_NE(config_error("[metrics]\nport = 70000\n").find("metrics.port must be in 0..65535"),
            std::string::npos);
  EXPECT_NE(config_error("[metrics]\nprot = 9000\n").find("unknown key metrics.prot"), std::string::npos);
}

}  // namespace
