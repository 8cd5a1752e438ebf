// Positions per instrument from fills, average-cost method. A plain value
// owned by the executor's loop (not thread-safe); rebuilt from the store's
// fills at start-up.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "proto/messages.hpp"

namespace tp::executor {

struct Position {
  double position = 0;      // signed: > 0 long, < 0 short
  double avg_price = 0;     // average entry price of the open position; 0 when flat
  double realized_pnl = 0;  // in the quote currency
  double last_price = 0;    // price of the latest fill
  bool operator==(const Position&) const = default;
};

// Whether two figures for one position agree: fills are summed in another
// order on each side, so equal books may differ in the last bits.
bool same_position(double a, double b) noexcept;

class PositionBook {
 public:
  // Adds or reduces the position. Increasing it re-averages the entry
  // price; reducing it realises (price - avg) x closed quantity with the
  // sign of the position; a flip opens the remainder at `price`.
  // Non-positive quantities are ignored.
  void apply_fill(std::string_view instrument, proto::Side side, double quantity, double price);

  // Replaces one instrument's state (start-up from a stored snapshot).
  void restore(std::string_view instrument, const Position& p);

  // Takes the broker's figure for one position (after a mismatch, when the
  // operator chose to trust the broker). The average price is kept (0 when
  // it was flat): the PnL of the adopted difference is not known.
  void adopt(std::string_view instrument, double position);

  // Signed position; 0 for an instrument never traded.
  double position(std::string_view instrument) const;
  // nullptr for an instrument never traded.
  const Position* find(std::string_view instrument) const;
  const std::map<std::string, Position, std::less<>>& all() const noexcept { return positions_; }

 private:
  std::map<std::string, Position, std::less<>> positions_;
};

// One PositionBook per strategy group (TradingSignal::strategy): the same
// arithmetic over the fills of that group's signals only.
using GroupBooks = std::map<std::string, PositionBook, std::less<>>;

}  // namespace tp::executor
