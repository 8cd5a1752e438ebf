// The real strategy binary (STRATEGY_BIN): --help, a bad shard, a journal
// another instance holds, and a clean stop on SIGTERM; ipc:// endpoints in a
// temporary directory, nothing listening on them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "strategy/signal_journal.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tp::test::json_number;
using tp::test::read_text;

namespace {

class StrategyBinaryRun : public ::testing::Test {
 protected:
  std::string ep(const std::string& name) const { return tmp_.ipc(name); }

  tp::test::TempDir tmp_{"st_bin_"};
  fs::path dir_ = tmp_.path();
};

}  // namespace

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// Runs the binary with `args` (words, no shell), its output to one file;
// bounded by 10 s.
RunResult run_binary(std::vector<std::string> args) {
  tp::test::TempDir out("st_bin_out_");
  args.insert(args.begin(), STRATEGY_BIN);
  tp::test::Child c(std::move(args), {.stdout_path = out.file("output"), .stderr_path = out.file("output")});
  RunResult r;
  r.exit_code = c.wait_exit(10s).value_or(-1);
  r.output = read_text(out.file("output"));
  return r;
}

}  // namespace

TEST(StrategyBinary, HelpWorksWithoutConfig) {
  const auto r = run_binary({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--shard"), std::string::npos);
  EXPECT_NE(r.output.find("--shards"), std::string::npos);
}

TEST(StrategyBinary, ShardOutOfRangeIsAnErrorNamingShard) {
  tp::test::TempDir dir("st_bin_err_");
  const auto r = run_binary({"--run-dir", dir.path().string(), "--shard", "2", "--shards", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--shard"), std::string::npos) << r.output;
}

TEST(StrategyBinary, APythonGroupIsRefusedNamingItsRuntime) {
  tp::test::TempDir dir("st_bin_py_");
  const auto r = run_binary({"--run-dir", dir.path().string(), "--group", "py", "--set",
                             "strategy.groups=[{name=\"py\", kind=\"python\", entry=\"m:C\"}]"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("python3 -m tp_strategy --group py"), std::string::npos) << r.output;
}

TEST_F(StrategyBinaryRun, RefusesToStartWhileItsJournalIsHeld) {
  // As if a second instance of shard 0 were running.
  tp::strategy::SignalJournal held((dir_ / "trend-0.journal").string());
  const auto r = run_binary({"--run-dir", dir_.string(), "--group", "trend", "--shard", "0", "--shards", "1",
                             "--set", "endpoints.ticks=\"" + ep("ticks") + "\"", "--set",
                             "endpoints.signals=\"" + ep("signals") + "\"", "--set",
                             "endpoints.order_events=\"" + ep("events") + "\"", "--set",
                             "endpoints.dead_letters=\"" + ep("dl") + "\""});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("trend-0.journal: in use by another process"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "trend-0.stats.json"));
}

TEST_F(StrategyBinaryRun, StopsCleanlyOnSigterm) {
  const auto ticks = ep("ticks"), signals = ep("signals"), events = ep("events"), dl = ep("dl");
  std::vector<std::string> args{STRATEGY_BIN,  "--run-dir",
                                dir_.string(), "--group",
                                "revert",  // the default deployment's second group
                                "--shard",     "1",
                                "--shards",    "2",
                                "--set",       "endpoints.ticks=\"" + ticks + "\"",
                                "--set",       "endpoints.signals=\"" + signals + "\"",
                                "--set",       "endpoints.order_events=\"" + events + "\"",
                                "--set",       "endpoints.dead_letters=\"" + dl + "\"",
                                "--set",       "run.stats_interval_ms=50"};
  tp::test::Child strategy(args);
  ASSERT_TRUE(strategy.started());

  // Readiness: the first stats file (written on the first loop pass).
  const auto stats = (dir_ / "revert-1.stats.json").string();
  ASSERT_TRUE(tp::test::wait_until([&] { return fs::exists(stats); }, 10s)) << "no stats file within 10 s";

  strategy.terminate();
  EXPECT_EQ(strategy.wait_exit(5s), 0) << "strategy did not stop within 5 s of SIGTERM";
  const auto json = read_text(stats);
  EXPECT_EQ(tp::test::json_string(json, "program"), "revert-1") << json;
  EXPECT_EQ(tp::test::json_string(json, "kind"), "rsi_reversion") << json;
  EXPECT_EQ(json_number(json, "shard"), 1);
  EXPECT_EQ(json_number(json, "shards"), 2);
  EXPECT_EQ(json_number(json, "feed_alive"), 0);
  EXPECT_TRUE(fs::exists(dir_ / "revert-1.journal"));
}
