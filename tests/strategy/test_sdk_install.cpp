// The installed SDK as a user meets it: `cmake --install` of this build into
// a temporary prefix, examples/strategies configured and built out of tree
// against it with find_package(TradingPipelineSdk), and the plugin it gives
// loaded by create_plugin_strategy and traded through a Context.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "example_plugin.hpp"
#include "fake_context.hpp"
#include "strategy/plugin.hpp"
#include "test_support/temp_dir.hpp"

namespace {

tp::Tick tick(double mid) {
  tp::Tick t;
  t.instrument = "EURUSD";
  t.bid = mid - 0.00005;
  t.ask = mid + 0.00005;
  return t;
}

tp::OrderUpdate filled(const std::string& signal_id, tp::Side side, double quantity) {
  tp::OrderUpdate u;
  u.signal_id = signal_id;
  u.instrument = "EURUSD";
  u.order_id = "B-1";
  u.side = side;
  u.status = tp::OrderStatus::filled;
  u.quantity = quantity;
  u.filled_quantity = quantity;
  u.fill_price = 1.1;
  return u;
}

}  // namespace

TEST(StrategySdkInstall, ExampleBuildsOutOfTreeAgainstTheInstalledSdkAndTrades) {
  tp::test::TempDir dir("tp-sdk-");
  const auto example = tp::test::build_example_plugin(dir);
  const auto& prefix = example.prefix;
  const auto& plugin = example.plugin;
  for (const auto* installed :
       {"include/tp/strategy.hpp", "include/tp/indicators.hpp", "lib/libtp_strategy_sdk.a",
        "lib/cmake/TradingPipelineSdk/TradingPipelineSdkConfig.cmake",
        "lib/cmake/TradingPipelineSdk/TradingPipelineSdkConfigVersion.cmake"})
    EXPECT_TRUE(std::ifstream(prefix + "/" + installed).good()) << installed << " not installed";
  EXPECT_NE(example.configured.find("TradingPipelineSdk 0.1.0, strategy ABI " +
                                    std::to_string(tp::strategy_abi_version)),
            std::string::npos)
      << example.configured;
  EXPECT_NE(tp::test::read_text(dir.file("build/CMakeCache.txt"))
                .find("TradingPipelineSdk_DIR:PATH=" + prefix + "/lib/cmake/TradingPipelineSdk"),
            std::string::npos)
      << "the package was not found in the temporary prefix";
  ASSERT_TRUE(std::ifstream(plugin).good()) << plugin << " not built";

  // Exported: the entry point, and no other function (hidden visibility
  // keeps the SDK's indicators the plugin's own).
  auto symbols = tp::test::run_command(dir, "nm", {TP_NM, "-D", "--defined-only", plugin});
  std::vector<std::string> functions;
  std::istringstream lines(symbols);
  for (std::string line; std::getline(lines, line);)
    if (auto at = line.find(" T "); at != std::string::npos) functions.push_back(line.substr(at + 3));
  EXPECT_EQ(functions, std::vector<std::string>{"tp_strategy_plugin"}) << symbols;

  auto strategy = tp::strategy::create_plugin_strategy(plugin);
  {
    // Destroyed before the strategy: the timers' callbacks are plugin code.
    tp::test::FakeContext ctx(
        {"EURUSD"},
        {{"fast", "2"}, {"slow", "4"}, {"band_bps", "1"}, {"lot", "1000"}, {"summary_ms", "1000"}});
    strategy->attach(ctx);
    strategy->on_start();
    EXPECT_TRUE(ctx.params().unread().empty());
    EXPECT_EQ(ctx.timer_count(), 1u);

    // Rising, but the position is not known yet: no signal.
    double mid = 1.1;
    for (int i = 0; i < 8; ++i) strategy->on_tick(tick(mid += 0.001));
    EXPECT_TRUE(ctx.emitted.empty());

    ctx.positions["EURUSD"] = 0;
    strategy->on_tick(tick(mid += 0.001));
    ASSERT_EQ(ctx.emitted.size(), 1u);
    EXPECT_EQ(ctx.emitted[0].side, tp::Side::buy);
    EXPECT_EQ(ctx.emitted[0].quantity, 1000);
    // One signal in flight per instrument: further ticks wait for its end.
    strategy->on_tick(tick(mid += 0.001));
    EXPECT_EQ(ctx.emitted.size(), 1u);

    ctx.positions["EURUSD"] = 1000;
    strategy->on_order(filled(ctx.emitted[0].id, tp::Side::buy, 1000));
    strategy->on_tick(tick(mid += 0.001));
    EXPECT_EQ(ctx.emitted.size(), 1u) << "at the target already";

    // The trend turns: from +1000 to -1000 in one signal.
    for (int i = 0; i < 6 && ctx.emitted.size() == 1; ++i) strategy->on_tick(tick(mid -= 0.003));
    ASSERT_EQ(ctx.emitted.size(), 2u);
    EXPECT_EQ(ctx.emitted[1].side, tp::Side::sell);
    EXPECT_EQ(ctx.emitted[1].quantity, 2000);

    ctx.fire_timers();
    ASSERT_FALSE(ctx.logs.empty());
    EXPECT_NE(ctx.logs.back().find("2 signals, 1 fills, 0 refused; positions EURUSD=1000"), std::string::npos)
        << ctx.logs.back();
    strategy->on_stop();
  }

  // A parameter out of range refuses the start, naming the key.
  auto second = tp::strategy::create_plugin_strategy(plugin);
  tp::test::FakeContext ctx({"EURUSD"}, {{"fast", "5"}, {"slow", "3"}});
  second->attach(ctx);
  EXPECT_THROW(
      {
        try {
          second->on_start();
        } catch (const tp::ParamError& e) {
          EXPECT_STREQ(e.what(), "strategy.groups.test.params.slow must be greater than fast (got \"3\")");
          throw;
        }
      },
      tp::ParamError);
}
