// One order as the executor records it: its durable state (where it is on
// the way to the broker) and the broker's last answer. Shared by the store,
// which persists it, and the pure decision layer, which creates it; neither
// needs the other to speak about an order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/messages.hpp"

namespace tp::executor {

// INTENT: recorded, maybe sent. SENT: the broker has it, not final yet.
// DONE: final outcome recorded. UNKNOWN: sent, no answer; to be reconciled.
// HELD: recorded while the circuit breaker was open and provably never
// handed to the order socket (it becomes INTENT, durably, before it is sent),
// so it may be given up without asking the broker.
// The words on disk, and how each state relates to dll_gateway.db's row for
// the same order (PENDING, DONE) and to proto::OrderStatus, are mapped in one
// place: common/order_states.hpp.
enum class OrderState { intent, sent, done, unknown, held };
std::string_view to_string(OrderState) noexcept;
std::optional<OrderState> order_state_from(std::string_view) noexcept;

// A cancel of the order: none asked; REQUESTED (durably, acked to the
// strategy; to be sent once the order works at the broker); DONE (answered:
// the order's status says how it ended). orders.cancel_state holds the word
// ('' for none).
enum class CancelState { none, requested, done };
std::string_view to_string(CancelState) noexcept;
CancelState cancel_state_from(std::string_view) noexcept;

struct OrderRecord {
  std::string client_order_id;
  std::string signal_id;
  std::string strategy;  // the signal's strategy group: its fills are that group's
  std::string instrument;
  proto::Side side = proto::Side::buy;
  double quantity = 0;
  double price_hint = 0;
  OrderState state = OrderState::intent;
  proto::OrderStatus status = proto::OrderStatus::new_order;
  double filled_quantity = 0;
  double fill_price = 0;
  std::string order_id;
  std::string reason;
  std::int64_t causation_ts_ns = 0;
  std::int64_t created_ns = 0;
  std::int64_t updated_ns = 0;
  std::int64_t expires_ns = 0;  // the signal's expiry; 0: none recorded (older rows)
  proto::OrderTerms terms;      // how the order is placed (older rows: market IOC)
  CancelState cancel = CancelState::none;
  std::string cancel_reason;
  // Working at the broker: answered, not final (it rests, perhaps part filled).
  bool working() const noexcept {
    return state == OrderState::sent &&
           (status == proto::OrderStatus::accepted || status == proto::OrderStatus::partially_filled);
  }
};

}  // namespace tp::executor
