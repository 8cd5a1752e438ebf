// Pre-trade risk limits: pure, stateless, values in and values out. The
// caller supplies the instrument's current position; nothing here is shared.
#pragma once

#include <optional>
#include <string>

#include "common/config.hpp"
#include "proto/messages.hpp"

namespace tp::executor {

// Checks one signal against the limits, in this order: quantity per order
// (max_order_quantity), notional per order (quantity x trigger_price against
// max_notional), absolute position after the order (max_position).
// Returns nothing when the order may go, else a reason naming the limit and
// the numbers, e.g. "quantity 200000 > max_order_quantity 100000".
std::optional<std::string> check_risk(const proto::TradingSignal& signal, double current_position,
                                      const RiskConfig& limits);

// A strategy group's own limit: the absolute position of the signal's group
// in its instrument after the order (from `group_position`) above
// `max_position`; 0 means the group has no limit of its own. Returns the
// reason with the numbers, e.g. "group trend position after order 3000 (now
// 2000) exceeds its max_position 2500".
std::optional<std::string> check_group_position(const proto::TradingSignal& signal, double group_position,
                                                double max_position);

}  // namespace tp::executor
