#include "report.hpp"

#include <stdlib.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "support.hpp"

namespace tp::bench {

std::optional<double> Row::ratio() const {
  if (!baseline || !pipeline || *baseline <= 0) return std::nullopt;
  return *pipeline / *baseline;
}

std::optional<bool> Row::met() const {
  auto r = ratio();
  if (!r || !ratio_target) return std::nullopt;
  if (!valid) return false;
  return higher_is_better ? *r >= *ratio_target : *r <= *ratio_target;
}

std::string cell(const std::optional<double>& v) {
  if (!v) return "n/a";
  char b[64];
  if (*v >= 1000)
    std::snprintf(b, sizeof b, "%.0f", *v);
  else
    std::snprintf(b, sizeof b, "%.1f", *v);
  return b;
}

namespace {

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

}  // namespace

bool print_and_write(const Options& o, const Report& report) {
  const auto& rows = report.rows;
  char date[64];
  const std::time_t tt = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) < 0) load[0] = -1;
  std::printf("\n== pipeline_bench %s, %u CPUs, load %.2f, tcp://127.0.0.1, %s\n", date, cpus(), load[0],
              o.pin ? "pinned (publisher CPU 0, readers CPU 1)" : "not pinned");
  std::printf("%-36s %-9s %12s %12s %8s %-15s %s\n", "figure", "unit", "raw", "pipeline", "ratio", "target",
              "met");
  for (const auto& r : rows) {
    auto ratio = r.ratio();
    char rb[32] = "n/a";
    if (ratio) std::snprintf(rb, sizeof rb, "%.2f", *ratio);
    auto met = r.met();
    std::printf("%-36s %-9s %12s %12s %8s %-15s %s\n", r.name.c_str(), r.unit.c_str(),
                cell(r.baseline).c_str(), r.pipeline ? cell(r.pipeline).c_str() : "n/a (pending)", rb,
                r.target.c_str(), met ? (*met ? "yes" : "NO") : "-");
  }
  std::printf("notes:\n");
  for (const auto& r : rows)
    if (!r.note.empty()) std::printf("  %s: %s\n", r.name.c_str(), r.note.c_str());
  for (const auto& l : report.search_log) std::printf("  search %s\n", l.c_str());

  std::ostringstream js;
  js << "{\n  \"date\": " << json_str(date) << ",\n  \"cpus\": " << cpus()
     << ",\n  \"load_avg_1m\": " << load[0]
     << ",\n  \"transport\": \"tcp://127.0.0.1\",\n  \"pinned\": " << (o.pin ? "true" : "false")
     << ",\n  \"settings\": {\"ticks\": " << o.ticks << ", \"latency_rate\": " << o.latency_rate
     << ", \"latency_seconds\": " << o.latency_seconds << ", \"every_nth\": " << o.every_nth
     << ", \"orders\": " << o.orders << ", \"search_steps\": " << o.search_steps
     << ", \"only\": " << json_str(o.only.empty() ? "all" : o.only)
     << ", \"hwm\": {\"gateway_sndhwm\": 100000, \"strategy_rcvhwm\": 30000}"
     << ", \"durability\": \"SQLite WAL, synchronous=NORMAL (dll_gateway: locking_mode=EXCLUSIVE)\"},\n  "
        "\"rows\": [";
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
  for (const auto& l : report.search_log) {
    js << (first ? "" : ",") << "\n    " << json_str(l);
    first = false;
  }
  js << "\n  ]\n}\n";
  std::ofstream f(o.out);
  f << js.str();
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", o.out.c_str());
    return false;
  }
  std::printf("written %s\n", o.out.c_str());
  return true;
}

}  // namespace tp::bench
