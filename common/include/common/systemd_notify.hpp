// SystemdNotifier: tells systemd (a Type=notify unit) that a program is
// ready, still looping, and stopping, through libsystemd's sd_notify. Only
// when systemd started the program: without NOTIFY_SOCKET in the environment
// it never sends, and its calls cost a test of a bool (the run loop calls
// alive() every turn).
//
// The watchdog (WatchdogSec in the unit, WATCHDOG_USEC in the environment)
// is pinged at half its period, as sd_watchdog_enabled(3) advises, by
// whoever calls alive(): the run loop once a turn, so that a loop hung in
// one callback stops pinging and systemd restarts the program; a wait that
// keeps its program alive on purpose (the executor's wait on dll_gateway)
// calls it too, where it writes its heartbeat.
//
// Reads the environment once, when built. A value type; not thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace tp {

class SystemdNotifier {
 public:
  // From this process's environment: NOTIFY_SOCKET, and WATCHDOG_USEC when
  // WATCHDOG_PID is absent or this process's (sd_watchdog_enabled).
  SystemdNotifier();

  // True when NOTIFY_SOCKET is set: something listens for the messages.
  bool enabled() const noexcept { return enabled_; }
  // True when systemd expects WATCHDOG=1 (the unit has WatchdogSec).
  bool watchdog() const noexcept { return ping_every_ns_ > 0; }
  // Half of WATCHDOG_USEC, in ns; 0 without a watchdog.
  std::int64_t ping_every_ns() const noexcept { return ping_every_ns_; }

  // READY=1 with `status` as STATUS= (none if empty).
  void ready(std::string_view status = "running");
  // WATCHDOG=1 when the last ping is half a watchdog period old at
  // monotonic `now_ns` (or there was none yet).
  void alive(std::int64_t now_ns) {
    if (ping_every_ns_ > 0 && now_ns >= next_ping_ns_) ping(now_ns);
  }
  // STOPPING=1 with `status` as STATUS=.
  void stopping(std::string_view status = "stopping");

 private:
  void ping(std::int64_t now_ns);
  void send(std::string_view state);

  bool enabled_ = false;
  std::int64_t ping_every_ns_ = 0;
  std::int64_t next_ping_ns_ = 0;
  bool warned_ = false;
};

}  // namespace tp
