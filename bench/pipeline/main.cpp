// pipeline_bench: runs the real programs and, in the same run, raw libzmq
// doing the same socket work with no logic, and prints one table (baseline,
// pipeline figure, ratio, target) that it also writes as JSON (--out).
//
//   tick throughput  gateway -> 1 strategy, zero gaps, --ticks ticks, vs raw
//                    PUB -> SUB of the same two frames, zero loss;
//   fan-out          gateway -> 4 sharded strategies (16 instruments),
//                    aggregate ticks/s, vs raw PUB -> 4 SUBs;
//   tick -> fill     at a steady 10,000 ticks/s, every_nth making a signal
//                    for 1 in 50 ticks: gateway send -> executor's fill, vs a
//                    raw chain PUB/SUB -> PUSH/PULL -> REQ/REP at the same rate;
//   order trips      signals pushed straight into the executor's PULL:
//                    orders/s executor <-> dll_gateway with the durable stores,
//                    vs raw REQ/REP of the same payload sizes;
//   CURVE            raw PUB -> SUB with CURVE on vs off, and gateway ->
//                    strategy with [security] curve vs raw with CURVE;
//   memory           VmHWM of every program, read from /proc before it stops;
//                    --soak S runs the default deployment for S seconds and
//                    samples VmRSS every 5 s.
//
// Baseline and pipeline use the same transport (tcp://127.0.0.1, ports
// found free at run time), the same frames and high-water marks. Raw sides
// run as threads of this process, each with its own zmq context (so its own
// I/O thread), which is the thread layout of the programs. Children are
// started with fork/exec in their own process group and with
// PR_SET_PDEATHSIG, so that none outlives the driver.
//
// One file per scenario (scenarios.hpp); this main only reads the options,
// runs the scenarios asked for and prints the report.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "options.hpp"
#include "report.hpp"
#include "scenarios.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using tp::bench::Options;

namespace {

void add_options(CLI::App& app, Options& o) {
  // The presets and the values they set are applied in command-line order,
  // so that "--quick --ticks N" and "--ticks N --quick" mean what they read.
  app.add_option(
         "--bin-dir", o.bin_dir,
         "Directory of gateway, strategy, executor, dll_gateway, dead_letter (default: this program's)")
      ->type_name("DIR");
  app.add_option("--out", o.out,
                 "Write the report (or the soak's) as JSON to FILE (default pipeline_bench.json)")
      ->type_name("FILE");
  app.add_option_function<std::uint64_t>(
         "--ticks", [&o](const std::uint64_t& n) { o.ticks = o.fanout_ticks = n; },
         "Ticks per tick throughput, fan-out and CURVE run (default 2000000)")
      ->type_name("N")
      ->trigger_on_parse();
  app.add_flag_callback(
         "--quick",
         [&o] {
           o.ticks = o.fanout_ticks = 200'000;
           o.latency_seconds = 3;
           o.orders = 1000;
           o.search_steps = 1;
           o.reps = 1;
         },
         "Preset: 200k ticks, 3 s latency, 1000 orders, 1 search step, 1 rep")
      ->trigger_on_parse();
  app.add_flag_callback(
         "--smoke",
         [&o] {
           o.ticks = o.fanout_ticks = 20'000;
           o.latency_seconds = 1.5;
           o.orders = 200;
           o.search_steps = 0;
           o.reps = 1;
         },
         "Preset: 20k ticks, 1.5 s latency, 200 orders, no search, 1 rep (for ctest)")
      ->trigger_on_parse();
  app.add_option("--latency-seconds", o.latency_seconds,
                 "Seconds of steady ticks in each tick->fill run (default 10)")
      ->type_name("S")
      ->trigger_on_parse();
  app.add_option("--orders", o.orders, "Orders in the pipeline's order round trip run (default 5000)")
      ->type_name("N")
      ->trigger_on_parse();
  app.add_option("--search-steps", o.search_steps,
                 "Rate bisection steps after a lossy flat-out throughput run (default 3)")
      ->type_name("K")
      ->trigger_on_parse();
  app.add_option_function<int>(
         "--reps", [&o](const int& r) { o.reps = std::max(1, r); },
         "Raw REQ/REP repetitions, the median is the baseline (default 3, at least 1)")
      ->type_name("R")
      ->trigger_on_parse();
  app.add_flag("--pin", o.pin,
               "Pin publishers (gateway, raw PUB) to CPU 0 and readers to CPU 1, taskset-style");
  app.add_option("--soak", o.soak_seconds,
                 "Only run the default deployment for SECONDS, sampling VmRSS every 5 s")
      ->type_name("SECONDS");
  app.add_option("--only", o.only,
                 "Only these sections: throughput,fanout,latency,orders,curve (curve needs throughput)")
      ->type_name("L");
  app.add_flag("--keep", o.keep, "Keep each deployment's directory (config, run dir, logs) after the run");
  app.footer("environment: TP_BENCH_DIR=DIR puts the deployments' run dirs there (default /tmp)");
}

int run(const Options& o) {
  using namespace tp::bench;
  if (o.soak_seconds > 0) {
    const auto js = run_soak(o);
    std::ofstream(o.out) << "{\"soak\": " << js << "}\n";
    std::printf("written %s\n", o.out.c_str());
    return 0;
  }
  PeakRss peaks;
  Report report;
  // Without the throughput section the CURVE "off" figure is 0 (no ratio).
  double raw_rate_without_curve = 0;
  if (o.want("throughput")) raw_rate_without_curve = run_tick_throughput(o, peaks, report);
  if (o.want("fanout")) run_fanout(o, peaks, report);
  if (o.want("latency")) run_latency(o, peaks, report);
  if (o.want("orders")) run_orders(o, peaks, report);
  if (o.want("curve")) run_curve(o, peaks, raw_rate_without_curve, report);
  add_memory_rows(peaks, report);
  return print_and_write(o, report) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.bin_dir = fs::read_symlink("/proc/self/exe").parent_path();
  CLI::App app{
      "Runs the real programs beside raw libzmq doing the same socket work, and prints one table "
      "(raw baseline, pipeline figure, ratio, target) that it also writes as JSON.",
      "pipeline_bench"};
  add_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  struct sigaction sa {};
  sa.sa_handler = tp::bench::on_interrupt_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  for (const char* p : {"gateway", "strategy", "executor", "dll_gateway", "dead_letter"}) {
    if (::access((o.bin_dir / p).c_str(), X_OK) != 0) {
      std::fprintf(stderr, "pipeline_bench: %s not found in %s (--bin-dir)\n", p, o.bin_dir.c_str());
      return 2;
    }
  }
  try {
    return run(o);
  } catch (const tp::bench::Interrupted&) {
    std::fprintf(stderr, "pipeline_bench: interrupted\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pipeline_bench: %s\n", e.what());
    return 1;
  }
}
