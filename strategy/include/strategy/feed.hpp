// Feed health for one strategy instance: per-instrument sequence tracking
// (gaps, duplicates, gateway restarts) and liveness from ticks and
// heartbeats. Plain values driven by the node's loop; not thread-safe.
#pragma once

#include <cstdint>

namespace tp::strategy {

enum class SeqVerdict {
  accept,   // in order (possibly after a gap, which is counted)
  stale,    // duplicate or out of order (seq <= last): drop it
  restart,  // seq 1 after a higher seq: the gateway restarted; accept
};

// Follows the per-instrument sequence numbers of one instrument's ticks.
// The first tick seen is accepted without counting a gap: joining a running
// feed is not a loss.
class SeqTracker {
 public:
  SeqVerdict on_seq(std::uint64_t seq) noexcept;
  // The gateway restarted (its heartbeats said so): whatever seq comes next
  // starts a new series. A restarted gateway's first ticks may be lost while
  // the subscription reconnects, so seq == 1 alone would miss most restarts.
  void expect_restart() noexcept { restart_pending_ = seen_; }

  std::uint64_t last() const noexcept { return last_; }
  std::uint64_t gaps() const noexcept { return gaps_; }  // missed ticks, not gap events
  std::uint64_t out_of_order() const noexcept { return out_of_order_; }
  std::uint64_t restarts() const noexcept { return restarts_; }

 private:
  bool seen_ = false;
  std::uint64_t last_ = 0;
  std::uint64_t gaps_ = 0;
  std::uint64_t out_of_order_ = 0;
  std::uint64_t restarts_ = 0;
  bool restart_pending_ = false;
};

// Alive while a tick or heartbeat arrived within `timeout_ns`. Dead before
// the first one. Times are the injected clock's (tp::Clock::now_ns).
class FeedMonitor {
 public:
  explicit FeedMonitor(std::int64_t timeout_ns) : timeout_ns_(timeout_ns) {}
  void on_activity(std::int64_t now_ns) noexcept {
    last_ns_ = now_ns;
    seen_ = true;
  }
  bool alive(std::int64_t now_ns) const noexcept { return seen_ && now_ns - last_ns_ <= timeout_ns_; }

 private:
  std::int64_t timeout_ns_;
  std::int64_t last_ns_ = 0;
  bool seen_ = false;
};

inline SeqVerdict SeqTracker::on_seq(std::uint64_t seq) noexcept {
  if (!seen_) {
    seen_ = true;
    last_ = seq;
    return SeqVerdict::accept;
  }
  if (restart_pending_ || (seq == 1 && last_ > 1)) {
    restart_pending_ = false;
    ++restarts_;
    last_ = seq;
    return SeqVerdict::restart;
  }
  if (seq <= last_) {
    ++out_of_order_;
    return SeqVerdict::stale;
  }
  gaps_ += seq - last_ - 1;
  last_ = seq;
  return SeqVerdict::accept;
}

}  // namespace tp::strategy
