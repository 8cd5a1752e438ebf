// gateway: publishes ticks (a synthetic random walk or a CSV replay) on the
// ticks PUB socket. Flags are turned into config overrides so that the
// config file, --set and the flags share one code path.
#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/program.hpp"
#include "common/security.hpp"
#include "common/stop.hpp"
#include "gateway/gateway_node.hpp"

namespace {

// A TOML basic string, so that any path survives the override parser.
std::string toml_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Publishes ticks on the ticks PUB socket: a seeded synthetic random walk or a CSV replay.",
               "gateway"};
  tp::CommonOptions opts;
  tp::add_common_options(app, opts);
  std::optional<double> rate, speed;
  std::optional<std::uint64_t> seed, max_ticks;
  std::optional<std::string> csv;
  bool exit_when_done = false;
  int start_delay_ms = 0;
  app.add_option("--rate", rate,
                 "Synthetic ticks per second over all instruments, 0 = flat out (gateway.rate)");
  app.add_option("--seed", seed, "Random walk seed (gateway.seed)");
  app.add_option("--max-ticks", max_ticks,
                 "Stop publishing after this many ticks, 0 = never (gateway.max_ticks)");
  app.add_option("--csv", csv, "Replay this CSV file (sets gateway.source=csv, gateway.csv_path)");
  app.add_option("--speed", speed, "CSV replay speed multiplier, 0 = flat out (gateway.speed)");
  app.add_flag("--exit-when-done", exit_when_done,
               "Exit 0 once everything is published instead of heartbeating until stopped");
  app.add_option("--start-delay-ms", start_delay_ms,
                 "Publish only heartbeats for this long after binding, so that waiting subscribers can join "
                 "before the first tick")
      ->check(CLI::Range(0, 600000));
  std::int64_t test_clock_offset_ms = 0;
  app.add_option("--test-clock-offset-ms", test_clock_offset_ms,
                 "Tests only: stamp ticks and heartbeats with this host's clock moved this far (negative: "
                 "behind), to show what a wrong gateway clock does downstream")
      ->check(CLI::Range(std::int64_t{-86'400'000}, std::int64_t{86'400'000}));

  return tp::run_program(app, argc, argv, [&] {
    if (rate) opts.overrides.push_back(fmt::format("gateway.rate={}", *rate));
    if (seed) opts.overrides.push_back(fmt::format("gateway.seed={}", *seed));
    if (max_ticks) opts.overrides.push_back(fmt::format("gateway.max_ticks={}", *max_ticks));
    if (speed) opts.overrides.push_back(fmt::format("gateway.speed={}", *speed));
    if (csv) {
      opts.overrides.push_back("gateway.source=\"csv\"");
      opts.overrides.push_back("gateway.csv_path=" + toml_string(*csv));
    }
    tp::Config cfg = tp::load_program_config(opts, "gateway");
    zmq::context_t ctx(1);
    tp::SecureContext secure(ctx, cfg.security);
    int code = 0;
    {
      tp::gateway::GatewayNode node(ctx, cfg,
                                    tp::gateway::GatewayOptions{.exit_when_done = exit_when_done,
                                                                .start_delay_ms = start_delay_ms,
                                                                .test_clock_offset_ms = test_clock_offset_ms},
                                    secure.security());
      code = node.run(tp::stop_requested);
    }  // sockets close here (linger flushes the last ticks), before the context ends
    spdlog::shutdown();
    return code;
  });
}
