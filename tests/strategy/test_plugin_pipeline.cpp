// The example plugin traded end to end: examples/strategies built against
// the installed SDK, run by the strategy program as a kind = "plugin" group
// beside the real gateway, executor, dll_gateway (simulated broker) and dead
// letter sink on ipc:// endpoints. Its signals must be acked and filled, the
// plugin must see its fills (its own log lines), and its positions must stay
// within the target it trades towards.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "example_plugin.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

using namespace std::chrono_literals;
using tp::test::json_number;
using tp::test::read_text;

namespace {

constexpr double lot = 1000;

class PluginPipeline : public ::testing::Test {
 protected:
  void write_config(const std::string& plugin) {
    std::ofstream f(config_);
    f << "[run]\ndir = \"" << run_dir_ << "\"\nstats_interval_ms = 200\n\n[endpoints]\n";
    for (const auto* name : {"ticks", "signals", "order_events", "orders", "dead_letters"})
      f << name << " = \"" << dir_.ipc(name) << "\"\n";
    f << "\n[gateway]\nrate = 2000\nheartbeat_ms = 200\n\n[strategy]\nsignal_ttl_ms = 10000\n\n"
      << "[[strategy.groups]]\nname = \"ema\"\nkind = \"plugin\"\nplugin = \"" << plugin << "\"\n"
      << "instances = 1\ninstruments = [\"EURUSD\", \"GBPUSD\"]\n\n"
      << "[strategy.groups.params]\nfast = 2\nslow = 5\nband_bps = 0\nlot = " << lot
      << "\nsummary_ms = 500\n";
  }

  tp::test::Child& start(const std::string& name, const char* program, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{program, "--config", config_};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto log = log_path(name);
    auto& c = *children_
                   .emplace(name, std::make_unique<tp::test::Child>(
                                      std::move(args),
                                      tp::test::ChildOptions{.stdout_path = log, .stderr_path = log}))
                   .first->second;
    EXPECT_TRUE(c.started()) << name;
    return c;
  }

  std::string stats(const std::string& name) const {
    return read_text(run_dir_ + "/" + name + ".stats.json");
  }
  double stat(const std::string& name, const std::string& key) const { return json_number(stats(name), key); }
  std::string log_path(const std::string& name) const { return dir_.file(name + ".log"); }
  std::string logs() const {
    std::string all;
    for (const auto& [name, child] : children_) all += "--- " + name + "\n" + read_text(log_path(name));
    return all;
  }

  tp::test::TempDir dir_{"tp-plugin-e2e-"};
  std::string run_dir_ = dir_.file("run");
  std::string config_ = dir_.file("deploy.toml");
  std::map<std::string, std::unique_ptr<tp::test::Child>> children_;  // reaped (SIGKILL) at the end
};

}  // namespace

TEST_F(PluginPipeline, ExampleStrategyIsTradedEndToEnd) {
  tp::test::TempDir build_dir("tp-plugin-build-");
  const auto example = tp::test::build_example_plugin(build_dir);
  ASSERT_TRUE(std::ifstream(example.plugin).good()) << example.plugin << " not built";
  write_config(example.plugin);

  start("dead_letter", DEAD_LETTER_BIN);
  start("dll_gateway", DLL_GATEWAY_BIN);
  start("executor", EXECUTOR_BIN);
  auto& strategy = start("ema-0", STRATEGY_BIN, {"--group", "ema", "--shard", "0", "--shards", "1"});
  for (const auto* name : {"dead_letter", "dll_gateway", "executor", "ema-0"})
    ASSERT_TRUE(tp::test::wait_until([&] { return !stats(name).empty(); }, 20s))
        << name << " wrote no stats file\n"
        << logs();
  start("gateway", GATEWAY_BIN);

  // Traded: the executor counts the group's fills and the plugin logged
  // fills it saw through on_order.
  auto plugin_fills = [&] {
    return tp::test::count_lines_with(read_text(log_path("ema-0")), "ema_trend: bought ") +
           tp::test::count_lines_with(read_text(log_path("ema-0")), "ema_trend: sold ");
  };
  ASSERT_TRUE(tp::test::wait_until(
      [&] { return stat("executor", "/groups/ema/fills") >= 5 && plugin_fills() >= 5; }, 40s))
      << "executor: " << stats("executor") << "\n"
      << logs();

  // The feed stops; every signal in flight settles.
  children_.at("gateway")->terminate();
  EXPECT_EQ(children_.at("gateway")->wait_exit(10s), 0);
  ASSERT_TRUE(tp::test::wait_until([&] { return stat("ema-0", "signals_pending") == 0; }, 30s))
      << stats("ema-0");
  const auto settled_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  ASSERT_TRUE(tp::test::wait_until(
      [&] {
        return stat("ema-0", "ts_ns") > static_cast<double>(settled_ns) &&
               stat("executor", "ts_ns") > static_cast<double>(settled_ns);
      },
      10s));

  const auto emitted = stat("ema-0", "signals_emitted");
  EXPECT_GE(emitted, 5);
  EXPECT_EQ(stat("ema-0", "signals_acked"), emitted) << stats("ema-0");
  EXPECT_EQ(stat("ema-0", "signals_given_up"), 0) << stats("ema-0");
  EXPECT_EQ(stat("ema-0", "strategy_errors"), 0) << "the plugin threw";
  EXPECT_GT(stat("ema-0", "position_reports"), 0) << "it traded on positions the executor reported";
  EXPECT_EQ(stat("executor", "dead_letters"), 0) << stats("executor");
  EXPECT_GE(stat("dll_gateway", "fills"), 5) << stats("dll_gateway");
  EXPECT_EQ(stat("executor", "/groups/ema/fills"), stat("executor", "fills")) << "only this group trades";
  // The plugin trades towards +-lot from the position the runtime reports:
  // had it traded on a stale or unknown position, it would overshoot.
  for (const auto* symbol : {"EURUSD", "GBPUSD"}) {
    const auto position = stat("executor", std::string("/groups/ema/positions/") + symbol);
    if (!std::isnan(position)) {
      EXPECT_LE(std::abs(position), lot) << symbol << ": " << stats("executor");
    }
  }

  strategy.terminate();
  EXPECT_EQ(strategy.wait_exit(10s), 0) << logs();
  // on_stop's summary, through the program's logger.
  EXPECT_GE(tp::test::count_lines_with(read_text(log_path("ema-0")), " refused; positions EURUSD="), 1)
      << read_text(log_path("ema-0"));
}
