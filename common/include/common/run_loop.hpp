// RunLoop: the one loop of every program, after Aeron's AgentRunner. A turn
// waits for the registered sockets to become readable (bounded: the stop
// source is looked at least every max_wait_ms), calls the readers of the
// sockets that are, then the per-turn work, then the periodic timers that
// are due. Timers run on the injected Clock's monotonic time, so a test
// drives them with a FakeClock and a stepped wall clock never fires or
// holds them. The loop ends when its stop source says so (the process stop
// flag by default) or a callback calls finish().
//
// Under systemd (NOTIFY_SOCKET set) run() says READY=1 before its first
// turn (the nodes bind and connect their sockets when built, so a program
// whose loop turns is ready), WATCHDOG=1 from its turns at half the unit's
// WatchdogSec, and STOPPING=1 once it ends: see systemd_notify.hpp.
//
// A poll is never interrupted (EINTR) in these programs: install_stop_handlers
// blocks SIGINT/SIGTERM in every thread and takes them on a thread of its
// own (see stop.cpp), so a zmq::error_t out of the poll is a real failure
// and propagates to main.
//
// Borrows the clock and the sockets (which must outlive it); owns the
// callbacks. Not thread-safe: build it, run it and destroy it on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>
#include <zmq.hpp>

#include "common/clock.hpp"
#include "common/systemd_notify.hpp"

namespace tp {

// True once the loop must end. Called once per turn, and by callbacks that
// ask stopping() between units of work.
using StopSource = std::function<bool()>;

class RunLoop {
 public:
  // How a periodic timer is put back once it has fired at monotonic `now`.
  enum class Cadence {
    // next = max(due + period, now): keeps its phase; after a stall it fires
    // once more at once and then a period later, never a burst.
    fixed_rate,
    fixed_delay,  // next = now + period
    once,         // fires once, then is gone
  };
  using TimerId = std::uint64_t;

  // A turn waits at most `max_wait_ms` (> 0) when nothing is due.
  explicit RunLoop(const Clock& clock, StopSource stop = default_stop_source(), int max_wait_ms = 100);

  RunLoop(const RunLoop&) = delete;
  RunLoop& operator=(const RunLoop&) = delete;

  // The process stop flag (tp::stop_requested).
  static StopSource default_stop_source();

  // Calls `on_readable` in each turn in which `socket` polled readable; it
  // reads what it wants (a bounded batch: the rest waits for the next turn).
  // Readers run in the order they were added. `enabled`, when given, is
  // asked before each wait: while it says false the socket is not polled
  // (its input waits in its queue; the turn waits as if it had none), so a
  // reader that must not read for a while does not make the loop spin.
  void add_reader(zmq::socket_t& socket, std::function<void()> on_readable,
                  std::function<bool()> enabled = {});

  // Calls `work` every turn, after the readers. It returns how much it did:
  // when any work returns > 0 the next turn polls without waiting.
  void add_work(std::function<int()> work);

  // Calls `fire(now)` (monotonic ns) once monotonic time reaches
  // `first_due_ns`, then every `period_ns` (> 0; ignored for once) as
  // `cadence` says. Timers run after the work, in the order they were added.
  // A timer added by a timer's callback first runs in the next turn.
  TimerId add_timer(std::int64_t first_due_ns, std::int64_t period_ns, Cadence cadence,
                    std::function<void(std::int64_t now)> fire);
  // The timer never fires again (also when called from a timer's callback,
  // its own included). An unknown or finished id is ignored.
  void cancel_timer(TimerId id) noexcept;

  // The next wait ends no later than monotonic `at_ns` (a callback's own
  // deadline, such as the next tick to publish). Holds for one turn.
  void wake_by(std::int64_t at_ns) noexcept {
    if (at_ns < wake_by_ns_) wake_by_ns_ = at_ns;
  }

  // Ends the loop: the rest of this turn is skipped and run() returns.
  void finish() noexcept { finished_ = true; }

  // True once finish() was called or the stop source says stop. Callbacks
  // that work for a while ask it between units of work.
  bool stopping() const { return finished_ || stop_(); }

  // One turn, waiting at most `max_wait_ms` (further capped by the loop's
  // max_wait_ms, the next timer and wake_by; 0 = do not wait).
  void run_once(int max_wait_ms);
  // Turns until stopping(), telling systemd (if it listens) that the
  // program is ready, looping, then stopping.
  void run();

  const Clock& clock() const noexcept { return clock_; }

 private:
  struct Reader {
    std::function<void()> on_readable;
    std::function<bool()> enabled;  // empty: always
  };
  struct Timer {
    TimerId id;
    std::int64_t due_ns;
    std::int64_t period_ns;
    Cadence cadence;
    std::function<void(std::int64_t)> fire;
    bool cancelled = false;
  };

  void run_timers();

  // Nanoseconds the poll of this turn may wait, at most `cap_ns`.
  std::int64_t wait_ns(std::int64_t now, std::int64_t cap_ns) const;
  void wait(std::int64_t ns);

  const Clock& clock_;
  StopSource stop_;
  std::int64_t max_wait_ns_;
  std::vector<zmq::pollitem_t> items_;  // one per reader, same order
  std::vector<Reader> readers_;
  std::vector<std::function<int()>> work_;
  std::vector<Timer> timers_;
  // Added while timers run: a push into timers_ would move the callback
  // that is running.
  std::vector<Timer> added_;
  TimerId next_timer_id_ = 1;
  bool in_timers_ = false;
  std::int64_t wake_by_ns_;
  bool busy_ = false;
  bool finished_ = false;
  SystemdNotifier systemd_;
};

}  // namespace tp
