// Incremental technical indicators over a stream of prices. Each update is
// O(1) whatever the window (RollingMin/RollingMax: amortised O(1) through a
// monotonic deque); memory is O(window). A value that is not finite is
// ignored (SMA, EMA, RSI): one NaN or infinity would otherwise stay in the
// average for good. Plain values, not thread-safe: one owner per instrument.
// The conventions (seeding, flat series) are in docs/INDICATORS.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace tp {

// Simple moving average of the last `window` values. The running sum uses
// Neumaier (improved Kahan) compensation on both the add and the subtract so
// that millions of updates do not drift away from the exact mean.
class Sma {
 public:
  explicit Sma(std::size_t window);  // throws std::invalid_argument when 0
  void update(double x) noexcept;
  bool ready() const noexcept { return count_ >= window_; }
  double value() const noexcept;  // mean of the values seen so far (at most `window`)
  std::size_t window() const noexcept { return window_; }

 private:
  void accumulate(double x) noexcept;
  std::size_t window_;
  std::vector<double> ring_;
  std::size_t head_ = 0;   // next slot to overwrite
  std::size_t count_ = 0;  // values seen, saturating at window_
  double sum_ = 0;
  double comp_ = 0;  // Neumaier compensation: what sum_ lost to rounding
};

// Exponential moving average, alpha = 2/(n+1). Seeded with the SMA of the
// first n values (the classic definition): ready after n updates; before
// that value() is the running mean.
class Ema {
 public:
  explicit Ema(std::size_t n);  // throws std::invalid_argument when 0
  void update(double x) noexcept;
  bool ready() const noexcept { return count_ >= n_; }
  double value() const noexcept { return value_; }
  double alpha() const noexcept { return alpha_; }

 private:
  std::size_t n_;
  double alpha_;
  std::size_t count_ = 0;
  double seed_sum_ = 0;
  double value_ = 0;
};

// Wilder's RSI over `period` price changes. The first average gain/loss is
// the simple mean of the first `period` changes; after that
// avg = (avg*(period-1) + x) / period. RSI = 100 g/(g+l), and 100 when the
// average loss is 0 (a flat series included). Ready after period+1 prices.
class Rsi {
 public:
  explicit Rsi(std::size_t period);  // throws std::invalid_argument when 0
  void update(double price) noexcept;
  bool ready() const noexcept { return changes_ >= period_; }
  double value() const noexcept;  // 0..100, meaningful when ready()

 private:
  std::size_t period_;
  bool have_last_ = false;
  double last_ = 0;
  std::size_t changes_ = 0;
  double avg_gain_ = 0;  // during warm-up: the sum of the gains so far
  double avg_loss_ = 0;
};

namespace detail {
// Extreme of the last `window` values. Evicts(a, b) is true when a new value
// a makes an older b useless (a <= b for a minimum). Amortised O(1): each
// value enters and leaves the deque once.
template <class Evicts>
class RollingExtreme {
 public:
  explicit RollingExtreme(std::size_t window) : window_(window) {
    if (window == 0) throw std::invalid_argument("rolling window must be >= 1");
  }
  void update(double x) {
    while (!deque_.empty() && Evicts{}(x, deque_.back().second)) deque_.pop_back();
    deque_.emplace_back(seen_, x);
    ++seen_;
    // The window holds the indices [seen_ - window_, seen_).
    while (seen_ > window_ && deque_.front().first < seen_ - window_) deque_.pop_front();
  }
  bool ready() const noexcept { return seen_ >= window_; }
  double value() const noexcept { return deque_.empty() ? 0.0 : deque_.front().second; }
  std::size_t window() const noexcept { return window_; }

 private:
  std::size_t window_;
  std::uint64_t seen_ = 0;
  std::deque<std::pair<std::uint64_t, double>> deque_;  // (index, value), monotonic
};
}  // namespace detail

// Lowest of the last `window` values (support).
using RollingMin = detail::RollingExtreme<std::less_equal<double>>;
// Highest of the last `window` values (resistance).
using RollingMax = detail::RollingExtreme<std::greater_equal<double>>;

}  // namespace tp
