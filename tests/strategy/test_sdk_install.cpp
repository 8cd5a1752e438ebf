// The installed SDK as a user meets it: `cmake --install` of this build into
// a temporary prefix, examples/strategies configured and built out of tree
// against it with find_package(TradingPipelineSdk), and the plugin it gives
// loaded by create_plugin_strategy and traded through a Context.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fake_context.hpp"
#include "strategy/plugin.hpp"
#include "test_support/child.hpp"
#include "test_support/temp_dir.hpp"

using namespace std::chrono_literals;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs a command to its end; fails the test with its output when it does
// not exit 0 within `timeout`. Returns the output (stdout and stderr).
std::string run(const tp::test::TempDir& dir, const std::string& name, std::vector<std::string> args,
                std::chrono::milliseconds timeout = 180s) {
  const auto out = dir.file(name + ".out");
  tp::test::Child c(std::move(args), {.stdout_path = out, .stderr_path = out});
  EXPECT_TRUE(c.started()) << name;
  auto rc = c.wait_exit(timeout);
  auto text = read_file(out);
  EXPECT_EQ(rc, 0) << name << " failed (nullopt: still running after the timeout):\n" << text;
  return text;
}

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
  const auto prefix = dir.file("sdk");
  const auto build = dir.file("build");

  run(dir, "install", {CMAKE_COMMAND, "--install", TP_BUILD_DIR, "--prefix", prefix, "--component", "sdk"});
  for (const auto* installed :
       {"include/tp/strategy.hpp", "include/tp/indicators.hpp", "lib/libtp_strategy_sdk.a",
        "lib/cmake/TradingPipelineSdk/TradingPipelineSdkConfig.cmake",
        "lib/cmake/TradingPipelineSdk/TradingPipelineSdkConfigVersion.cmake"})
    EXPECT_TRUE(std::ifstream(prefix + "/" + installed).good()) << installed << " not installed";

  // The user's project sees only the prefix; the compiler (and ccache) and
  // sanitizer flags are this build's, so the plugin matches the test binary.
  std::vector<std::string> configure{CMAKE_COMMAND,
                                     "-S",
                                     TP_SOURCE_DIR "/examples/strategies",
                                     "-B",
                                     build,
                                     "-G",
                                     TP_GENERATOR,
                                     "-DCMAKE_PREFIX_PATH=" + prefix,
                                     "-DCMAKE_CXX_COMPILER=" TP_CXX_COMPILER,
                                     "-DCMAKE_COMPILE_WARNING_AS_ERROR=ON"};
  if (std::string(TP_CXX_LAUNCHER).size())
    configure.push_back("-DCMAKE_CXX_COMPILER_LAUNCHER=" TP_CXX_LAUNCHER);
  if (std::string(TP_SANITIZE).size()) {
    configure.push_back("-DCMAKE_CXX_FLAGS=-fsanitize=" TP_SANITIZE " -fno-omit-frame-pointer");
    configure.push_back("-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=" TP_SANITIZE);
  }
  auto configured = run(dir, "configure", configure);
  EXPECT_NE(
      configured.find("TradingPipelineSdk 0.1.0, strategy ABI " + std::to_string(tp::strategy_abi_version)),
      std::string::npos)
      << configured;
  EXPECT_NE(read_file(build + "/CMakeCache.txt")
                .find("TradingPipelineSdk_DIR:PATH=" + prefix + "/lib/cmake/TradingPipelineSdk"),
            std::string::npos)
      << "the package was not found in the temporary prefix";
  run(dir, "build", {CMAKE_COMMAND, "--build", build});
  const auto plugin = build + "/libema_trend.so";
  ASSERT_TRUE(std::ifstream(plugin).good()) << plugin << " not built";

  // Exported: the entry point, and no other function (hidden visibility
  // keeps the SDK's indicators the plugin's own).
  auto symbols = run(dir, "nm", {TP_NM, "-D", "--defined-only", plugin});
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
