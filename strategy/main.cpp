// strategy: one shard of one strategy group (a built-in or a C++ plugin).
// CLI -> config -> StrategyNode -> loop until SIGTERM/SIGINT -> exit code.
#include <cstdint>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/program.hpp"
#include "common/security.hpp"
#include "strategy/strategy_node.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Trading strategy instance: ticks in, signals out (shard K of N by instrument)", "strategy"};
  tp::CommonOptions common;
  tp::add_common_options(app, common);
  std::string group;
  std::uint32_t shard = 0;
  std::optional<std::uint32_t> shards;
  app.add_option("--group", group, "The strategy group G to run (default: the config's first group)");
  app.add_option("--shard", shard, "This instance's shard index K (0-based, < N)")->capture_default_str();
  app.add_option("--shards", shards, "Number of shards N (default: the group's instances)");

  return tp::run_program(app, argc, argv, [&] {
    const auto cfg = tp::load_program_config(common, "strategy");
    const auto* g = group.empty() ? &cfg.strategy.groups.front() : cfg.strategy.find_group(group);
    const auto n = shards.value_or(static_cast<std::uint32_t>(g ? g->instances : 1));
    zmq::context_t ctx(1);
    tp::SecureContext secure(ctx, cfg.security);
    tp::SystemClock clock;
    tp::strategy::StrategyNode node(ctx, cfg, shard, n, clock, secure.security(), group);
    return node.run();
  });
}
