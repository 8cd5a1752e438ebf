#include "strategy/strategies.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace tp::strategy {
namespace {

double clamp01(double x) { return std::clamp(std::isfinite(x) ? x : 1.0, 0.0, 1.0); }

}  // namespace

SmaCrossover::SmaCrossover(std::size_t fast, std::size_t slow) : fast_(fast), slow_(slow) {}

std::optional<Decision> SmaCrossover::on_mid(double mid) {
  fast_.update(mid);
  slow_.update(mid);
  if (!fast_.ready() || !slow_.ready()) return std::nullopt;
  const double gap = fast_.value() - slow_.value();
  // Two averages of the same prices that are equal in exact arithmetic may
  // differ by a few units in the last place; that is touching, not crossing.
  // A real gap between averages of quoted prices is at least a tick over the
  // windows (1e-5/50 on a 5-decimal price of 1.0), far above this tolerance.
  const double tolerance = cross_tolerance * std::fabs(slow_.value());
  const int sign = gap > tolerance ? 1 : gap < -tolerance ? -1 : 0;
  if (sign == 0) return std::nullopt;  // touching is not crossing
  const int before = last_sign_;
  last_sign_ = sign;
  if (before == 0 || before == sign) return std::nullopt;
  const double bp = std::fabs(slow_.value()) * 1e-4;
  const double confidence = 0.5 + 0.5 * clamp01(bp > 0 ? std::fabs(gap) / bp : 1.0);
  return Decision{sign > 0 ? proto::Side::buy : proto::Side::sell, confidence};
}

RsiReversion::RsiReversion(std::size_t period, double oversold, double overbought)
    : rsi_(period), oversold_(oversold), overbought_(overbought) {}

std::optional<Decision> RsiReversion::on_mid(double mid) {
  rsi_.update(mid);
  if (!rsi_.ready()) return std::nullopt;
  const double rsi = rsi_.value();
  const auto before = last_rsi_;
  last_rsi_ = rsi;
  if (!before) return std::nullopt;
  if (*before >= oversold_ && rsi < oversold_)
    return Decision{proto::Side::buy, 0.5 + 0.5 * clamp01((oversold_ - rsi) / oversold_)};
  if (*before <= overbought_ && rsi > overbought_)
    return Decision{proto::Side::sell, 0.5 + 0.5 * clamp01((rsi - overbought_) / (100.0 - overbought_))};
  return std::nullopt;
}

Breakout::Breakout(std::size_t window) : low_(window), high_(window) {}

std::optional<Decision> Breakout::on_mid(double mid) {
  // Compare with the channel of the previous `window` mids, then add this one.
  std::optional<Decision> out;
  int now_break = 0;
  if (high_.ready()) {
    const double hi = high_.value();
    const double lo = low_.value();
    const double width = hi - lo;
    if (mid > hi) {
      now_break = 1;
      if (last_break_ != 1)
        out = Decision{proto::Side::buy, 0.5 + 0.5 * clamp01(width > 0 ? (mid - hi) / width : 1.0)};
    } else if (mid < lo) {
      now_break = -1;
      if (last_break_ != -1)
        out = Decision{proto::Side::sell, 0.5 + 0.5 * clamp01(width > 0 ? (lo - mid) / width : 1.0)};
    }
  }
  last_break_ = now_break;
  low_.update(mid);
  high_.update(mid);
  return out;
}

std::optional<Decision> EveryNth::on_mid(double /*mid*/) {
  if (++count_ < n_) return std::nullopt;
  count_ = 0;
  auto side = buy_next_ ? proto::Side::buy : proto::Side::sell;
  buy_next_ = !buy_next_;
  return Decision{side, 1.0};
}

std::unique_ptr<Strategy> make_strategy(const StrategyConfig& cfg) {
  auto size = [](int v) { return static_cast<std::size_t>(std::max(v, 1)); };
  if (cfg.name == "sma_crossover")
    return std::make_unique<SmaCrossover>(size(cfg.sma_crossover.fast), size(cfg.sma_crossover.slow));
  if (cfg.name == "rsi_reversion")
    return std::make_unique<RsiReversion>(size(cfg.rsi_reversion.period), cfg.rsi_reversion.oversold,
                                          cfg.rsi_reversion.overbought);
  if (cfg.name == "breakout") return std::make_unique<Breakout>(size(cfg.breakout.window));
  if (cfg.name == "every_nth") return std::make_unique<EveryNth>(size(cfg.every_nth.n));
  throw ConfigError("strategy.name: unknown strategy \"" + cfg.name +
                    "\" (expected sma_crossover, rsi_reversion, breakout or every_nth)");
}

}  // namespace tp::strategy
