// The shared test support itself: temp dir, stats reader, builders and the
// capture sink (no socket, no process).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "test_support/test_support.hpp"

namespace tt = tp::test;

TEST(TestSupport, TempDirIsRemovedWithItsFiles) {
  std::filesystem::path kept;
  {
    tt::TempDir dir("tp-support-");
    kept = dir.path();
    std::ofstream(dir.file("a.txt")) << "x";
    EXPECT_TRUE(std::filesystem::exists(dir.file("a.txt")));
    EXPECT_EQ(dir.ipc("s"), "ipc://" + dir.file("s"));
  }
  EXPECT_FALSE(std::filesystem::exists(kept));
}

TEST(TestSupport, StatsValuesAreReadAsJson) {
  const std::string stats = R"({"sent":3,"ok":true,"off":false,"alert":"disk \u00e9","nested":{"sent":9}})";
  EXPECT_EQ(tt::json_number(stats, "sent"), 3);
  EXPECT_EQ(tt::json_number(stats, "ok"), 1);
  EXPECT_EQ(tt::json_number(stats, "off"), 0);
  EXPECT_TRUE(std::isnan(tt::json_number(stats, "missing")));
  EXPECT_TRUE(std::isnan(tt::json_number(stats, "alert")));
  EXPECT_TRUE(std::isnan(tt::json_number("{\"sent\":3", "sent")));  // half written
  EXPECT_EQ(tt::json_string(stats, "alert"), "disk \xc3\xa9");
  EXPECT_EQ(tt::json_number(stats, "/nested/sent"), 9);
  EXPECT_TRUE(std::isnan(tt::json_number(stats, "/nested/none")));
  EXPECT_EQ(tt::count_lines_with("a x\nb\nc x\n", "x"), 2);
}

TEST(TestSupport, ReadJsonOfAMissingFileIsEmpty) {
  tt::TempDir dir;
  EXPECT_FALSE(tt::read_json(dir.file("none.json")));
  std::ofstream(dir.file("s.json")) << R"({"n":1})";
  ASSERT_TRUE(tt::read_json(dir.file("s.json")));
  EXPECT_EQ((*tt::read_json(dir.file("s.json")))["n"], 1);
  EXPECT_EQ(tt::read_text(dir.file("s.json")), R"({"n":1})");
}

TEST(TestSupport, BuildersFillDefaultsAndTakeOverrides) {
  tp::proto::TradingSignal s = tt::a_signal("id.1").side(tp::proto::Side::sell).quantity(50).causation(7, 99);
  EXPECT_EQ(s.signal_id, "id.1");
  EXPECT_EQ(s.instrument, "EURUSD");
  EXPECT_EQ(s.action, tp::proto::Side::sell);
  EXPECT_EQ(s.quantity, 50);
  EXPECT_EQ(s.causation_seq, 7u);
  EXPECT_EQ(s.causation_ts_ns, 99);
  const auto o = tt::an_order("C-1").quantity(10).build();
  EXPECT_EQ(o.client_order_id, "C-1");
  EXPECT_EQ(o.signal_id, "sig-C-1");
  EXPECT_EQ(o.quantity, 10);
  const tp::proto::TickEvent t = tt::a_tick("GBPUSD", 4, 1.25).stamped(5);
  EXPECT_EQ(t.seq, 4u);
  EXPECT_NEAR(t.ask - t.bid, 0.0001, 1e-12);
  EXPECT_EQ(t.gateway_ts_ns, 5);
}

TEST(TestSupport, CaptureSinkKeepsTheDefaultLoggersRecords) {
  auto before = spdlog::default_logger();
  {
    tt::ScopedLogCapture log;
    spdlog::warn("disk {} low", "/tmp");
    spdlog::debug("detail");
    EXPECT_EQ(log.sink().count("disk /tmp low"), 1u);
    EXPECT_EQ(log.sink().count("detail", spdlog::level::info), 0u);
    ASSERT_EQ(log.sink().records().size(), 2u);
    EXPECT_EQ(log.sink().records()[0].level, spdlog::level::warn);
  }
  EXPECT_EQ(spdlog::default_logger(), before);
}

TEST(TestSupport, WaitUntilIsBounded) {
  int calls = 0;
  EXPECT_TRUE(
      tt::wait_until([&] { return ++calls == 3; }, std::chrono::seconds(5), std::chrono::milliseconds(1)));
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(
      tt::wait_until([] { return false; }, std::chrono::milliseconds(20), std::chrono::milliseconds(1)));
}
