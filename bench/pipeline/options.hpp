// pipeline_bench's settings, filled once by main from the command line
// (--quick and --smoke are presets of these) and read by every scenario.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tp::bench {

struct Options {
  std::filesystem::path bin_dir;  // where gateway, strategy... are
  std::filesystem::path out = "pipeline_bench.json";
  std::uint64_t ticks = 2'000'000;         // per tick throughput run
  std::uint64_t fanout_ticks = 2'000'000;  // per fan-out run
  double latency_rate = 10'000;            // ticks/s during the latency run
  double latency_seconds = 10;
  int every_nth = 50;  // 1 signal per every_nth ticks in the latency run
  std::uint64_t orders = 5000;
  int search_steps = 3;  // rate bisection steps after a lossy flat-out run
  int reps = 3;          // raw REQ/REP repetitions (median)
  bool pin = false;
  int soak_seconds = 0;  // > 0: only the soak
  bool keep = false;     // keep the deployments' directories
  std::string only;      // comma-separated sections to run; empty = all

  bool want(const std::string& section) const {
    return only.empty() || ("," + only + ",").find("," + section + ",") != std::string::npos;
  }
};

}  // namespace tp::bench
