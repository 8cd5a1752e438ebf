// create_plugin_strategy: a good plugin loads and trades through a Context;
// each kind of broken plugin is refused with a message naming the file and
// the problem; the library stays loaded exactly as long as its strategies.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "fake_context.hpp"
#include "strategy/plugin.hpp"
#include "test_support/temp_dir.hpp"

using tp::strategy::create_plugin_strategy;
using tp::strategy::PluginError;

namespace {

// The message a refused load throws, or "" when it loaded.
std::string load_error(const std::string& path) {
  try {
    auto s = create_plugin_strategy(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

bool loaded(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  if (h) dlclose(h);
  return h != nullptr;
}

tp::Tick tick(double mid, std::uint64_t seq) {
  tp::Tick t;
  t.instrument = "EURUSD";
  t.bid = mid - 0.0001;
  t.ask = mid + 0.0001;
  t.seq = seq;
  return t;
}

}  // namespace

TEST(StrategyPlugin, GoodPluginLoadsAndTrades) {
  auto strategy = create_plugin_strategy(GOOD_PLUGIN_PATH);
  ASSERT_TRUE(strategy);
  tp::test::FakeContext ctx({"EURUSD"}, {{"every", "3"}});
  strategy->attach(ctx);
  strategy->on_start();
  EXPECT_TRUE(ctx.params().unread().empty());
  for (std::uint64_t i = 1; i <= 10; ++i) strategy->on_tick(tick(1.1 + 0.0001 * static_cast<double>(i), i));
  // The SMA(2) is ready from the 2nd tick; ticks 2..10 counted, every 3rd emits.
  ASSERT_EQ(ctx.emitted.size(), 3u);
  EXPECT_EQ(ctx.emitted[0].instrument, "EURUSD");
  EXPECT_EQ(ctx.emitted[0].side, tp::Side::buy);
  EXPECT_NEAR(ctx.emitted[0].trigger_price, 1.10035, 1e-12);  // mean of the 3rd and 4th mids
  strategy->on_stop();
}

TEST(StrategyPlugin, ParamErrorFromThePluginReachesTheCaller) {
  auto strategy = create_plugin_strategy(GOOD_PLUGIN_PATH);
  tp::test::FakeContext ctx({"EURUSD"}, {{"every", "0"}});
  strategy->attach(ctx);
  try {
    strategy->on_start();
    FAIL() << "on_start accepted every = 0";
  } catch (const tp::ParamError& e) {
    EXPECT_STREQ(e.what(), "strategy.groups.test.params.every must be at least 1 (got \"0\")");
  }
}

TEST(StrategyPlugin, LibraryStaysLoadedUntilItsLastStrategyIsDestroyed) {
  ASSERT_FALSE(loaded(GOOD_PLUGIN_PATH)) << "an earlier test left the plugin loaded";
  auto first = create_plugin_strategy(GOOD_PLUGIN_PATH);
  auto second = create_plugin_strategy(GOOD_PLUGIN_PATH);
  {
    // A handle of our own, only to read the plugin's count of live objects.
    void* h = dlopen(GOOD_PLUGIN_PATH, RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(h, nullptr);
    auto live = reinterpret_cast<int (*)()>(dlsym(h, "test_plugin_live_objects"));
    ASSERT_NE(live, nullptr);
    EXPECT_EQ(live(), 2);
    first.reset();  // the plugin's destroy ran: one object left
    EXPECT_EQ(live(), 1);
    dlclose(h);
  }
  EXPECT_TRUE(loaded(GOOD_PLUGIN_PATH));
  auto moved = std::move(second);
  EXPECT_TRUE(loaded(GOOD_PLUGIN_PATH));
  moved.reset();
  EXPECT_FALSE(loaded(GOOD_PLUGIN_PATH));
}

TEST(StrategyPlugin, WrongAbiVersionIsRefusedBeforeAnythingElseIsUsed) {
  // The plugin's create aborts the process if it is ever called.
  auto msg = load_error(WRONG_ABI_PLUGIN_PATH);
  EXPECT_EQ(msg, std::string("strategy plugin ") + WRONG_ABI_PLUGIN_PATH +
                     ": built against strategy ABI version 999, this strategy program takes version " +
                     std::to_string(tp::strategy_abi_version) +
                     " (rebuild the plugin against this program's SDK)");
  EXPECT_FALSE(loaded(WRONG_ABI_PLUGIN_PATH)) << "a refused plugin is unloaded again";
}

// Version 2 added order terms, Context::cancel(signal_id) and EXPIRED: a
// version 1 plugin's Context vtable would be read wrong, so it is refused.
TEST(StrategyPlugin, AVersionOnePluginIsRefusedWithBothNumbers) {
  ASSERT_EQ(tp::strategy_abi_version, 2u);
  auto msg = load_error(OLD_ABI_PLUGIN_PATH);
  EXPECT_EQ(msg, std::string("strategy plugin ") + OLD_ABI_PLUGIN_PATH +
                     ": built against strategy ABI version 1, this strategy program takes version 2 (rebuild "
                     "the plugin against this program's SDK)");
  EXPECT_FALSE(loaded(OLD_ABI_PLUGIN_PATH));
}

TEST(StrategyPlugin, LibraryWithoutTheEntryPointIsRefused) {
  auto msg = load_error(NO_SYMBOL_PLUGIN_PATH);
  EXPECT_EQ(msg, std::string("strategy plugin ") + NO_SYMBOL_PLUGIN_PATH +
                     ": missing symbol tp_strategy_plugin (not a strategy plugin: name the strategy class "
                     "with TP_STRATEGY_PLUGIN)");
  EXPECT_FALSE(loaded(NO_SYMBOL_PLUGIN_PATH));
}

TEST(StrategyPlugin, NullEntryAndNullCreateAreRefused) {
  EXPECT_EQ(load_error(NULL_ENTRY_PLUGIN_PATH), std::string("strategy plugin ") + NULL_ENTRY_PLUGIN_PATH +
                                                    ": tp_strategy_plugin() returned no plugin");
  EXPECT_EQ(load_error(NULL_CREATE_PLUGIN_PATH), std::string("strategy plugin ") + NULL_CREATE_PLUGIN_PATH +
                                                     ": the plugin has no create or destroy function");
}

TEST(StrategyPlugin, ThrowingConstructorIsReportedWithItsMessage) {
  EXPECT_EQ(load_error(CREATE_THROWS_PLUGIN_PATH),
            std::string("strategy plugin ") + CREATE_THROWS_PLUGIN_PATH + ": create failed: no licence file");
  EXPECT_FALSE(loaded(CREATE_THROWS_PLUGIN_PATH));
}

TEST(StrategyPlugin, MissingFileAndBareNameAreRefused) {
  tp::test::TempDir dir;
  const auto missing = dir.file("libnothing.so");
  EXPECT_EQ(load_error(missing), "strategy plugin " + missing + ": no such file");
  EXPECT_EQ(load_error("libm.so.6"),
            "strategy plugin libm.so.6: not a path (write ./libm.so.6 for a file here)");
  EXPECT_EQ(load_error(dir.path().string()), "strategy plugin " + dir.path().string() + ": no such file");
}

TEST(StrategyPlugin, FileThatIsNotASharedLibraryIsRefused) {
  tp::test::TempDir dir;
  const auto text = dir.file("notes.so");
  {
    std::FILE* f = std::fopen(text.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("not an ELF file\n", f);
    std::fclose(f);
  }
  auto msg = load_error(text);
  EXPECT_EQ(msg.rfind("strategy plugin " + text + ": cannot load: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
}
