// The Child class against /bin/sh: exit codes, signal deaths, environment,
// output files, and the reaping at scope exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cerrno>

#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

using namespace std::chrono_literals;
namespace tt = tp::test;

TEST(Child, ReportsTheExitCodeAndWritesItsOutput) {
  tt::TempDir dir;
  tt::Child c({"/bin/sh", "-c", "echo out; echo err >&2; echo $TP_X; exit 3"},
              {.stdout_path = dir.file("log"), .stderr_path = dir.file("log"), .env = {"TP_X=seen"}});
  ASSERT_TRUE(c.started());
  EXPECT_EQ(c.wait_exit(10s), 3);
  EXPECT_FALSE(c.running());
  const auto log = tt::read_text(dir.file("log"));
  EXPECT_EQ(tt::count_lines_with(log, "out"), 1) << log;
  EXPECT_EQ(tt::count_lines_with(log, "err"), 1) << log;
  EXPECT_EQ(tt::count_lines_with(log, "seen"), 1) << log;
}

TEST(Child, ATerminatedChildReportsItsSignal) {
  tt::Child c({"/bin/sh", "-c", "exec sleep 30"});
  ASSERT_TRUE(c.started());
  EXPECT_TRUE(c.running());
  EXPECT_EQ(c.wait_exit(0ms), std::nullopt);
  c.terminate();
  EXPECT_EQ(c.wait_exit(10s), -SIGTERM);
}

TEST(Child, IsReapedAtScopeExit) {
  pid_t pid = -1;
  {
    tt::Child c({"/bin/sh", "-c", "exec sleep 30"});
    ASSERT_TRUE(c.started());
    pid = c.pid();
  }
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);  // already reaped: not our child any more
  EXPECT_EQ(errno, ECHILD);
}

TEST(Child, AMissingProgramDoesNotStart) {
  tt::Child c({"/nonexistent/program"});
  EXPECT_FALSE(c.started() && c.wait_exit(10s) == 0);
}
