#include "gateway/synthetic_feed.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tp::gateway {

SyntheticFeed::SyntheticFeed(std::vector<tp::Instrument> instruments, std::uint64_t seed) : rng_(seed) {
  if (instruments.empty()) throw std::invalid_argument("synthetic feed: no instruments configured");
  for (auto& inst : instruments) {
    if (!(inst.price > 0) || !std::isfinite(inst.price) || !(inst.spread >= 0) || !(inst.volatility >= 0))
      throw std::invalid_argument("synthetic feed: instrument " + inst.symbol +
                                  " needs price > 0, spread >= 0, volatility >= 0");
    double mid = inst.price;
    states_.push_back(State{std::move(inst), mid, 0});
  }
}

proto::TickEvent SyntheticFeed::next(std::int64_t source_ts_ns) {
  State& s = states_[cursor_];
  cursor_ = (cursor_ + 1) % states_.size();

  // The bid must stay positive, so the mid may not fall to half the spread;
  // a step that would cross that floor is reflected, and if the reflection
  // also fails (a step larger than the distance either way) the mid stays.
  // The floor is at least 1% of the starting price so that a long walk
  // cannot creep towards zero where relative spreads become absurd.
  const double floor = std::max(s.instrument.spread, s.instrument.price * 0.01);
  const double step = s.instrument.volatility * step_(rng_);
  double mid = s.mid + step;
  if (!(mid > floor)) mid = s.mid - step;
  if (!(mid > floor)) mid = s.mid;
  s.mid = mid;

  proto::TickEvent t;
  t.instrument = s.instrument.symbol;
  const double half = s.instrument.spread / 2;
  t.bid = mid - half;
  t.ask = mid + half;
  t.bid_volume = 100000.0 * lots_(rng_);
  t.ask_volume = 100000.0 * lots_(rng_);
  t.source_ts_ns = source_ts_ns;
  t.seq = ++s.seq;
  return t;
}

}  // namespace tp::gateway
