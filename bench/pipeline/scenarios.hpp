// pipeline_bench's scenarios, one file each, every one a raw libzmq baseline
// run beside the pipeline figure it is compared with. Each adds its rows to
// the report, records the programs' peak RSS in `peaks`, throws Interrupted
// on SIGINT/SIGTERM and std::runtime_error when a program fails to start.
#pragma once

#include <string>
#include <vector>

#include "deployment.hpp"
#include "options.hpp"
#include "report.hpp"

namespace tp::bench {

// The four instruments of the single-strategy and default deployments.
const std::vector<std::string>& four_majors();

// gateway -> 1 strategy vs raw PUB -> SUB (throughput.cpp). Returns the raw
// rate, the CURVE scenario's "off" figure.
double run_tick_throughput(const Options& o, PeakRss& peaks, Report& report);
// gateway -> 4 sharded strategies vs raw PUB -> 4 SUBs (fanout.cpp).
void run_fanout(const Options& o, PeakRss& peaks, Report& report);
// tick -> fill and its hops vs a raw PUB/SUB -> PUSH/PULL -> REQ/REP chain (latency.cpp).
void run_latency(const Options& o, PeakRss& peaks, Report& report);
// executor <-> dll_gateway orders/s vs raw REQ/REP (orders.cpp).
void run_orders(const Options& o, PeakRss& peaks, Report& report);
// Raw PUB -> SUB with CURVE vs `raw_rate_without_curve`, and gateway ->
// strategy with [security] curve vs raw with CURVE (curve.cpp).
void run_curve(const Options& o, PeakRss& peaks, double raw_rate_without_curve, Report& report);
// One row per program: its peak RSS over everything that ran (memory.cpp).
void add_memory_rows(const PeakRss& peaks, Report& report);

// --soak: the default deployment for o.soak_seconds, VmRSS sampled every
// 5 s; prints its table and returns the JSON object (soak.cpp).
std::string run_soak(const Options& o);

}  // namespace tp::bench
