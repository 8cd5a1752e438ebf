#include "common/stop.hpp"

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace tp {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<bool> g_installed{false};
}  // namespace

// SIGINT and SIGTERM are blocked in every thread and taken by one waiting
// thread instead of an async handler: then no zmq_poll or recv in a loop is
// ever interrupted (cppzmq throws on EINTR), and the loop simply sees the flag
// at its next poll timeout. The other signals a program meets do not
// interrupt either: SIGPIPE is ignored, SIGCHLD/SIGWINCH/SIGURG are ignored
// by default, and a SIGSTOP/SIGCONT pair restarts poll(2) (tested in
// test_run_loop.cpp). So an EINTR catch around a poll is dead code here.
// Call before creating the zmq context so that its I/O threads inherit the
// mask.
void install_stop_handlers() {
  if (g_installed.exchange(true)) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) == 0) g_stop.store(true, std::memory_order_relaxed);
    }
  }).detach();
  // A vanished peer must not kill us through a write on a closed pipe.
  std::signal(SIGPIPE, SIG_IGN);
}

bool stop_requested() noexcept { return g_stop.load(std::memory_order_relaxed); }
void request_stop() noexcept { g_stop.store(true, std::memory_order_relaxed); }

}  // namespace tp
