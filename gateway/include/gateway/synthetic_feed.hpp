// SyntheticFeed: a seeded Gaussian random walk of mid prices, one per
// configured instrument, turned into ticks round-robin. Pure (no I/O, no
// clock): the caller passes the source timestamp. The same instruments and
// seed give the same sequence of ticks on the same standard library.
// One instance per thread.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "common/config.hpp"
#include "proto/messages.hpp"

namespace tp::gateway {

class SyntheticFeed {
 public:
  // Throws std::invalid_argument for an empty list or an instrument with a
  // non-positive price or a negative spread or volatility.
  SyntheticFeed(std::vector<tp::Instrument> instruments, std::uint64_t seed);

  // The next tick, for the instruments in turn: the mid moves by
  // N(0, volatility) (reflected so that the bid stays positive), bid/ask sit
  // spread/2 either side, volumes are positive, seq counts per instrument
  // from 1. gateway_ts_ns is left 0 for the publisher to stamp.
  proto::TickEvent next(std::int64_t source_ts_ns);

  std::size_t instrument_count() const noexcept { return states_.size(); }

 private:
  struct State {
    tp::Instrument instrument;
    double mid = 0;
    std::uint64_t seq = 0;
  };
  std::vector<State> states_;
  std::size_t cursor_ = 0;
  std::mt19937_64 rng_;
  std::normal_distribution<double> step_{0.0, 1.0};
  std::uniform_int_distribution<int> lots_{1, 50};  // volume in lots of 100k
};

}  // namespace tp::gateway
