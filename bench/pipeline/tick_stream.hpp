// The tick stream measured three ways (tick throughput, fan-out, CURVE): raw
// PUB -> n SUB threads beside the gateway -> n sharded strategies, both at a
// given rate, and the search for the best loss-free rate. Each call runs on
// the calling thread (raw runs start and join their own threads).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "deployment.hpp"
#include "options.hpp"

namespace tp::bench {

struct ThroughputResult {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t expected = 0;
  std::uint64_t gaps = 0;  // pipeline: sequence gaps; raw: messages lost
  double seconds = 0;      // first send -> last receive
  double rate() const { return seconds > 0 ? static_cast<double>(received) / seconds : 0; }
  bool clean() const { return gaps == 0 && received == expected && expected > 0; }
};

// Raw PUB -> one SUB per entry of `shards` (the topics it subscribes to);
// `count` ticks go round-robin over `all` at `rate` (0 = flat out), with
// the gateway's sndhwm and the strategy's rcvhwm. Throws Interrupted.
ThroughputResult raw_pubsub(const std::vector<std::string>& all,
                            const std::vector<std::vector<std::string>>& shards, std::uint64_t count,
                            double rate, bool curve, bool pin);

// The gateway publishing `count` ticks of `symbols` at `rate` to `shards`
// strategies (every_nth that never signals); `curve` turns [security] on.
ThroughputResult pipeline_ticks(const Options& o, PeakRss& peaks, const std::vector<std::string>& symbols,
                                std::uint32_t shards, std::uint64_t count, double rate, bool curve = false);

// Flat out first; while there is loss, bisect the rate for a few steps.
// Holds the best clean run (or the last run when none was clean).
struct Search {
  ThroughputResult best;
  double rate_limit = 0;  // 0 = flat out
  std::vector<std::string> log;
};

// Runs `run(rate)` as above; each run's line goes to stderr and to the log.
Search search_rate(const std::function<ThroughputResult(double)>& run, int steps, const std::string& label);

}  // namespace tp::bench
