#include "executor/risk.hpp"

#include <fmt/format.h>

#include <cmath>

namespace tp::executor {

std::optional<std::string> check_risk(const proto::TradingSignal& signal, double current_position,
                                      const RiskConfig& limits) {
  const double qty = signal.quantity;
  if (qty > limits.max_order_quantity) {
    return fmt::format("quantity {} > max_order_quantity {}", qty, limits.max_order_quantity);
  }
  const double notional = qty * signal.trigger_price;
  if (notional > limits.max_notional) {
    return fmt::format("notional {} (quantity {} x price {}) > max_notional {}", notional, qty,
                       signal.trigger_price, limits.max_notional);
  }
  const double after = current_position + (signal.action == proto::Side::buy ? qty : -qty);
  if (std::abs(after) > limits.max_position) {
    return fmt::format("position after order {} (now {}) exceeds max_position {}", after, current_position,
                       limits.max_position);
  }
  return std::nullopt;
}

std::optional<std::string> check_group_position(const proto::TradingSignal& signal, double group_position,
                                                double max_position) {
  if (!(max_position > 0)) return std::nullopt;
  const double after =
      group_position + (signal.action == proto::Side::buy ? signal.quantity : -signal.quantity);
  if (std::abs(after) > max_position) {
    return fmt::format("group {} position after order {} (now {}) exceeds its max_position {}",
                       signal.strategy, after, group_position, max_position);
  }
  return std::nullopt;
}

}  // namespace tp::executor
