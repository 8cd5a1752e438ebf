// The order state machine, in one place: which changes of an order's status
// are possible, and what an update about an order means beside what is
// already known of it. The executor and dll_gateway both apply broker
// answers and execution reports through classify(): an update is applied,
// recognised as news already known (a repeat, or an older view arriving
// late), or refused as impossible (logged, counted, never applied).
//
//   NEW ──► ACCEPTED ──► PARTIALLY_FILLED ──► FILLED
//    │         │              │  ▲ (more fills)
//    │         └──────────────┴──┴──► CANCELED / EXPIRED
//    ├──► PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED (decided at once)
//    └──► REJECTED
//
// FILLED, REJECTED, CANCELED and EXPIRED are final. Quantities are
// cumulative: an update carries the whole order's filled quantity, so that
// applying the difference to what is known applies each fill exactly once,
// however often and in whatever order the news arrives. UNKNOWN is not a
// state of an order (it is "no answer"); no update carrying it is applied.
// Pure values; no I/O.
#pragma once

#include <string_view>

#include "proto/messages.hpp"

namespace tp::proto {

// Where an order is: its status and what has filled so far.
struct OrderProgress {
  OrderStatus status = OrderStatus::new_order;
  double filled_quantity = 0;
};

enum class Step : std::uint8_t {
  apply,    // news: a possible transition, or more of the order filled
  same,     // exactly what is known already
  stale,    // an older view than what is known (a report overtaken by a later answer)
  invalid,  // impossible from what is known: not applied
};
std::string_view to_string(Step) noexcept;

// Whether `to` may follow `from` (the arrows above; a status never follows
// itself here: more fills at PARTIALLY_FILLED are judged by classify()).
bool can_follow(OrderStatus from, OrderStatus to) noexcept;

struct Classified {
  Step step = Step::apply;
  std::string_view why;  // for stale and invalid: a fixed phrase for logs
};

// What `update` means for an order of `quantity` known to be at `known`.
// A known status of UNKNOWN counts as NEW (nothing known of it yet).
Classified classify(const OrderProgress& known, const OrderProgress& update, double quantity) noexcept;

}  // namespace tp::proto
