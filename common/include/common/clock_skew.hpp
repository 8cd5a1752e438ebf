// What a receiver can tell about a sender's clock from the stamps on its
// messages. A message stamped at the sender's time s arrives d >= 0 later,
// read at this host's time r, so r - s = d + (this clock - the sender's
// clock). The smallest r - s over a window is the fastest transit plus the
// clock difference: on one host (no difference) it is a few microseconds;
// negative, the sender's clock is ahead by at least that much; far above the
// transit time, the sender's clock is behind (or every message of the window
// waited in a queue, which the window's spread shows).
//
// Across hosts the checks that compare a stamp with this host's clock (a
// tick's age, a signal's expiry) are off by this difference, so it is
// reported per source in stats and metrics (README "Clocks across hosts").
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tp {

class JsonObject;
namespace metrics {
class MetricsText;
}

class LagWindow {
 public:
  void observe(std::int64_t received_ns, std::int64_t stamped_ns) noexcept {
    if (stamped_ns <= 0) return;  // unstamped: nothing to learn
    const std::int64_t lag = received_ns - stamped_ns;
    if (lag < min_) min_ = lag;
    if (lag > max_) max_ = lag;
    ++count_;
  }

  // Closes the window: its smallest lag becomes last_min() (nothing seen:
  // the previous value stays, so that a quiet source keeps its last figure).
  void roll() noexcept {
    if (count_ > 0) {
      last_min_ = min_;
      last_max_ = max_;
      seen_ = true;
    }
    min_ = std::numeric_limits<std::int64_t>::max();
    max_ = std::numeric_limits<std::int64_t>::min();
    count_ = 0;
  }

  // The smallest lag of the last window that saw a message.
  std::optional<std::int64_t> last_min() const noexcept {
    return seen_ ? std::optional<std::int64_t>(last_min_) : std::nullopt;
  }
  std::optional<std::int64_t> last_max() const noexcept {
    return seen_ ? std::optional<std::int64_t>(last_max_) : std::nullopt;
  }

 private:
  std::int64_t min_ = std::numeric_limits<std::int64_t>::max();
  std::int64_t max_ = std::numeric_limits<std::int64_t>::min();
  std::uint64_t count_ = 0;
  std::int64_t last_min_ = 0;
  std::int64_t last_max_ = 0;
  bool seen_ = false;
};

// A program's windows, one per source of stamped messages ("gateway" for
// ticks, "strategy" for signals...): the stats key clock_lag_min_ms
// {source: ms} and the gauge tp_clock_lag_min_seconds{source}, both of the
// last closed window (a source not heard from yet is left out).
class ClockLags {
 public:
  // A new source's window; the reference stays valid for the object's life.
  LagWindow& add(std::string source) { return windows_.emplace_back(std::move(source), LagWindow{}).second; }
  // Closes every window (at each stats write).
  void roll() noexcept {
    for (auto& [name, w] : windows_) w.roll();
  }
  void add_stats(JsonObject& stats) const;
  void add_metrics(metrics::MetricsText& out) const;

 private:
  std::deque<std::pair<std::string, LagWindow>> windows_;
};

}  // namespace tp
