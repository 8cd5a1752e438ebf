// Tick throughput, one strategy subscribed to all four instruments: the best
// gap-free rate of gateway -> strategy beside raw PUB -> SUB of the same two
// frames, zero loss.
#include <cstdio>
#include <string>
#include <vector>

#include "scenarios.hpp"
#include "tick_stream.hpp"

namespace tp::bench {

const std::vector<std::string>& four_majors() {
  static const std::vector<std::string> symbols = {"EURUSD", "GBPUSD", "USDJPY", "AUDUSD"};
  return symbols;
}

double run_tick_throughput(const Options& o, PeakRss& peaks, Report& report) {
  const auto& symbols = four_majors();
  const std::vector<std::vector<std::string>> one_sub = {symbols};
  std::fprintf(stderr, "== tick throughput: %llu ticks\n", static_cast<unsigned long long>(o.ticks));
  const Search raw =
      search_rate([&](double rate) { return raw_pubsub(symbols, one_sub, o.ticks, rate, false, o.pin); },
                  o.search_steps, "raw PUB->SUB");
  const Search pipe =
      search_rate([&](double rate) { return pipeline_ticks(o, peaks, symbols, 1, o.ticks, rate); },
                  o.search_steps, "gateway->strategy");
  report.rows.push_back(
      {"tick throughput, 1 strategy, zero gaps", "ticks/s", raw.best.rate(), pipe.best.rate(), ">= 0.70",
       0.70, true,
       std::string(pipe.best.clean() ? "" : "pipeline NOT gap-free; ") +
           (raw.best.clean() ? "" : "raw NOT loss-free; ") + "gateway rate " +
           (pipe.rate_limit > 0 ? std::to_string(static_cast<long long>(pipe.rate_limit)) : "flat-out")});
  report.rows.back().valid = pipe.best.clean();
  for (const auto* s : {&raw, &pipe})
    report.search_log.insert(report.search_log.end(), s->log.begin(), s->log.end());
  return raw.best.rate();
}

}  // namespace tp::bench
