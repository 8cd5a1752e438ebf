// CURVE: what encryption costs raw libzmq (PUB -> SUB with CURVE on vs off),
// and gateway -> strategy with [security] curve beside raw PUB -> SUB with
// CURVE, so that the pipeline is judged against the same encryption.
#include <zmq.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "scenarios.hpp"
#include "tick_stream.hpp"

namespace tp::bench {

void run_curve(const Options& o, PeakRss& peaks, double raw_rate_without_curve, Report& report) {
  const auto& symbols = four_majors();
  const std::vector<std::vector<std::string>> one_sub = {symbols};
  std::fprintf(stderr, "== CURVE: raw PUB->SUB with and without\n");
  const bool have_curve = zmq_has("curve") != 0;
  std::optional<double> curve_on, curve_off, pipe_curve;
  bool pipe_curve_clean = false;
  if (have_curve) {
    curve_off = raw_rate_without_curve;
    auto c =
        search_rate([&](double rate) { return raw_pubsub(symbols, one_sub, o.ticks, rate, true, o.pin); },
                    o.search_steps, "raw PUB->SUB CURVE");
    curve_on = c.best.rate();
    auto p =
        search_rate([&](double rate) { return pipeline_ticks(o, peaks, symbols, 1, o.ticks, rate, true); },
                    o.search_steps, "gateway->strategy CURVE");
    pipe_curve = p.best.rate();
    pipe_curve_clean = p.best.clean();
  }
  report.rows.push_back(
      {"raw CURVE on vs off", "ticks/s", curve_off, curve_on, "-", std::nullopt, true,
       have_curve ? "baseline = raw without CURVE, figure = raw with CURVE" : "libzmq without CURVE"});
  report.rows.push_back(
      {"tick throughput with CURVE", "ticks/s", curve_on, pipe_curve, ">= 0.70", 0.70, true,
       std::string(pipe_curve_clean ? "" : "pipeline NOT gap-free; ") +
           "baseline = raw PUB->SUB with CURVE; pipeline = gateway->strategy with [security] curve"});
  report.rows.back().valid = pipe_curve_clean;
}

}  // namespace tp::bench
