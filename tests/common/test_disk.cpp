// A full filesystem and the descriptor limit, for the parts every program
// shares: the stats file, the free-space watch, the failure log.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "common/disk_watch.hpp"
#include "common/stats.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/stats.hpp"

using tp::test::read_text;

TEST(DiskFull, AStatsFileIsRewrittenFromItsReserveAndNeverReplacedByAShortOne) {
  tp::test::SmallTmpfs fs(512 * 1024);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  const auto path = fs.file("x.stats.json");
  ASSERT_TRUE(tp::write_file_atomically(path, "{\"n\":1}"));
  fs.fill();
  // The heartbeat still gets through: its blocks were reserved.
  for (int i = 2; i < 20; ++i) {
    const auto text =
        "{\"n\":" + std::to_string(i) + ",\"alert\":\"cannot write x: No space left on device\"}";
    ASSERT_TRUE(tp::write_file_atomically(path, text)) << i << ": " << std::strerror(errno);
    EXPECT_EQ(read_text(path), text + "\n");
  }
  // More than the reserve cannot be written, and the last good file stays.
  const std::string big(128 * 1024, 'y');
  errno = 0;
  EXPECT_FALSE(tp::write_file_atomically(path, "{\"n\":\"" + big + "\"}"));
  EXPECT_EQ(errno, ENOSPC);
  EXPECT_EQ(read_text(path).substr(0, 7), "{\"n\":19");
  fs.free();
  EXPECT_TRUE(tp::write_file_atomically(path, "{\"n\":\"" + big + "\"}"));
  EXPECT_EQ(read_text(path).size(), big.size() + 9);
}

TEST(DiskWatch, ReportsTheLowestFreeSpaceAndWhetherItIsBelowTheFloor) {
  tp::test::SmallTmpfs fs(1024 * 1024);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  tp::DiskWatch watch({fs.dir(), "/tmp"}, 512 * 1024, 1'000'000'000);
  watch.poll(0);
  EXPECT_LE(watch.free_bytes(), 1024u * 1024);
  EXPECT_GT(watch.free_bytes(), 512u * 1024);
  EXPECT_FALSE(watch.low());
  fs.fill();
  watch.poll(500'000'000);  // not due yet: the figure is the last one
  EXPECT_FALSE(watch.low());
  watch.poll(1'000'000'000);
  EXPECT_TRUE(watch.low());
  EXPECT_LT(watch.free_bytes(), 64u * 1024);
  tp::JsonObject o;
  watch.add_stats(o);
  EXPECT_EQ(tp::test::json_number(o.str(), "disk_low"), 1) << o.str();
}

TEST(WriteFailures, CountsEachFailureAndKnowsWhichFilesFailNow) {
  tp::WriteFailures failures;
  failures.record("/run/a.journal", "write", ENOSPC, "signals are not emitted");
  failures.record("/run/a.journal", "write", ENOSPC, "signals are not emitted");
  failures.record("/run/b.db", "commit", EIO, "nothing acked");
  EXPECT_EQ(failures.total(), 3u);
  ASSERT_EQ(failures.failing().size(), 2u);
  EXPECT_NE(failures.failing().at("/run/a.journal").find("No space left on device"), std::string::npos);
  failures.recovered("/run/a.journal");
  EXPECT_EQ(failures.failing().count("/run/a.journal"), 0u);
  tp::JsonObject o;
  failures.add_stats(o);
  const auto stats = tp::test::parse_json(o.str());
  EXPECT_EQ(stats["write_failures"], 3) << o.str();
  EXPECT_EQ(stats["files_failing"], nlohmann::json({{"/run/b.db", "commit: Input/output error"}})) << o.str();
}

TEST(OpenFiles, TheSoftLimitIsRaisedToTheHardOne) {
  struct rlimit lim {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  const auto hard = lim.rlim_max;
  lim.rlim_cur = std::min<rlim_t>(64, hard);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(tp::raise_open_files_limit(), hard);
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  EXPECT_EQ(lim.rlim_cur, hard);
  EXPECT_GT(tp::open_files(), 2u);
}
