// Feed health for one strategy instance: per-instrument sequence tracking
// (gaps, duplicates, gateway restarts), liveness from ticks and heartbeats,
// and how fresh a gateway stamp must be to be believed or traded on. Plain
// values driven by the node's loop; not thread-safe.
#pragma once

#include <cstdint>
#include <limits>

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

enum class StampVerdict {
  fresh,   // within the bounds: the message counts
  future,  // stamped further ahead than the clock skew allows
  stale,   // sent longer ago than max_tick_age
};

// The clock bounds of the gateway's stamps (gateway_ts_ns of a tick, ts_ns
// of a heartbeat) against this host's clock. Ages include the skew between
// the two hosts' clocks: a strategy whose clock runs ahead of the gateway's
// sees every tick that much older.
struct Freshness {
  std::int64_t max_age_ns;         // strategy.max_tick_age_ms: older is refused outright
  std::int64_t max_skew_ns;        // strategy.max_clock_skew_ms: further ahead is refused
  std::int64_t max_signal_age_ns;  // strategy.max_signal_tick_age_ms: older is not traded on

  // Whether a message stamped `stamp_ns` is believed at `now_ns`: a refused
  // tick neither moves the indicators nor keeps the feed alive, nor does a
  // refused heartbeat.
  StampVerdict judge(std::int64_t stamp_ns, std::int64_t now_ns) const noexcept;
  // Whether a signal may be made at `now_ns` from a tick stamped
  // `causation_ts_ns`. Far tighter than judge's bound: a tick a little old
  // still tells an average where the market was, not where it is now.
  bool tradeable(std::int64_t causation_ts_ns, std::int64_t now_ns) const noexcept;
};

// Alive while a believed tick or heartbeat arrived within `timeout_ns`. Dead
// before the first one. A feed whose every message is refused (a gateway
// clock far behind, a backlog of old ticks) is dead too: such messages are
// given to on_message, which ignores them, not to on_activity. Times are the
// injected clock's (tp::Clock::now_ns).
class FeedMonitor {
 public:
  explicit FeedMonitor(std::int64_t timeout_ns) : timeout_ns_(timeout_ns) {}
  void on_activity(std::int64_t now_ns) noexcept {
    last_ns_ = now_ns;
    seen_ = true;
  }
  // A tick or heartbeat judged `verdict`: only a fresh one is activity.
  // Returns whether it was.
  bool on_message(std::int64_t now_ns, StampVerdict verdict) noexcept {
    if (verdict != StampVerdict::fresh) return false;
    on_activity(now_ns);
    return true;
  }
  bool alive(std::int64_t now_ns) const noexcept { return seen_ && now_ns - last_ns_ <= timeout_ns_; }

 private:
  std::int64_t timeout_ns_;
  std::int64_t last_ns_ = 0;
  bool seen_ = false;
};

namespace detail {
// a - b, saturated: a hostile stamp near INT64_MIN or INT64_MAX must not wrap.
inline std::int64_t saturating_diff(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t d = 0;
  if (!__builtin_sub_overflow(a, b, &d)) return d;
  return a > b ? std::numeric_limits<std::int64_t>::max() : std::numeric_limits<std::int64_t>::min();
}
}  // namespace detail

inline StampVerdict Freshness::judge(std::int64_t stamp_ns, std::int64_t now_ns) const noexcept {
  const auto ahead = detail::saturating_diff(stamp_ns, now_ns);
  if (ahead > max_skew_ns) return StampVerdict::future;
  if (ahead < -max_age_ns) return StampVerdict::stale;
  return StampVerdict::fresh;
}

inline bool Freshness::tradeable(std::int64_t causation_ts_ns, std::int64_t now_ns) const noexcept {
  // A tick stamped ahead (within the skew judge allows) is as fresh as one
  // stamped now.
  return detail::saturating_diff(now_ns, causation_ts_ns) <= max_signal_age_ns;
}

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
