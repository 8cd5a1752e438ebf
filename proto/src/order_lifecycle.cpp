#include "proto/order_lifecycle.hpp"

#include <algorithm>
#include <cmath>

namespace tp::proto {
namespace {

// Quantities travel as doubles computed by different programs (an average
// price times a quantity, a sum of partial fills): equal within a part in
// 1e9 is equal.
bool same_quantity(double a, double b) noexcept {
  return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
}

// How far along the chain a status is; the final ones share the last rank.
int rank(OrderStatus s) noexcept {
  switch (s) {
    case OrderStatus::new_order:
    case OrderStatus::unknown:
      return 0;
    case OrderStatus::accepted:
      return 1;
    case OrderStatus::partially_filled:
      return 2;
    default:
      return 3;
  }
}

}  // namespace

std::string_view to_string(Step s) noexcept {
  switch (s) {
    case Step::apply:
      return "apply";
    case Step::same:
      return "same";
    case Step::stale:
      return "stale";
    case Step::invalid:
      return "invalid";
  }
  return "?";
}

bool can_follow(OrderStatus from, OrderStatus to) noexcept {
  if (to == OrderStatus::unknown || to == OrderStatus::new_order || from == to) return false;
  switch (from) {
    case OrderStatus::new_order:
    case OrderStatus::unknown:
      return true;  // the broker may decide anything at once
    case OrderStatus::accepted:
      return to != OrderStatus::rejected;  // a working order ends filled, canceled or expired
    case OrderStatus::partially_filled:
      return to == OrderStatus::filled || to == OrderStatus::canceled || to == OrderStatus::expired;
    default:
      return false;  // final
  }
}

Classified classify(const OrderProgress& known, const OrderProgress& update, double quantity) noexcept {
  if (update.status == OrderStatus::unknown || update.status == OrderStatus::new_order)
    return {Step::invalid, "an update must carry a broker status"};
  if (!(update.filled_quantity >= 0) || !std::isfinite(update.filled_quantity))
    return {Step::invalid, "filled quantity not finite and >= 0"};
  if (update.filled_quantity > quantity && !same_quantity(update.filled_quantity, quantity))
    return {Step::invalid, "filled more than the order's quantity"};
  if (update.filled_quantity > 0 && update.status == OrderStatus::accepted)
    return {Step::invalid, "ACCEPTED with a fill (that is PARTIALLY_FILLED)"};
  if (update.filled_quantity == 0 && update.status == OrderStatus::partially_filled)
    return {Step::invalid, "PARTIALLY_FILLED without a fill"};

  const bool same_fill = same_quantity(update.filled_quantity, known.filled_quantity);
  if (update.status == known.status && same_fill) return {Step::same, {}};
  if (update.filled_quantity < known.filled_quantity && !same_fill) {
    // Less filled than known: only an earlier, working view can say that.
    if (is_final(update.status)) return {Step::invalid, "a final status with less filled than known"};
    return {Step::stale, "less filled than known"};
  }
  if (is_final(known.status)) {
    if (!is_final(update.status) && same_fill) return {Step::stale, "a working view of a finished order"};
    return {Step::invalid, "the order is already final"};
  }
  if (same_fill && rank(update.status) < rank(known.status)) return {Step::stale, "an earlier status"};
  if (update.status == known.status) return {Step::apply, {}};  // PARTIALLY_FILLED, more filled
  if (!can_follow(known.status, update.status)) return {Step::invalid, "no such transition"};
  return {Step::apply, {}};
}

}  // namespace tp::proto
