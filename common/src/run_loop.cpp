#include "common/run_loop.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <thread>
#include <utility>

#include "common/stop.hpp"

namespace tp {

namespace {
constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
}  // namespace

RunLoop::RunLoop(const Clock& clock, StopSource stop, int max_wait_ms)
    : clock_(clock),
      stop_(std::move(stop)),
      max_wait_ns_(std::int64_t{max_wait_ms} * ns_per_ms),
      wake_by_ns_(never) {
  if (!stop_) throw std::invalid_argument("RunLoop: empty stop source");
  if (max_wait_ms <= 0) throw std::invalid_argument("RunLoop: max_wait_ms must be > 0");
}

StopSource RunLoop::default_stop_source() {
  return [] { return stop_requested(); };
}

void RunLoop::add_reader(zmq::socket_t& socket, std::function<void()> on_readable,
                         std::function<bool()> enabled) {
  items_.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
  readers_.push_back({std::move(on_readable), std::move(enabled)});
}

void RunLoop::add_work(std::function<int()> work) { work_.push_back(std::move(work)); }

RunLoop::TimerId RunLoop::add_timer(std::int64_t first_due_ns, std::int64_t period_ns, Cadence cadence,
                                    std::function<void(std::int64_t)> fire) {
  if (period_ns <= 0 && cadence != Cadence::once)
    throw std::invalid_argument("RunLoop: a timer's period must be > 0");
  const auto id = next_timer_id_++;
  (in_timers_ ? added_ : timers_).push_back({id, first_due_ns, period_ns, cadence, std::move(fire)});
  return id;
}

void RunLoop::cancel_timer(TimerId id) noexcept {
  for (auto* list : {&timers_, &added_})
    for (auto& t : *list)
      if (t.id == id) t.cancelled = true;
  if (!in_timers_) std::erase_if(timers_, [](const Timer& t) { return t.cancelled; });
}

std::int64_t RunLoop::wait_ns(std::int64_t now, std::int64_t cap_ns) const {
  if (busy_) return 0;
  std::int64_t until = std::min(wake_by_ns_, now + cap_ns);
  for (const auto& t : timers_)
    if (!t.cancelled) until = std::min(until, t.due_ns);
  return std::max<std::int64_t>(until - now, 0);
}

void RunLoop::wait(std::int64_t ns) {
  bool any_enabled = false;
  for (std::size_t i = 0; i < items_.size(); ++i) {
    items_[i].revents = 0;
    // events 0: zmq_poll never reports the socket (its input stays queued).
    const bool enabled = !readers_[i].enabled || readers_[i].enabled();
    items_[i].events = enabled ? ZMQ_POLLIN : 0;
    any_enabled = any_enabled || enabled;
  }
  if (any_enabled) {
    // Rounded up: a timer due in 0.3 ms is not polled for in a busy loop.
    const auto ms = (ns + ns_per_ms - 1) / ns_per_ms;
    zmq::poll(items_.data(), items_.size(), std::chrono::milliseconds(ms));
  } else if (ns > 0) {
    // Nothing to poll (the gateway only publishes, or every reader is
    // paused): sleep to the nanosecond, which a paced feed needs between ticks.
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
  }
}

void RunLoop::run_once(int max_wait_ms) {
  const auto cap = std::min(max_wait_ns_, std::int64_t{std::max(max_wait_ms, 0)} * ns_per_ms);
  wait(wait_ns(clock_.monotonic_ns(), cap));
  busy_ = false;
  wake_by_ns_ = never;

  for (std::size_t i = 0; i < readers_.size(); ++i) {
    if (!(items_[i].revents & ZMQ_POLLIN)) continue;
    readers_[i].on_readable();
    if (finished_) return;
  }
  for (auto& work : work_) {
    if (work() > 0) busy_ = true;
    if (finished_) return;
  }
  if (!timers_.empty()) run_timers();
}

void RunLoop::run_timers() {
  // One reading for every timer of the turn: timers due together see the
  // same time, as the hand-written loops had it.
  const auto now = clock_.monotonic_ns();
  in_timers_ = true;
  for (std::size_t i = 0; i < timers_.size() && !finished_; ++i) {
    auto& t = timers_[i];
    if (t.cancelled || now < t.due_ns) continue;
    t.fire(now);
    if (t.cadence == Cadence::once)
      t.cancelled = true;
    else
      t.due_ns = t.cadence == Cadence::fixed_rate ? std::max(t.due_ns + t.period_ns, now) : now + t.period_ns;
  }
  in_timers_ = false;
  std::erase_if(timers_, [](const Timer& t) { return t.cancelled; });
  for (auto& t : added_)
    if (!t.cancelled) timers_.push_back(std::move(t));
  added_.clear();
}

void RunLoop::run() {
  systemd_.ready();
  while (!stopping()) {
    run_once(static_cast<int>(max_wait_ns_ / ns_per_ms));
    // After the turn, not inside it: a callback that never returns stops
    // the pings, which is what systemd's watchdog is there to see.
    if (systemd_.watchdog()) systemd_.alive(clock_.monotonic_ns());
  }
  systemd_.stopping();
}

}  // namespace tp
