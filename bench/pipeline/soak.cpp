// --soak S: the default deployment (default instruments, rates and strategy;
// only the endpoints and the run dir differ) for S seconds, VmRSS of every
// program sampled every 5 s, to show that memory stays flat once warm.
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "scenarios.hpp"
#include "support.hpp"

namespace tp::bench {

std::string run_soak(const Options& o) {
  PeakRss peaks;  // the soak reports its own VmHWM column
  Deployment d(o, peaks, "soak (default deployment)", "", four_majors(), 1000);
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
  std::printf("%-14s %10s %10s %10s %10s %8s\n", "program", "warm RSS", "final RSS", "max RSS", "VmHWM",
              "growth");
  js << "{\"seconds\": " << o.soak_seconds << ", \"sample_every_s\": " << every << ", \"programs\": [";
  bool first = true;
  for (auto& [name, s] : series) {
    if (s.rss.empty()) continue;
    // Warm-up: the first fifth of the run (at least one sample).
    const auto warm_idx = std::min(s.rss.size() - 1, std::max<std::size_t>(1, s.rss.size() / 5));
    const long warm = s.rss[warm_idx], fin = s.rss.back();
    const long mx = *std::max_element(s.rss.begin() + static_cast<long>(warm_idx), s.rss.end());
    std::printf("%-14s %10.1f %10.1f %10.1f %10.1f %+7.1f%%\n", name.c_str(),
                static_cast<double>(warm) / 1024, static_cast<double>(fin) / 1024,
                static_cast<double>(mx) / 1024, static_cast<double>(hwm[name]) / 1024,
                warm > 0 ? 100.0 * static_cast<double>(fin - warm) / static_cast<double>(warm) : 0.0);
    js << (first ? "" : ", ") << "{\"program\": \"" << name << "\", \"warm_rss_kb\": " << warm
       << ", \"final_rss_kb\": " << fin << ", \"max_rss_after_warmup_kb\": " << mx
       << ", \"vm_hwm_kb\": " << hwm[name] << ", \"rss_kb_samples\": [";
    for (std::size_t i = 0; i < s.rss.size(); ++i) js << (i ? ", " : "") << s.rss[i];
    js << "]}";
    first = false;
  }
  js << "]}";
  return js.str();
}

}  // namespace tp::bench
