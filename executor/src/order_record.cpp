#include "executor/order_record.hpp"

#include "common/order_states.hpp"

namespace tp::executor {

std::string_view to_string(OrderState s) noexcept {
  switch (s) {
    case OrderState::intent:
      return order_states::executor_db::intent;
    case OrderState::sent:
      return order_states::executor_db::sent;
    case OrderState::done:
      return order_states::executor_db::done;
    case OrderState::unknown:
      return order_states::executor_db::unknown;
    case OrderState::held:
      return order_states::executor_db::held;
  }
  return order_states::executor_db::unknown;
}

std::optional<OrderState> order_state_from(std::string_view s) noexcept {
  for (auto st :
       {OrderState::intent, OrderState::sent, OrderState::done, OrderState::unknown, OrderState::held}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

std::string_view to_string(CancelState s) noexcept {
  switch (s) {
    case CancelState::none:
      return "";
    case CancelState::requested:
      return "REQUESTED";
    case CancelState::done:
      return "DONE";
  }
  return "";
}

CancelState cancel_state_from(std::string_view s) noexcept {
  if (s == "REQUESTED") return CancelState::requested;
  if (s == "DONE") return CancelState::done;
  return CancelState::none;
}

}  // namespace tp::executor
