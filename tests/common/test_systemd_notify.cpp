// SystemdNotifier and the RunLoop's use of it, against a real notify socket:
// a Unix datagram socket in a temp dir named by NOTIFY_SOCKET, as systemd
// makes one for a Type=notify unit. The loop turns on a FakeClock, so the
// watchdog's pings are counted at exact times. The real programs under the
// same socket: tests/integration/test_systemd_notify.py.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/run_loop.hpp"
#include "common/systemd_notify.hpp"
#include "test_support/temp_dir.hpp"

namespace {

using tp::RunLoop;
using tp::SystemdNotifier;

// A notify socket bound in a temp dir. Sets NOTIFY_SOCKET (and, when given,
// WATCHDOG_USEC and WATCHDOG_PID) for this process; unsets them when it goes.
class NotifySocket {
 public:
  explicit NotifySocket(const char* watchdog_usec = nullptr, const char* watchdog_pid = nullptr) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const auto path = dir_.file("notify");
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("bind: " + std::string(std::strerror(errno)));
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    if (watchdog_usec) ::setenv("WATCHDOG_USEC", watchdog_usec, 1);
    if (watchdog_pid) ::setenv("WATCHDOG_PID", watchdog_pid, 1);
  }
  ~NotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The datagrams received so far, in order (sd_notify sends one a call).
  std::vector<std::string> messages() {
    std::vector<std::string> out;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) break;
      out.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  tp::test::TempDir dir_{"tp-notify-"};
  int fd_ = -1;
};

// Runs `loop` for `turns` turns, the fake clock 100 ms further at each.
void run_turns(tp::FakeClock& clock, int turns) {
  int turn = 0;
  RunLoop loop(
      clock,
      [&] {
        if (turn++ == turns) return true;
        clock.advance_ms(100);
        return false;
      },
      1);
  loop.run();
}

TEST(SystemdNotifier, SilentWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "1000000", 1);
  SystemdNotifier notifier;
  EXPECT_FALSE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog());  // a watchdog needs somewhere to send to
  ::unsetenv("WATCHDOG_USEC");
}

TEST(SystemdNotifier, ALoopSaysReadyPingsAtHalfTheWatchdogAndSaysStopping) {
  NotifySocket socket("1000000");  // WatchdogSec=1s: a ping every 500 ms
  SystemdNotifier notifier;
  ASSERT_TRUE(notifier.enabled());
  ASSERT_TRUE(notifier.watchdog());
  EXPECT_EQ(notifier.ping_every_ns(), 500 * tp::ns_per_ms);

  tp::FakeClock clock;
  run_turns(clock, 12);  // 1.2 s: pings after the turns ending at 0.1, 0.6 and 1.1 s
  const std::vector<std::string> expected = {"READY=1\nSTATUS=running", "WATCHDOG=1", "WATCHDOG=1",
                                             "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"};
  EXPECT_EQ(socket.messages(), expected);
}

TEST(SystemdNotifier, NoWatchdogWithoutWatchdogUsec) {
  NotifySocket socket;
  tp::FakeClock clock;
  run_turns(clock, 30);
  const std::vector<std::string> expected = {"READY=1\nSTATUS=running", "STOPPING=1\nSTATUS=stopping"};
  EXPECT_EQ(socket.messages(), expected);
}

TEST(SystemdNotifier, AWatchdogMeantForAnotherProcessIsNotPinged) {
  // WATCHDOG_PID names the main process the unit watches: a child that
  // inherited the variables is not it.
  NotifySocket socket("1000000", std::to_string(::getpid() + 1).c_str());
  SystemdNotifier notifier;
  EXPECT_TRUE(notifier.enabled());
  EXPECT_FALSE(notifier.watchdog());
  notifier.alive(0);
  EXPECT_TRUE(socket.messages().empty());
}

TEST(SystemdNotifier, PingsOnlyOnceHalfAPeriodHasPassed) {
  NotifySocket socket("200000");  // a ping every 100 ms
  SystemdNotifier notifier;
  const std::int64_t t0 = 5'000 * tp::ns_per_ms;
  notifier.alive(t0);                        // the first at once
  notifier.alive(t0 + 99 * tp::ns_per_ms);   // too soon
  notifier.alive(t0 + 100 * tp::ns_per_ms);  // due
  notifier.alive(t0 + 150 * tp::ns_per_ms);  // too soon again
  EXPECT_EQ(socket.messages(), (std::vector<std::string>{"WATCHDOG=1", "WATCHDOG=1"}));
}

}  // namespace
