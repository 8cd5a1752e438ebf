#include "strategy/strategies.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

namespace tp::strategy {
namespace {

double clamp01(double x) { return std::clamp(std::isfinite(x) ? x : 1.0, 0.0, 1.0); }

}  // namespace

SmaCrossover::SmaCrossover(std::size_t fast, std::size_t slow) : fast_(fast), slow_(slow) {}

std::optional<Trigger> SmaCrossover::on_mid(double mid) {
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
  return Trigger{sign > 0 ? proto::Side::buy : proto::Side::sell, confidence};
}

RsiReversion::RsiReversion(std::size_t period, double oversold, double overbought)
    : rsi_(period), oversold_(oversold), overbought_(overbought) {}

std::optional<Trigger> RsiReversion::on_mid(double mid) {
  rsi_.update(mid);
  if (!rsi_.ready()) return std::nullopt;
  const double rsi = rsi_.value();
  const auto before = last_rsi_;
  last_rsi_ = rsi;
  if (!before) return std::nullopt;
  if (*before >= oversold_ && rsi < oversold_)
    return Trigger{proto::Side::buy, 0.5 + 0.5 * clamp01((oversold_ - rsi) / oversold_)};
  if (*before <= overbought_ && rsi > overbought_)
    return Trigger{proto::Side::sell, 0.5 + 0.5 * clamp01((rsi - overbought_) / (100.0 - overbought_))};
  return std::nullopt;
}

Breakout::Breakout(std::size_t window) : low_(window), high_(window) {}

std::optional<Trigger> Breakout::on_mid(double mid) {
  // Compare with the channel of the previous `window` mids, then add this one.
  std::optional<Trigger> out;
  int now_break = 0;
  if (high_.ready()) {
    const double hi = high_.value();
    const double lo = low_.value();
    const double width = hi - lo;
    if (mid > hi) {
      now_break = 1;
      if (last_break_ != 1)
        out = Trigger{proto::Side::buy, 0.5 + 0.5 * clamp01(width > 0 ? (mid - hi) / width : 1.0)};
    } else if (mid < lo) {
      now_break = -1;
      if (last_break_ != -1)
        out = Trigger{proto::Side::sell, 0.5 + 0.5 * clamp01(width > 0 ? (lo - mid) / width : 1.0)};
    }
  }
  last_break_ = now_break;
  low_.update(mid);
  high_.update(mid);
  return out;
}

std::optional<Trigger> EveryNth::on_mid(double /*mid*/) {
  if (++count_ < n_) return std::nullopt;
  count_ = 0;
  auto side = buy_next_ ? proto::Side::buy : proto::Side::sell;
  buy_next_ = !buy_next_;
  return Trigger{side, 1.0};
}

bool is_builtin(std::string_view kind) noexcept {
  return std::find(std::begin(builtin_strategy_kinds), std::end(builtin_strategy_kinds), kind) !=
         std::end(builtin_strategy_kinds);
}

std::unique_ptr<MidStrategy> make_mid_strategy(std::string_view kind, const tp::Params& params) {
  // Indicator windows hold their values: bounded so that a typo cannot ask
  // for gigabytes.
  auto window = [&](const char* key, std::int64_t fallback, std::int64_t least) {
    const auto v = params.integer(key, fallback);
    params.require(v >= least && v <= 10'000'000, key, ">= " + std::to_string(least) + " (and <= 1e7)");
    return static_cast<std::size_t>(v);
  };
  if (kind == "sma_crossover") {
    const auto fast = window("fast", 10, 1);
    const auto slow = window("slow", 30, 2);
    params.require(slow > fast, "slow", "> fast");
    return std::make_unique<SmaCrossover>(fast, slow);
  }
  if (kind == "rsi_reversion") {
    const auto period = window("period", 14, 2);
    const double oversold = params.number("oversold", 30);
    const double overbought = params.number("overbought", 70);
    params.require(oversold > 0 && oversold < overbought && overbought < 100, "oversold",
                   "0 < oversold < overbought < 100");
    return std::make_unique<RsiReversion>(period, oversold, overbought);
  }
  if (kind == "breakout") return std::make_unique<Breakout>(window("window", 50, 2));
  if (kind == "every_nth") {
    // A count, not a window: nothing is kept per tick, so no upper bound.
    const auto n = params.integer("n", 100);
    params.require(n >= 1, "n", ">= 1");
    return std::make_unique<EveryNth>(static_cast<std::size_t>(n));
  }
  throw ConfigError("unknown strategy \"" + std::string(kind) +
                    "\" (expected sma_crossover, rsi_reversion, breakout or every_nth)");
}

void Builtin::on_start() {
  by_instrument_.clear();
  for (const auto& sym : ctx().instruments()) by_instrument_[sym] = make_mid_strategy(kind_, ctx().params());
  // Read once even with no instrument, so that a bad parameter is refused
  // on every shard alike.
  if (by_instrument_.empty()) make_mid_strategy(kind_, ctx().params());
}

void Builtin::on_tick(const tp::Tick& tick) {
  auto it = by_instrument_.find(tick.instrument);
  if (it == by_instrument_.end()) return;
  const auto trigger = it->second->on_mid(tick.mid());
  if (!trigger) return;
  tp::SignalRequest request;
  request.instrument = tick.instrument;
  request.side = trigger->side == proto::Side::buy ? tp::Side::buy : tp::Side::sell;
  request.confidence = trigger->confidence;
  auto id = ctx().emit(request);
  if (cancel_after_ms_ <= 0 || id.empty()) return;
  const auto timer = ctx().at(ctx().now_ns() + cancel_after_ms_ * 1'000'000, [this, id] {
    cancel_timers_.erase(id);
    // False when the order is no longer open (final, refused): nothing to do.
    ctx().cancel(id, "cancel_after_ms " + std::to_string(cancel_after_ms_));
  });
  cancel_timers_.emplace(std::move(id), timer);
}

void Builtin::on_order(const tp::OrderUpdate& update) {
  if (!update.refused && !tp::is_final(update.status)) return;
  auto it = cancel_timers_.find(update.signal_id);
  if (it == cancel_timers_.end()) return;
  ctx().cancel(it->second);
  cancel_timers_.erase(it);
}

void Builtin::on_feed(const tp::FeedEvent& event) {
  // A restarted gateway starts a new price series; indicators spanning the
  // jump would produce crossings that never happened.
  if (event.kind != tp::FeedEventKind::restarted) return;
  for (auto& [sym, logic] : by_instrument_)
    if (event.instrument.empty() || sym == event.instrument) logic = make_mid_strategy(kind_, ctx().params());
}

StrategyPtr make_strategy(const StrategyGroup& group) {
  if (is_builtin(group.kind))
    return StrategyPtr(new Builtin(group.kind, group.orders.cancel_after_ms),
                       [](tp::Strategy* s) { delete s; });
  if (group.kind == "plugin") return create_plugin_strategy(group.plugin);
  if (group.kind == "python")
    throw ConfigError("strategy group " + group.name +
                      " is a Python strategy: run it with python3 -m tp_strategy --group " + group.name +
                      " (the supervisor does)");
  throw ConfigError("strategy group " + group.name + ": unknown kind \"" + group.kind + "\"");
}

}  // namespace tp::strategy
