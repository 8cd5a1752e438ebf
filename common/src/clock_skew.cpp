#include "common/clock_skew.hpp"

#include "common/metrics.hpp"
#include "common/stats.hpp"

namespace tp {

void ClockLags::add_stats(JsonObject& stats) const {
  JsonObject by_source;
  for (const auto& [name, w] : windows_)
    if (const auto lag = w.last_min()) by_source.add(name, static_cast<double>(*lag) / 1e6);
  stats.add("clock_lag_min_ms", by_source);
}

void ClockLags::add_metrics(metrics::MetricsText& out) const {
  for (const auto& [name, w] : windows_) {
    if (const auto lag = w.last_min()) {
      out.gauge(
          "tp_clock_lag_min_seconds",
          "The smallest (receipt - sender's stamp) of the last stats interval, per source: the transit "
          "time plus how far this host's clock is ahead of the sender's (negative: the sender's is ahead).",
          static_cast<double>(*lag) / 1e9, {{"source", name}});
    }
  }
}

}  // namespace tp
