#include "executor/order_record.hpp"

namespace tp::executor {

std::string_view to_string(OrderState s) noexcept {
  switch (s) {
    case OrderState::intent: return "INTENT";
    case OrderState::sent: return "SENT";
    case OrderState::done: return "DONE";
    case OrderState::unknown: return "UNKNOWN";
    case OrderState::held: return "HELD";
  }
  return "UNKNOWN";
}

std::optional<OrderState> order_state_from(std::string_view s) noexcept {
  for (auto st : {OrderState::intent, OrderState::sent, OrderState::done, OrderState::unknown, OrderState::held}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

}  // namespace tp::executor
