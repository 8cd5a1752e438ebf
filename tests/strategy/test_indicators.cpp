// Each indicator against a from-scratch reference on a seeded random walk.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "tp/indicators.hpp"

using namespace tp;

namespace {

std::vector<double> random_walk(std::size_t n, unsigned seed, double start = 100.0, double step = 0.5) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, step);
  std::vector<double> v;
  double x = start;
  for (std::size_t i = 0; i < n; ++i) {
    x += d(rng);
    v.push_back(x);
  }
  return v;
}

::testing::AssertionResult rel_close(double got, double want, double rel = 1e-9) {
  const double scale = std::max({std::fabs(got), std::fabs(want), 1e-300});
  if (std::fabs(got - want) <= rel * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << " want " << want << " (diff " << got - want << ")";
}

const std::size_t windows[] = {1, 2, 3, 7, 30, 200};
constexpr std::size_t points = 3000;

}  // namespace

TEST(Sma, MatchesMeanOfWindow) {
  const auto xs = random_walk(points, 1);
  for (auto w : windows) {
    Sma sma(w);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      sma.update(xs[i]);
      const std::size_t n = std::min(w, i + 1);
      ASSERT_EQ(sma.ready(), i + 1 >= w) << "w=" << w << " i=" << i;
      const double want = std::accumulate(xs.begin() + static_cast<long>(i + 1 - n),
                                          xs.begin() + static_cast<long>(i + 1), 0.0) /
                          static_cast<double>(n);
      ASSERT_TRUE(rel_close(sma.value(), want)) << "w=" << w << " i=" << i;
    }
  }
}

TEST(Sma, NoDriftAfterHugeValuesLeaveTheWindow) {
  // A plain running sum keeps the rounding error of the 1e12-sized values
  // long after they left the window; the compensated sum does not.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> big(1e12, 2e12), small(0.5, 1.5);
  const std::size_t w = 16;
  Sma sma(w);
  for (int i = 0; i < 200000; ++i) sma.update(big(rng));
  std::vector<double> tail;
  for (std::size_t i = 0; i < w; ++i) {
    tail.push_back(small(rng));
    sma.update(tail.back());
  }
  const double want = std::accumulate(tail.begin(), tail.end(), 0.0) / static_cast<double>(w);
  EXPECT_TRUE(rel_close(sma.value(), want));
}

TEST(Sma, RejectsZeroWindow) { EXPECT_THROW(Sma(0), std::invalid_argument); }

TEST(Ema, MatchesRecursionFromScratch) {
  const auto xs = random_walk(points, 2);
  for (auto n : windows) {
    Ema ema(n);
    const double alpha = 2.0 / (static_cast<double>(n) + 1.0);
    EXPECT_DOUBLE_EQ(ema.alpha(), alpha);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      ema.update(xs[i]);
      ASSERT_EQ(ema.ready(), i + 1 >= n);
      if (i + 1 < n) continue;
      // Reference: seed with the mean of the first n, then the recursion.
      double ref =
          std::accumulate(xs.begin(), xs.begin() + static_cast<long>(n), 0.0) / static_cast<double>(n);
      for (std::size_t j = n; j <= i; ++j) ref = alpha * xs[j] + (1 - alpha) * ref;
      ASSERT_TRUE(rel_close(ema.value(), ref)) << "n=" << n << " i=" << i;
    }
  }
}

TEST(Rsi, MatchesWilderFromScratch) {
  const auto xs = random_walk(points, 3);
  for (std::size_t period : {std::size_t{1}, std::size_t{2}, std::size_t{14}, std::size_t{50}}) {
    Rsi rsi(period);
    const auto p = static_cast<double>(period);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      rsi.update(xs[i]);
      ASSERT_EQ(rsi.ready(), i >= period) << "period=" << period << " i=" << i;
      if (i < period) continue;
      double g = 0, l = 0;
      for (std::size_t j = 1; j <= period; ++j) {
        const double d = xs[j] - xs[j - 1];
        g += std::max(d, 0.0);
        l += std::max(-d, 0.0);
      }
      g /= p;
      l /= p;
      for (std::size_t j = period + 1; j <= i; ++j) {
        const double d = xs[j] - xs[j - 1];
        g = (g * (p - 1) + std::max(d, 0.0)) / p;
        l = (l * (p - 1) + std::max(-d, 0.0)) / p;
      }
      const double want = l == 0 ? 100.0 : 100.0 - 100.0 / (1.0 + g / l);
      ASSERT_TRUE(rel_close(rsi.value(), want)) << "period=" << period << " i=" << i;
    }
  }
}

TEST(Rsi, HundredWhenNoLosses) {
  Rsi rsi(3);
  for (double x : {1.0, 2.0, 3.0, 4.0, 4.0}) rsi.update(x);
  ASSERT_TRUE(rsi.ready());
  EXPECT_EQ(rsi.value(), 100.0);
  rsi.update(3.0);
  EXPECT_LT(rsi.value(), 100.0);
}

TEST(Rolling, MinMaxMatchWindowScan) {
  auto xs = random_walk(points, 4);
  // Quantise half of the series so that ties (equal values) are exercised.
  for (std::size_t i = 0; i < xs.size(); i += 2) xs[i] = std::round(xs[i]);
  for (auto w : windows) {
    RollingMin lo(w);
    RollingMax hi(w);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      lo.update(xs[i]);
      hi.update(xs[i]);
      ASSERT_EQ(lo.ready(), i + 1 >= w);
      ASSERT_EQ(hi.ready(), i + 1 >= w);
      const auto first = xs.begin() + static_cast<long>(i + 1 - std::min(w, i + 1));
      const auto last = xs.begin() + static_cast<long>(i + 1);
      ASSERT_EQ(lo.value(), *std::min_element(first, last)) << "w=" << w << " i=" << i;
      ASSERT_EQ(hi.value(), *std::max_element(first, last)) << "w=" << w << " i=" << i;
    }
  }
}

// After ~9,400 identical prices (period 14) the averages would be subnormal:
// RSI must not drift with no price change.
TEST(Rsi, StaysPutThroughAVeryLongFlatSeries) {
  Rsi rsi(14);
  for (double p : {1.0, 1.0002, 1.0001, 1.0003, 1.0, 1.0004, 1.0002, 1.0001, 1.0005, 1.0003, 1.0002, 1.0006,
                   1.0004, 1.0005, 1.0003, 1.0007})
    rsi.update(p);
  ASSERT_TRUE(rsi.ready());
  const double level = rsi.value();
  ASSERT_GT(level, 0.0);
  ASSERT_LT(level, 100.0);
  for (int i = 0; i < 100'000; ++i) rsi.update(1.0007);
  EXPECT_NEAR(rsi.value(), level, 1e-9);
  // A real move after the flat stretch still counts at once.
  rsi.update(1.0008);
  EXPECT_GT(rsi.value(), 99.0);
}

TEST(Indicators, NonFiniteValuesAreIgnored) {
  Sma sma(3);
  Ema ema(3);
  Rsi rsi(2);
  for (double x : {1.0, 2.0, std::numeric_limits<double>::quiet_NaN(), 3.0,
                   std::numeric_limits<double>::infinity(), 4.0, -std::numeric_limits<double>::infinity()}) {
    sma.update(x);
    ema.update(x);
    rsi.update(x);
  }
  EXPECT_DOUBLE_EQ(sma.value(), 3.0);  // mean of 2, 3, 4
  EXPECT_TRUE(std::isfinite(ema.value()));
  EXPECT_DOUBLE_EQ(rsi.value(), 100.0);  // only gains: 1 -> 2 -> 3 -> 4
}
