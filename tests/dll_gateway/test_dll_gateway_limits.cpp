// The real dll_gateway binary when its disk fills up and when its
// descriptors run out (ipc:// endpoints in a temp dir; every wait bounded;
// the child always killed):
//  - its db on a small tmpfs (root needed, skipped otherwise), filled: orders
//    are answered UNKNOWN, nothing reaches the broker (the sim broker's
//    journal has no line for them), the stats show the alert, the process
//    stays up; once space returns the same ids are submitted exactly once;
//  - run under `prlimit --nofile=64:64` with 200 connections flooding its
//    order socket: it stays up, counts accept_failed, and then still answers
//    an order.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "dll_gateway_run.hpp"
#include "proto/codec.hpp"
#include "test_support/child.hpp"
#include "test_support/small_tmpfs.hpp"
#include "test_support/stats.hpp"
#include "test_support/wait.hpp"

using namespace std::chrono_literals;
using tp::test::Child;
using tp::test::count_lines_with;
using tp::test::json_number;
using tp::test::read_text;
using tp::test::wait_until;

namespace {

// Descriptors `pid` has open now (its /proc/<pid>/fd entries).
int open_descriptors(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec))
    ++n;
  return n;
}

class DllGatewayLimits : public tp::dll_gateway::test::DllGatewayRun {
 protected:
  std::vector<std::string> args(const std::string& db) const { return DllGatewayRun::args({"--db", db}); }

  // A round trip that the server handles after the previous answer's DONE
  // row was written (it writes that row before reading the next request).
  void sync() {
    ASSERT_TRUE(call(tp::proto::encode_to_string(tp::proto::PositionQuery{.instrument = "EURUSD"})));
  }
};

}  // namespace

TEST_F(DllGatewayLimits, FullDiskAnswersUnknownSendsNothingStaysUpAndSendsTheSameIdsOnceWhenSpaceReturns) {
  tp::test::SmallTmpfs fs(1 << 20);
  if (!fs.ok()) GTEST_SKIP() << fs.why();
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind(ep("ticks"));
  zmq::socket_t dead(ctx, zmq::socket_type::pull);
  dead.set(zmq::sockopt::linger, 0);
  dead.bind(ep("dead_letters"));

  Child gw(args(fs.file("dll_gateway.db")), {.stderr_path = dir.file("stderr.txt")});
  ASSERT_TRUE(gw.started());
  ASSERT_TRUE(feed_quote(pub)) << read_text(dir.file("stderr.txt"));
  EXPECT_EQ(order("C-0").status, tp::proto::OrderStatus::filled);
  sync();

  fs.fill();
  for (const char* id : {"C-1", "C-2", "C-1"}) {
    auto r = order(id);
    EXPECT_EQ(r.status, tp::proto::OrderStatus::unknown) << id << ": " << r.reason;
    EXPECT_NE(r.reason.find("retry the same client order id"), std::string::npos) << r.reason;
  }
  ASSERT_TRUE(wait_until([&] { return json_number(stats(), "store_unknown") == 3; }, 5s)) << stats();
  auto full = stats();
  EXPECT_EQ(tp::test::json_string(full, "alert"), "cannot write dll_gateway.db: No space left on device")
      << full;
  EXPECT_EQ(json_number(full, "write_failures"), 3) << "one per order refused: " << full;
  EXPECT_EQ(json_number(full, "submitted"), 1) << full;
  EXPECT_EQ(json_number(full, "rejects"), 0) << full;
  auto journal = read_text(dir.file("sim.journal"));
  EXPECT_EQ(count_lines_with(journal, " C-1 "), 0) << journal;
  EXPECT_EQ(count_lines_with(journal, " C-2 "), 0) << journal;
  auto err = read_text(dir.file("stderr.txt"));
  EXPECT_NE(err.find("dll_gateway.db"), std::string::npos) << err;
  EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
  EXPECT_TRUE(gw.running());

  fs.free();
  EXPECT_EQ(order("C-1").status, tp::proto::OrderStatus::filled);
  EXPECT_EQ(order("C-2").status, tp::proto::OrderStatus::filled);
  EXPECT_TRUE(order("C-1").duplicate);
  ASSERT_TRUE(wait_until([&] { return !tp::test::parse_json(stats()).contains("alert"); }, 5s)) << stats();

  gw.terminate();
  EXPECT_EQ(gw.wait_exit(5000ms), std::optional<int>(0));
  journal = read_text(dir.file("sim.journal"));
  EXPECT_EQ(count_lines_with(journal, " C-1 "), 1) << journal;
  EXPECT_EQ(count_lines_with(journal, " C-2 "), 1) << journal;
  EXPECT_EQ(count_lines_with(err, "No space left on device; orders are answered UNKNOWN"), 1)
      << "three failures within the interval: one line; " << err;
}

TEST_F(DllGatewayLimits, ConnectionFloodPastTheDescriptorLimitIsCountedAndServedAfterwards) {
  if (access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/prlimit";
  zmq::socket_t pub(ctx, zmq::socket_type::pub);
  pub.set(zmq::sockopt::linger, 0);
  pub.bind(ep("ticks"));
  zmq::socket_t dead(ctx, zmq::socket_type::pull);
  dead.set(zmq::sockopt::linger, 0);
  dead.bind(ep("dead_letters"));

  auto a = args(dir.file("dll_gateway.db"));
  a.insert(a.begin(), {"/usr/bin/prlimit", "--nofile=64:64", "--"});
  Child gw(a, {.stderr_path = dir.file("stderr.txt")});
  ASSERT_TRUE(gw.started());
  ASSERT_TRUE(feed_quote(pub)) << read_text(dir.file("stderr.txt"));

  // 200 raw connections to the order socket, held until the process has all
  // 64 descriptors it may have open (it cannot write its stats file then, so
  // /proc is what shows it): more than it can accept.
  std::vector<int> flood;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const auto path = dir.file("orders");
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // EAGAIN past the backlog: fine
    flood.push_back(fd);
  }
  const bool exhausted = wait_until([&] { return open_descriptors(gw.pid()) >= 64; }, 5s);
  EXPECT_TRUE(gw.running()) << read_text(dir.file("stderr.txt"));
  for (int fd : flood) ::close(fd);
  ASSERT_TRUE(exhausted) << open_descriptors(gw.pid()) << " descriptors open";

  ASSERT_TRUE(wait_until([&] { return json_number(stats(), "accept_failed") > 0; }, 5s)) << stats();
  // A stats file written while every descriptor was taken says open_files 0
  // (listing /proc/self/fd needs one); a later one counts them again.
  EXPECT_TRUE(wait_until([&] { return json_number(stats(), "open_files") > 0; }, 5s)) << stats();
  auto r = order("C-after-flood");
  EXPECT_EQ(r.status, tp::proto::OrderStatus::filled) << r.reason;
  EXPECT_TRUE(gw.running());
  auto err = read_text(dir.file("stderr.txt"));
  EXPECT_NE(err.find("incoming connections refused"), std::string::npos) << err;
  EXPECT_LE(count_lines_with(err, "incoming connections refused"), 3) << "bounded rate: " << err;

  gw.terminate();
  EXPECT_EQ(gw.wait_exit(5000ms), std::optional<int>(0)) << read_text(dir.file("stderr.txt"));
}
