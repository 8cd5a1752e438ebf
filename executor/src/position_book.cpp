#include "executor/position_book.hpp"

#include <algorithm>
#include <cmath>

namespace tp::executor {
namespace {
// Fills are doubles; a close that should land on zero may leave dust.
constexpr double flat_epsilon = 1e-9;
}  // namespace

void PositionBook::apply_fill(std::string_view instrument, proto::Side side, double quantity, double price) {
  if (!(quantity > 0)) return;
  auto it = positions_.find(instrument);
  if (it == positions_.end()) it = positions_.emplace(std::string(instrument), Position{}).first;
  Position& p = it->second;
  const double signed_qty = side == proto::Side::buy ? quantity : -quantity;
  p.last_price = price;

  const bool same_direction = p.position == 0 || (p.position > 0) == (signed_qty > 0);
  if (same_direction) {
    const double open = std::abs(p.position);
    p.avg_price = (open * p.avg_price + quantity * price) / (open + quantity);
    p.position += signed_qty;
    return;
  }

  // Reducing (and maybe flipping): the closed part realises against the average.
  const double direction = p.position > 0 ? 1.0 : -1.0;
  const double closed = std::min(quantity, std::abs(p.position));
  p.realized_pnl += (price - p.avg_price) * closed * direction;
  p.position += signed_qty;
  if (std::abs(p.position) < flat_epsilon) {
    p.position = 0;
    p.avg_price = 0;
  } else if (quantity > closed) {
    p.avg_price = price;  // flipped: the remainder opened at this fill's price
  }
}

void PositionBook::restore(std::string_view instrument, const Position& p) {
  positions_.insert_or_assign(std::string(instrument), p);
}

void PositionBook::adopt(std::string_view instrument, double position) {
  auto it = positions_.find(instrument);
  if (it == positions_.end()) it = positions_.emplace(std::string(instrument), Position{}).first;
  it->second.position = position;
  if (position == 0) it->second.avg_price = 0;
}

bool same_position(double a, double b) noexcept {
  return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
}

double PositionBook::position(std::string_view instrument) const {
  auto it = positions_.find(instrument);
  return it == positions_.end() ? 0.0 : it->second.position;
}

const Position* PositionBook::find(std::string_view instrument) const {
  auto it = positions_.find(instrument);
  return it == positions_.end() ? nullptr : &it->second;
}

}  // namespace tp::executor
