#include "common/systemd_notify.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace tp {

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  std::uint64_t usec = 0;
  // 0: keep the variables, for the other notifiers of this process (the
  // executor's wait has its own).
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    ping_every_ns_ = static_cast<std::int64_t>(usec) * 1000 / 2;
}

void SystemdNotifier::ready(std::string_view status) {
  if (!enabled_) return;
  send(status.empty() ? std::string("READY=1") : "READY=1\nSTATUS=" + std::string(status));
}

void SystemdNotifier::stopping(std::string_view status) {
  if (!enabled_) return;
  send(status.empty() ? std::string("STOPPING=1") : "STOPPING=1\nSTATUS=" + std::string(status));
}

void SystemdNotifier::ping(std::int64_t now_ns) {
  send("WATCHDOG=1");
  next_ping_ns_ = now_ns + ping_every_ns_;
}

void SystemdNotifier::send(std::string_view state) {
  const std::string message(state);
  const int rc = sd_notify(0, message.c_str());
  // A lost message is systemd's to judge (a late READY or WATCHDOG restarts
  // the unit); the program itself goes on. Said once: the next would fail alike.
  if (rc < 0 && !warned_) {
    warned_ = true;
    spdlog::warn("sd_notify to systemd failed: {}", std::string(std::strerror(-rc)));
  }
}

}  // namespace tp
