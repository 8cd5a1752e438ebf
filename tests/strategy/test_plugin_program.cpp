// The strategy program and a plugin it cannot use: it refuses to start,
// exit code 1, with the loader's one-line message naming the file and, for a
// plugin of another ABI version, both versions and the cure.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"
#include "tp/strategy.hpp"

using namespace std::chrono_literals;

namespace {

struct Run {
  int exit_code = -1;
  std::string output;
  bool left_files = false;  // anything in the run dir after a refused start
};

// The strategy program with one plugin group using `plugin`.
Run run_strategy_with_plugin(const std::string& plugin) {
  tp::test::TempDir dir("tp-plugin-prog-");
  const auto config = dir.file("deploy.toml");
  {
    std::ofstream f(config);
    f << "[run]\ndir = \"" << dir.file("run") << "\"\n\n[endpoints]\n";
    for (const auto* name : {"ticks", "signals", "order_events", "orders", "dead_letters"})
      f << name << " = \"" << dir.ipc(name) << "\"\n";
    f << "\n[[strategy.groups]]\nname = \"mine\"\nkind = \"plugin\"\nplugin = \"" << plugin << "\"\n";
  }
  const auto out = dir.file("output");
  tp::test::Child c({STRATEGY_BIN, "--config", config, "--group", "mine"},
                    {.stdout_path = out, .stderr_path = out});
  Run r;
  r.exit_code = c.wait_exit(10s).value_or(-1);
  r.output = tp::test::read_text(out);
  const auto run = std::filesystem::path(dir.file("run"));
  r.left_files = std::filesystem::exists(run) && !std::filesystem::is_empty(run);
  return r;
}

}  // namespace

TEST(StrategyProgramPlugin, WrongAbiVersionRefusesTheStart) {
  const auto r = run_strategy_with_plugin(WRONG_ABI_PLUGIN_PATH);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(std::string("strategy plugin ") + WRONG_ABI_PLUGIN_PATH +
                          ": built against strategy ABI version 999, this strategy program takes version " +
                          std::to_string(tp::strategy_abi_version) +
                          " (rebuild the plugin against this program's SDK)"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(r.left_files) << "a refused plugin left a journal behind";
}

TEST(StrategyProgramPlugin, MissingPluginRefusesTheStart) {
  const auto r = run_strategy_with_plugin("/nonexistent/libnothing.so");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("strategy plugin /nonexistent/libnothing.so: no such file"), std::string::npos)
      << r.output;
}

TEST(StrategyProgramPlugin, GoodPluginStartsAndStopsOnSigterm) {
  tp::test::TempDir dir("tp-plugin-prog-");
  const auto config = dir.file("deploy.toml");
  {
    std::ofstream f(config);
    f << "[run]\ndir = \"" << dir.file("run") << "\"\nstats_interval_ms = 50\n\n[endpoints]\n";
    for (const auto* name : {"ticks", "signals", "order_events", "orders", "dead_letters"})
      f << name << " = \"" << dir.ipc(name) << "\"\n";
    f << "\n[[strategy.groups]]\nname = \"mine\"\nkind = \"plugin\"\nplugin = \"" << GOOD_PLUGIN_PATH
      << "\"\n\n[strategy.groups.params]\nevery = 5\n";
  }
  const auto out = dir.file("output");
  tp::test::Child c({STRATEGY_BIN, "--config", config, "--group", "mine"},
                    {.stdout_path = out, .stderr_path = out});
  const auto stats = dir.file("run/mine-0.stats.json");
  ASSERT_TRUE(tp::test::wait_until([&] { return tp::test::read_json(stats).has_value(); }, 10s))
      << tp::test::read_text(out);
  c.terminate();
  EXPECT_EQ(c.wait_exit(10s), 0) << tp::test::read_text(out);
}
