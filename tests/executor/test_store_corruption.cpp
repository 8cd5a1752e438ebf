// The executor's store refuses damaged files instead of losing committed
// signals without a word: the store opened as the program opens it, and the
// real executor binary started on a damaged run dir.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "executor/decision.hpp"
#include "executor/store.hpp"
#include "test_support/builders.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/store_faults.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::executor;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000'000'000;
constexpr int signals = 40;

std::string signal_id(int i) { return "sma.1.1." + std::to_string(i); }

// 40 signals accepted one commit each; executor.db and its log copied into
// `to` while the store is still open: what kill -9 leaves behind.
void crash_after_40_signals(const tp::test::TempDir& live, const tp::test::TempDir& to) {
  ExecutorStore store(live.file("executor.db"), t0);
  for (int i = 0; i < signals; ++i) {
    const tp::proto::TradingSignal s = tp::test::a_signal(signal_id(i));
    ASSERT_TRUE(store.record_accepted(s, intent_for(s, t0), t0));
  }
  tp::test::copy_store_files(live.file("executor.db"), to.file("executor.db"));
}

std::string open_error(const std::string& path) {
  try {
    ExecutorStore store(path, t0);
  } catch (const StoreError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST(ExecutorStoreFaults, CrashCopyKeepsEverySignal) {
  tp::test::TempDir live, crashed;
  crash_after_40_signals(live, crashed);
  ExecutorStore store(crashed.file("executor.db"), t0);
  for (int i = 0; i < signals; ++i) EXPECT_TRUE(store.find_signal(signal_id(i)).has_value()) << i;
}

TEST(ExecutorStoreFaults, DamagedLogIsRefusedNamingTheFile) {
  tp::test::TempDir live, crashed;
  crash_after_40_signals(live, crashed);
  const auto wal = crashed.file("executor.db-wal");
  tp::test::damage_wal_frame(wal, tp::sqlite_wal::scan_wal_file(wal).frames / 2);
  const auto why = open_error(crashed.file("executor.db"));
  EXPECT_NE(why.find("executor.db-wal (" + wal + "): invalid frame "), std::string::npos) << why;
  EXPECT_NE(why.find("silently drop every committed frame"), std::string::npos) << why;
}

TEST(ExecutorStoreFaults, GarbledDatabaseIsRefusedNamingTheFile) {
  tp::test::TempDir dir;
  {
    std::ofstream out(dir.file("executor.db"), std::ios::binary);
    out << "SQLite format 3" << '\0' << std::string(8000, '\x7f');
  }
  const auto why = open_error(dir.file("executor.db"));
  EXPECT_NE(why.find("executor.db (" + dir.file("executor.db") + "): "), std::string::npos) << why;
}

TEST(ExecutorStoreFaults, ExecutorProgramExitsNonZeroNamingTheDamagedLog) {
  tp::test::TempDir live, run;
  crash_after_40_signals(live, run);
  const auto wal = run.file("executor.db-wal");
  tp::test::damage_wal_frame(wal, tp::sqlite_wal::scan_wal_file(wal).frames / 2);

  // Bounded: a program that starts instead of refusing is killed after 20 s
  // (at scope exit) and fails the exit-code check.
  tp::test::Child executor({EXECUTOR_BIN, "--run-dir", run.file(""), "--db", run.file("executor.db"), "--set",
                            "endpoints.signals=\"" + run.ipc("signals") + "\"", "--set",
                            "endpoints.order_events=\"" + run.ipc("events") + "\"", "--set",
                            "endpoints.orders=\"" + run.ipc("orders") + "\"", "--set",
                            "endpoints.dead_letters=\"" + run.ipc("dead") + "\""},
                           {.stderr_path = run.file("stderr.log")});
  ASSERT_TRUE(executor.started());
  EXPECT_EQ(executor.wait_exit(std::chrono::seconds(20)), 1);
  const auto err = tp::test::read_text(run.file("stderr.log"));
  EXPECT_NE(err.find("executor.db-wal (" + wal + "): invalid frame "), std::string::npos) << err;
  // The log was left as found, for the operator.
  EXPECT_FALSE(tp::sqlite_wal::scan_wal_file(wal).ok());
}
