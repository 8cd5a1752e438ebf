// dll_gateway's order store refuses damaged files, and every store error
// names the file: the store opened as the program opens it, and the real
// dll_gateway binary started on a damaged run dir.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "dll_gateway/order_store.hpp"
#include "test_support/builders.hpp"
#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/store_faults.hpp"
#include "test_support/temp_dir.hpp"

using namespace tp::dll_gateway;
using tp::test::read_text;
using tp::test::TempDir;

namespace {

tp::proto::OrderRequest order(int i) {
  return tp::test::an_order("C-" + std::to_string(i)).signal_id("sig-" + std::to_string(i));
}

// 40 orders recorded PENDING then DONE; the files copied to `to` while the
// store is still open: what kill -9 leaves behind.
void crash_after_40_orders(const TempDir& live, const TempDir& to) {
  OrderStore store(live.file("dll_gateway.db"));
  for (int i = 0; i < 40; ++i) {
    store.insert_pending(order(i), 1);
    tp::proto::OrderReply r;
    r.client_order_id = order(i).client_order_id;
    r.status = tp::proto::OrderStatus::filled;
    store.store_done(r, 2);
  }
  tp::test::copy_store_files(live.file("dll_gateway.db"), to.file("dll_gateway.db"));
}

std::string open_error(const std::string& path) {
  try {
    OrderStore store(path);
  } catch (const StoreError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST(OrderStoreFaults, DamagedLogIsRefusedNamingTheFile) {
  TempDir live, crashed;
  crash_after_40_orders(live, crashed);
  const auto wal = crashed.file("dll_gateway.db-wal");
  tp::test::damage_wal_frame(wal, tp::sqlite_wal::scan_wal_file(wal).frames / 2);
  const auto why = open_error(crashed.file("dll_gateway.db"));
  EXPECT_NE(why.find("dll_gateway.db-wal (" + wal + "): invalid frame "), std::string::npos) << why;
}

TEST(OrderStoreFaults, TruncatedDatabaseIsRefusedNamingTheFile) {
  TempDir live, crashed;
  crash_after_40_orders(live, crashed);
  // The live store was closed cleanly: its file holds everything, no log.
  std::filesystem::remove(crashed.file("dll_gateway.db-wal"));
  std::filesystem::copy_file(live.file("dll_gateway.db"), crashed.file("dll_gateway.db"),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::resize_file(crashed.file("dll_gateway.db"), 4096 + 100);
  const auto why = open_error(crashed.file("dll_gateway.db"));
  EXPECT_NE(why.find("dll_gateway.db (" + crashed.file("dll_gateway.db") + "): "), std::string::npos) << why;
}

TEST(OrderStoreFaults, StatementErrorsNameTheFile) {
  TempDir dir;
  OrderStore store(dir.file("dll_gateway.db"));
  store.insert_pending(order(1), 1);
  try {
    store.insert_pending(order(1), 2);
    FAIL() << "a second PENDING row for one id";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("dll_gateway.db (" + dir.file("dll_gateway.db") + "): step: UNIQUE"),
              std::string::npos)
        << e.what();
  }
}

TEST(OrderStoreFaults, DllGatewayProgramExitsNonZeroNamingTheDamagedLog) {
  TempDir live, run;
  crash_after_40_orders(live, run);
  const auto wal = run.file("dll_gateway.db-wal");
  tp::test::damage_wal_frame(wal, tp::sqlite_wal::scan_wal_file(wal).frames / 2);
  // Bounded: a program that starts instead of refusing is killed after 20 s
  // (at scope exit) and fails the exit-code check.
  tp::test::Child gw({DLL_GATEWAY_BIN, "--run-dir", run.path().string(), "--plugin", SIM_BROKER_PATH, "--set",
                      "endpoints.ticks=\"" + run.ipc("ticks") + "\"", "--set",
                      "endpoints.orders=\"" + run.ipc("orders") + "\"", "--set",
                      "endpoints.dead_letters=\"" + run.ipc("dead") + "\"", "--set",
                      "dll_gateway.settings.journal_path=\"" + run.file("sim.journal") + "\""},
                     {.stderr_path = run.file("stderr.log")});
  ASSERT_TRUE(gw.started());
  EXPECT_EQ(gw.wait_exit(std::chrono::seconds(20)), 1);
  const auto err = read_text(run.file("stderr.log"));
  EXPECT_NE(err.find("dll_gateway.db-wal (" + wal + "): invalid frame "), std::string::npos) << err;
}
