#include "tp/indicators.hpp"

#include <algorithm>
#include <cmath>

namespace tp {

Sma::Sma(std::size_t window) : window_(window) {
  if (window == 0) throw std::invalid_argument("SMA window must be >= 1");
  ring_.assign(window, 0.0);
}

void Sma::accumulate(double x) noexcept {
  // Neumaier's variant of Kahan summation: also exact when |x| > |sum_|,
  // which happens on every subtract of an old value.
  const double t = sum_ + x;
  if (std::fabs(sum_) >= std::fabs(x))
    comp_ += (sum_ - t) + x;
  else
    comp_ += (x - t) + sum_;
  sum_ = t;
}

void Sma::update(double x) noexcept {
  if (!std::isfinite(x)) return;  // one bad value would poison the sum for good
  if (count_ == window_)
    accumulate(-ring_[head_]);
  else
    ++count_;
  accumulate(x);
  ring_[head_] = x;
  head_ = head_ + 1 == window_ ? 0 : head_ + 1;
}

double Sma::value() const noexcept {
  return count_ == 0 ? 0.0 : (sum_ + comp_) / static_cast<double>(count_);
}

Ema::Ema(std::size_t n) : n_(n), alpha_(n == 0 ? 0.0 : 2.0 / (static_cast<double>(n) + 1.0)) {
  if (n == 0) throw std::invalid_argument("EMA length must be >= 1");
}

void Ema::update(double x) noexcept {
  if (!std::isfinite(x)) return;
  if (count_ < n_) {
    // Warm-up: the seed is the plain mean of the first n values.
    ++count_;
    seed_sum_ += x;
    value_ = seed_sum_ / static_cast<double>(count_);
    return;
  }
  value_ += alpha_ * (x - value_);
}

Rsi::Rsi(std::size_t period) : period_(period) {
  if (period == 0) throw std::invalid_argument("RSI period must be >= 1");
}

void Rsi::update(double price) noexcept {
  if (!std::isfinite(price)) return;
  if (!have_last_) {
    have_last_ = true;
    last_ = price;
    return;
  }
  const double change = price - last_;
  last_ = price;
  const double gain = std::max(change, 0.0);
  const double loss = std::max(-change, 0.0);
  const auto n = static_cast<double>(period_);
  if (changes_ < period_) {
    avg_gain_ += gain;
    avg_loss_ += loss;
    if (++changes_ == period_) {
      avg_gain_ /= n;
      avg_loss_ /= n;
    }
    return;
  }
  avg_gain_ = (avg_gain_ * (n - 1.0) + gain) / n;
  avg_loss_ = (avg_loss_ * (n - 1.0) + loss) / n;
  // A flat price decays both averages by (n-1)/n a tick; after thousands of
  // ticks they would reach subnormal doubles, lose their digits and make RSI
  // drift with no price change. Scaling both by the same power of two is
  // exact and keeps their ratio (RSI); they stay far below any real change.
  constexpr double floor = 0x1p-600;
  if (avg_gain_ < floor && avg_loss_ < floor) {
    avg_gain_ *= 0x1p+300;
    avg_loss_ *= 0x1p+300;
  }
}

double Rsi::value() const noexcept {
  // During warm-up the fields hold sums, whose ratio equals that of the means.
  // 100 g/(g+l) equals 100 - 100/(1+g/l) and keeps its digits near 0.
  if (avg_loss_ == 0.0) return 100.0;  // also a flat series: the convention
  return 100.0 * avg_gain_ / (avg_gain_ + avg_loss_);
}

}  // namespace tp
