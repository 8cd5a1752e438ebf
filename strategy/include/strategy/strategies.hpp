// The built-in strategies. Each is a MidStrategy: it turns the mid prices of
// one instrument into an occasional BUY/SELL trigger (pure values, tested
// alone). make_strategy() serves them through the strategy API (tp::Strategy)
// as one Builtin per instance, holding one MidStrategy per instrument, so
// that built-ins and users' plugins run the same way.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "common/config.hpp"
#include "proto/messages.hpp"
#include "strategy/plugin.hpp"
#include "tp/indicators.hpp"
#include "tp/strategy.hpp"

namespace tp::strategy {

struct Trigger {
  proto::Side side = proto::Side::buy;
  double confidence = 0;  // 0..1
  bool operator==(const Trigger&) const = default;
};

class MidStrategy {
 public:
  virtual ~MidStrategy() = default;
  // Feeds the next mid price; returns a decision when this price triggers one.
  virtual std::optional<Trigger> on_mid(double mid) = 0;
  virtual std::string_view name() const noexcept = 0;
};

// BUY when the fast SMA crosses above the slow one, SELL when it crosses
// below. A cross is a change of the sign of (fast - slow) against the last
// non-zero sign, so touching and bouncing back fires nothing; a gap within
// cross_tolerance of the price is rounding, so it is touching too. Nothing fires
// until both averages are ready. Confidence: 0.5 plus half of how far apart
// the averages are, measured against 1 basis point of the slow average.
class SmaCrossover final : public MidStrategy {
 public:
  // Averages closer than this, relative to the price, are equal (rounding).
  static constexpr double cross_tolerance = 1e-12;
  SmaCrossover(std::size_t fast, std::size_t slow);
  std::optional<Trigger> on_mid(double mid) override;
  std::string_view name() const noexcept override { return "sma_crossover"; }

 private:
  Sma fast_;
  Sma slow_;
  int last_sign_ = 0;  // of fast - slow; 0 = not known yet
};

// Mean reversion on Wilder's RSI: BUY when RSI crosses below `oversold`
// (previous >= oversold, now < oversold), SELL when it crosses above
// `overbought`. Confidence grows from 0.5 with the depth past the level.
class RsiReversion final : public MidStrategy {
 public:
  RsiReversion(std::size_t period, double oversold, double overbought);
  std::optional<Trigger> on_mid(double mid) override;
  std::string_view name() const noexcept override { return "rsi_reversion"; }

 private:
  Rsi rsi_;
  double oversold_;
  double overbought_;
  std::optional<double> last_rsi_;
};

// Channel breakout: BUY when the mid exceeds the highest of the previous
// `window` mids, SELL when it falls below their lowest. Fires on the tick
// that breaks out, not again while consecutive ticks keep breaking out in
// the same direction (one breakout, one signal). Confidence: 0.5 plus half of
// the overshoot as a share of the channel's width (1 for a flat channel).
class Breakout final : public MidStrategy {
 public:
  explicit Breakout(std::size_t window);
  std::optional<Trigger> on_mid(double mid) override;
  std::string_view name() const noexcept override { return "breakout"; }

 private:
  RollingMin low_;
  RollingMax high_;
  int last_break_ = 0;  // +1 up, -1 down, 0 inside the channel on the previous tick
};

// A signal on every n-th mid, alternating BUY and SELL so that positions stay
// bounded: a known signal rate for benchmarks and fault tests, not a way to
// make money. Confidence 1.
class EveryNth final : public MidStrategy {
 public:
  explicit EveryNth(std::size_t n) : n_(n) {}
  std::optional<Trigger> on_mid(double mid) override;
  std::string_view name() const noexcept override { return "every_nth"; }

 private:
  std::size_t n_;
  std::size_t count_ = 0;
  bool buy_next_ = true;
};

// True for the names of the built-in strategies.
bool is_builtin(std::string_view kind) noexcept;

// The built-in `kind` with its parameters read from `params` (each checked:
// tp::ParamError names the key). Throws tp::ConfigError for an unknown kind.
std::unique_ptr<MidStrategy> make_mid_strategy(std::string_view kind, const tp::Params& params);

// A built-in through the strategy API: one MidStrategy per instrument, made
// at start from the group's params, remade when the instrument's price series
// restarts; each trigger is emitted with the group's defaults (quantity and
// order terms). With `cancel_after_ms` > 0, an order of its own still open
// that long after it was emitted is cancelled (a one-shot timer per order,
// dropped when the order is final first).
class Builtin final : public tp::Strategy {
 public:
  explicit Builtin(std::string kind, std::int64_t cancel_after_ms = 0)
      : kind_(std::move(kind)), cancel_after_ms_(cancel_after_ms) {}
  void on_start() override;
  void on_tick(const tp::Tick& tick) override;
  void on_feed(const tp::FeedEvent& event) override;
  void on_order(const tp::OrderUpdate& update) override;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::string kind_;
  std::int64_t cancel_after_ms_;
  // The cancel timers of orders not yet final, by signal id.
  std::unordered_map<std::string, tp::Context::TimerId, Hash, std::equal_to<>> cancel_timers_;
  // A hash map: an instance may trade thousands of instruments, and the
  // tick's instrument is found without building a string.
  std::unordered_map<std::string, std::unique_ptr<MidStrategy>, Hash, std::equal_to<>> by_instrument_;
};

// The strategy of `group`: a built-in, or one made by its plugin. Throws
// tp::ConfigError for a python group (the Python runtime runs those) and
// PluginError for a plugin that cannot be used.
StrategyPtr make_strategy(const StrategyGroup& group);

}  // namespace tp::strategy
