// Fan-out: 16 instruments over 4 shards (4 each), aggregate ticks/s of
// gateway -> 4 strategies beside raw PUB -> 4 SUBs subscribed the same way.
#include <cstdio>
#include <string>
#include <vector>

#include "common/sharding.hpp"
#include "scenarios.hpp"
#include "tick_stream.hpp"

namespace tp::bench {

void run_fanout(const Options& o, PeakRss& peaks, Report& report) {
  // Names picked so that each shard gets exactly four.
  std::vector<std::string> symbols16;
  std::vector<std::vector<std::string>> shard_syms(4);
  for (int i = 0; symbols16.size() < 16 && i < 10000; ++i) {
    const std::string s = "SYM" + std::to_string(i);
    auto k = tp::shard_of(s, 4);
    if (shard_syms[k].size() < 4) {
      shard_syms[k].push_back(s);
      symbols16.push_back(s);
    }
  }
  std::fprintf(stderr, "== fan-out: 4 strategies, 16 instruments, %llu ticks\n",
               static_cast<unsigned long long>(o.fanout_ticks));
  const Search raw = search_rate(
      [&](double rate) { return raw_pubsub(symbols16, shard_syms, o.fanout_ticks, rate, false, o.pin); },
      o.search_steps, "raw PUB->4 SUB");
  const Search pipe =
      search_rate([&](double rate) { return pipeline_ticks(o, peaks, symbols16, 4, o.fanout_ticks, rate); },
                  o.search_steps, "gateway->4 strategies");
  report.rows.push_back(
      {"fan-out, 4 strategies, aggregate", "ticks/s", raw.best.rate(), pipe.best.rate(), ">= 0.70", 0.70,
       true,
       std::string(pipe.best.clean() ? "" : "pipeline NOT gap-free; ") +
           (raw.best.clean() ? "" : "raw NOT loss-free; ") + "gateway rate " +
           (pipe.rate_limit > 0 ? std::to_string(static_cast<long long>(pipe.rate_limit)) : "flat-out")});
  report.rows.back().valid = pipe.best.clean();
  for (const auto* s : {&raw, &pipe})
    report.search_log.insert(report.search_log.end(), s->log.begin(), s->log.end());
}

}  // namespace tp::bench
